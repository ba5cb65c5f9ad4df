"""The flow file as typed models: Pipecat's declarative FlowConfig plus frontdesk's extensions.

A node is a plain FlowConfig node (`task_messages`, `functions`, actions) and may add:
`say` (words spoken on entry), `intents` (caller choices that lead to other nodes), `form`
(typed slots to collect, with reprompts, validation and a read-back), `menu` (a catalog and a
cart), `end` and `transfer`. The compiler turns every extension into ordinary Flows nodes and
generated direct functions, so a plain FlowConfig file validates here and runs unchanged.
"""

from __future__ import annotations

import re
from datetime import time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pipecat.flows import FlowConfig

SLOT_TYPES = (
    "text", "name", "date", "time", "datetime", "integer", "number",
    "phone", "email", "yes_no", "choice", "pattern",
)  # fmt: skip
SlotType = Literal[
    "text", "name", "date", "time", "datetime", "integer", "number",
    "phone", "email", "yes_no", "choice", "pattern",
]  # fmt: skip
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_IDENT = r"^[A-Za-z_][A-Za-z0-9_]*$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _parse_clock(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):  # YAML 1.1 reads 09:00 as 540
        return time(value // 60, value % 60) if 0 <= value < 24 * 60 else value
    if isinstance(value, str) and re.fullmatch(r"\d{1,2}:\d{2}", value):
        hours, minutes = (int(x) for x in value.split(":"))
        return time(hours, minutes) if hours < 24 and minutes < 60 else value
    return value


Clock = Annotated[time, Field(description="HH:MM")]


class Hours(Strict):
    """When the business is open; used by the `business_hours`/`open_day` rules and by handlers."""

    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(min_length=1)
    open: Clock
    close: Clock
    step_min: int = Field(15, ge=5, le=120)
    capacity: int = Field(1, ge=1)

    _clock = field_validator("open", "close", mode="before")(classmethod(lambda cls, v: _parse_clock(v)))

    @model_validator(mode="after")
    def _ordered(self) -> Hours:
        if self.close <= self.open:
            raise ValueError("'close' must be after 'open'")
        return self

    @property
    def weekday_numbers(self) -> frozenset[int]:
        return frozenset(WEEKDAYS.index(d) for d in self.days)


class Webhook(Strict):
    """An HTTP endpoint that receives the collected slots as a JSON POST."""

    url: str = Field(pattern=r"^https?://")
    timeout_s: float = Field(5.0, gt=0, le=30)
    headers: dict[str, str] = Field(default_factory=dict)


class Handler(Strict):
    """Code the YAML cannot say: a Python function `package.module:function`, or a webhook."""

    function: str | None = Field(None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    webhook: Webhook | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):  # `handler: app.handlers.scheduling:book`
            return {"function": value}
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> Handler:
        if (self.function is None) == (self.webhook is None):
            raise ValueError("a handler is either a 'function' (module:function) or a 'webhook'")
        return self


class Rule(Strict):
    """One validation rule on a slot, with the words spoken when it fails."""

    rule: Literal["range", "length", "allowed", "open_day", "business_hours", "not_past", "future_within_days", "handler"]
    min: float | None = None
    max: float | None = None
    values: list[str | int | float] | None = None
    days: int | None = Field(None, ge=1)
    handler: Handler | None = None
    message: str | None = None

    @model_validator(mode="after")
    def _arguments(self) -> Rule:
        needs = {
            "range": self.min is not None or self.max is not None,
            "length": self.min is not None or self.max is not None,
            "allowed": bool(self.values),
            "future_within_days": self.days is not None,
            "handler": self.handler is not None,
        }
        if not needs.get(self.rule, True):
            wanted = {"range": "min/max", "length": "min/max", "allowed": "values", "future_within_days": "days", "handler": "handler"}
            raise ValueError(f"rule '{self.rule}' needs {wanted[self.rule]}")
        return self


class NoMatch(Strict):
    """What to do when the caller has not given a usable value after `max_reprompts` tries."""

    action: Literal["transfer", "skip", "end"] = "transfer"
    say: str | None = None
    transition_to: str | None = None  # where `transfer`/`end` go; defaults to the flow's transfer/end node


class Slot(Strict):
    name: str = Field(pattern=_IDENT)
    type: SlotType
    prompt: str
    reprompt: str | list[str] | None = None
    required: bool = True
    when: str | None = Field(None, description="condition on other slots; the slot is asked only when it holds")
    choices: dict[str, list[str]] | list[str] | None = None
    pattern: str | None = None
    validate_: list[Rule] = Field(default_factory=list, alias="validate")
    max_reprompts: int | None = Field(None, ge=0, le=5)
    on_no_match: NoMatch | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _type_arguments(self) -> Slot:
        if self.type == "choice" and not self.choices:
            raise ValueError(f"slot '{self.name}' is a choice and needs 'choices'")
        if self.type != "choice" and self.choices:
            raise ValueError(f"slot '{self.name}' has 'choices' but its type is '{self.type}' (use type: choice)")
        if self.type == "pattern":
            if not self.pattern:
                raise ValueError(f"slot '{self.name}' is a pattern and needs 'pattern' (a regular expression)")
            try:
                re.compile(self.pattern)
            except re.error as e:
                raise ValueError(f"slot '{self.name}': invalid regular expression: {e}") from None
        return self

    @property
    def choice_map(self) -> dict[str, tuple[str, ...]]:
        if isinstance(self.choices, list):
            return {c: () for c in self.choices}
        return {k: tuple(v) for k, v in (self.choices or {}).items()}

    @property
    def reprompts(self) -> list[str]:
        if self.reprompt is None:
            return []
        return [self.reprompt] if isinstance(self.reprompt, str) else list(self.reprompt)


class Branch(Strict):
    """`if` a condition on slots (or `result.x` of the handler) holds, go to `goto`; no `if` always holds."""

    if_: str | None = Field(None, alias="if")
    goto: str

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


Next = str | list[Branch]


class Completion(Strict):
    """What happens once a form is filled and confirmed (or a menu's order is finished)."""

    handler: Handler | None = None
    sets: list[str] = Field(default_factory=list, description="state keys the handler sets, for templates")
    next: Next | None = None
    on_error: str | None = None
    say: str | None = None


class Confirm(Strict):
    say: str
    on_no: str = "What would you like to change?"


class Form(Strict):
    slots: list[Slot] = Field(min_length=1)
    max_reprompts: int = Field(2, ge=0, le=5)
    on_no_match: NoMatch = NoMatch()
    confirm: Confirm | None = None
    on_complete: Completion = Completion()

    @model_validator(mode="after")
    def _unique(self) -> Form:
        names = [s.name for s in self.slots]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"slot '{name}' is defined twice in this form")
        return self


class Priced(Strict):
    price: float | dict[str, float] = Field(description="one price, or a price per size")
    synonyms: list[str] = Field(default_factory=list)
    extras: bool = False  # whether extras (toppings) may be added to this item


class Extra(Strict):
    price: float = 0.0
    synonyms: list[str] = Field(default_factory=list)


class Catalog(Strict):
    items: dict[str, Priced] = Field(min_length=1)
    sizes: dict[str, list[str]] = Field(default_factory=dict)
    extras: dict[str, Extra] = Field(default_factory=dict)
    currency: str = "dollars"

    @model_validator(mode="after")
    def _sizes_known(self) -> Catalog:
        for name, item in self.items.items():
            if isinstance(item.price, dict):
                unknown = sorted(set(item.price) - set(self.sizes))
                if unknown:
                    raise ValueError(f"item '{name}' is priced in size '{unknown[0]}', which is not in 'sizes'")
        return self


class Menu(Strict):
    catalog: Catalog
    prompt: str = "What would you like to order?"
    anything_else: str = "Anything else?"
    empty: str = "Your order is empty so far. What would you like?"
    on_done: Completion


class Intent(Strict):
    """A caller choice that leads to another node (compiles to a transition-only function)."""

    name: str = Field(pattern=_IDENT)
    description: str | None = None
    examples: list[str] = Field(min_length=1)
    transition_to: str


class GlobalIntent(Strict):
    """An intent available at every node. Built-ins: human, start_over, repeat, goodbye."""

    intent: Literal["human", "start_over", "repeat", "goodbye"]
    examples: list[str] = Field(default_factory=list)
    transition_to: str | None = None
    say: str | None = None


class End(Strict):
    say: str | None = None


class Node(Strict):
    # Pipecat FlowConfig keys, unchanged:
    task_messages: list[FlowConfig.Message] = Field(default_factory=list)
    role_message: str | None = None
    functions: list[FlowConfig.Function] = Field(default_factory=list)
    pre_actions: list[FlowConfig.Action] = Field(default_factory=list)
    post_actions: list[FlowConfig.Action] = Field(default_factory=list)
    context_strategy: Literal["append", "reset"] | None = None
    respond_immediately: bool = True
    # frontdesk extensions:
    say: str | None = None
    intents: list[Intent] = Field(default_factory=list)
    form: Form | None = None
    menu: Menu | None = None
    end: bool | End = False
    transfer: bool | End = False

    @model_validator(mode="after")
    def _one_kind(self) -> Node:
        kinds = [k for k, on in (("form", self.form), ("menu", self.menu), ("end", self.end), ("transfer", self.transfer)) if on]
        if len(kinds) > 1:
            raise ValueError(f"a node is one of form, menu, end or transfer, not {' and '.join(kinds)}")
        if not (self.task_messages or self.say or kinds or self.intents):
            raise ValueError("a node needs 'say', 'task_messages', 'intents', a 'form', a 'menu', 'end' or 'transfer'")
        return self

    @property
    def kind(self) -> str:
        for kind in ("form", "menu", "end", "transfer"):
            if getattr(self, kind):
                return kind
        return "node"

    @property
    def ends_call(self) -> bool:
        """The call ends at this node: an `end` or `transfer` node, or one whose actions end it."""
        return bool(self.end or self.transfer) or any(a.type == "end_conversation" for a in self.pre_actions + self.post_actions)


class Flow(Strict):
    """A whole flow file."""

    initial_node: str
    nodes: dict[str, Node] = Field(min_length=1)
    global_functions: list[FlowConfig.Function] = Field(default_factory=list)
    # frontdesk extensions:
    name: str | None = None
    role_message: str | None = None
    hours: Hours | None = None
    global_intents: list[GlobalIntent] = Field(default_factory=list)
    data: dict[str, Any] = Field(default_factory=dict, description="free data for handlers")
    handlers: list[str] = Field(default_factory=list, description="Python modules defining the direct functions and action handlers named by plain FlowConfig entries")

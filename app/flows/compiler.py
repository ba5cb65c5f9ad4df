"""Flow model -> Pipecat FlowConfig plus the specs of the direct functions it needs. Pure: no I/O.

Every extension becomes ordinary Flows material:
- `say`            -> a task message (and the words the local brain speaks on entry);
- `intents`        -> transition-only functions;
- `form`           -> functions `fill_<node>` (and `confirm_<node>` when there is a read-back)
                      whose result field `next` branches to the form's exits;
- `menu`           -> functions `update_order_<node>` and `finish_order_<node>`;
- `end`/`transfer` -> a node that speaks and ends the conversation;
- global intents   -> global functions (`speak_to_human`, `start_over`, `repeat_that`, `goodbye`).
The behaviour of the generated functions lives in `app.flows.runtime`, bound per call.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import time
from typing import Literal

from pipecat.flows import FlowConfig
from pydantic import BaseModel

from app.brain.normalize import Catalog as CatalogSpec
from app.brain.normalize import SlotSpec
from app.flows.conditions import Condition, parse_condition
from app.flows.model import Branch, Completion, Flow, Form, Menu, Node, Slot

FunctionKind = Literal["fill", "confirm", "update_order", "finish_order", "start_over", "repeat", "transition"]

GLOBAL_INTENT_FUNCTIONS = {
    "human": "speak_to_human",
    "start_over": "start_over",
    "repeat": "repeat_that",
    "goodbye": "goodbye",
}
GLOBAL_INTENT_EXAMPLES = {
    "human": ["speak to a human", "talk to a person", "real person", "agent", "representative", "operator", "speak to someone", "talk to someone", "manager", "staff member"],
    "start_over": ["start over", "start again", "begin again", "restart", "from the beginning", "from the top"],
    "repeat": ["repeat that", "say that again", "what did you say", "come again", "pardon", "sorry what", "one more time", "didn't catch that"],
    "goodbye": ["goodbye", "bye", "hang up", "that's all for today", "i'm done", "nothing else bye"],
}
GLOBAL_INTENT_DESCRIPTIONS = {
    "human": "The caller asks to speak to a human, a person, an agent or staff.",
    "start_over": "The caller wants to start the conversation over from the beginning, forgetting what was said.",
    "repeat": "The caller asks you to repeat what you just said.",
    "goodbye": "The caller wants to end the call.",
}


@dataclass(frozen=True)
class GeneratedFunction:
    """A direct function the compiled config names; the runtime supplies its body."""

    name: str
    kind: FunctionKind
    node: str | None
    description: str
    params: tuple[tuple[str, type, str], ...] = ()  # (name, type, description); all optional


@dataclass(frozen=True)
class CompiledForm:
    node: str
    form: Form
    slots: tuple[Slot, ...]
    specs: dict[str, SlotSpec]
    conditions: dict[str, Condition]  # slot name -> its `when`
    next: tuple[tuple[Condition | None, str], ...]
    fill_fn: str
    confirm_fn: str | None


@dataclass(frozen=True)
class CompiledMenu:
    node: str
    menu: Menu
    catalog: CatalogSpec
    next: tuple[tuple[Condition | None, str], ...]
    update_fn: str
    finish_fn: str


@dataclass(frozen=True)
class IntentSpec:
    """What the local brain matches a caller turn against to pick a transition function."""

    function: str
    examples: tuple[str, ...]
    node: str | None  # None: global


@dataclass(frozen=True)
class CompiledFlow:
    flow: Flow
    file: str
    config: FlowConfig
    functions: dict[str, GeneratedFunction]
    forms: dict[str, CompiledForm]
    menus: dict[str, CompiledMenu]
    intents: tuple[IntentSpec, ...]
    global_intents: dict[str, str]  # intent kind -> function name
    end_nodes: frozenset[str]
    transfer_nodes: frozenset[str]
    closing_nodes: frozenset[str]  # where the call ends: end and transfer nodes, end_conversation actions
    handler_refs: dict[str, object] = field(default_factory=dict)  # dotted path -> model.Handler

    @property
    def name(self) -> str:
        return self.flow.name or self.file

    @property
    def vocabulary(self) -> list[str]:
        """Words callers of this flow will say: choices, menu items, sizes, extras (STT hints)."""
        words: list[str] = []
        for form in self.forms.values():
            for slot in form.slots:
                words += list(slot.choice_map)
        for menu in self.menus.values():
            catalog = menu.menu.catalog
            words += list(catalog.items) + list(catalog.sizes) + list(catalog.extras)
        return list(dict.fromkeys(words))

    @property
    def fixed_lines(self) -> list[str]:
        """What the bot may say word for word (no `{slot}` in it): prompts, reprompts, node lines."""
        return [line for line in self.spoken_lines if "{" not in line]

    @property
    def spoken_lines(self) -> list[str]:
        """Every line the flow gives the bot to say, templates (`{{ slot }}`) included."""
        found: list[str] = []

        def walk(value) -> None:
            if isinstance(value, str):
                return
            if isinstance(value, BaseModel):
                for name in type(value).model_fields:
                    item = getattr(value, name)
                    if name in _SPOKEN and isinstance(item, str):
                        found.append(item)
                    elif name in _SPOKEN and isinstance(item, list):
                        found.extend(x for x in item if isinstance(x, str))
                    else:
                        walk(item)
            elif isinstance(value, dict):
                for item in value.values():
                    walk(item)
            elif isinstance(value, (list, tuple)):
                for item in value:
                    walk(item)

        walk(self.flow)
        return list(dict.fromkeys(found))

    def speech_on_entry(self, node: str) -> str | None:
        model = self.flow.nodes[node]
        closing = model.end if model.end else model.transfer
        if not isinstance(closing, bool) and closing.say:
            return " ".join(filter(None, [model.say, closing.say]))
        return model.say


_SPOKEN = {"say", "prompt", "reprompt", "anything_else", "empty"}


def slot_spec(slot: Slot, flow: Flow) -> SlotSpec:
    hours: tuple[time, time] | None = (flow.hours.open, flow.hours.close) if flow.hours else None
    return SlotSpec(name=slot.name, type=slot.type, choices=slot.choice_map, pattern=slot.pattern, hours=hours)


def catalog_spec(menu: Menu) -> CatalogSpec:
    catalog = menu.catalog
    return CatalogSpec(
        items={name: tuple(item.synonyms) for name, item in catalog.items.items()},
        sizes={name: tuple(syn) for name, syn in catalog.sizes.items()},
        extras={name: tuple(extra.synonyms) for name, extra in catalog.extras.items()},
        sized_items=frozenset(name for name, item in catalog.items.items() if isinstance(item.price, dict)),
    )


def branches(next_: str | list[Branch] | None) -> tuple[tuple[Condition | None, str], ...]:
    if next_ is None:
        return ()
    if isinstance(next_, str):
        return ((None, next_),)
    return tuple((parse_condition(b.if_) if b.if_ else None, b.goto) for b in next_)


# A node's instructions go in the context as developer messages (Pipecat Flows' own convention).
# Pipecat's Anthropic adapter takes an initial *system* message of the context for the system
# prompt, and drops it when the service has a system instruction of its own (frontdesk's persona
# and voice rules) once the context holds more than that message: Claude would answer the first
# node's caller turns without its instructions. Developer messages always reach the model (as user
# turns for Claude; the local brain reads both roles). A flow's own `role: system` task messages
# are sent the same way.
INSTRUCTION_ROLE = "developer"


def _message(text: str) -> FlowConfig.Message:
    return FlowConfig.Message(role=INSTRUCTION_ROLE, content=text)


def _instruction(message: FlowConfig.Message) -> FlowConfig.Message:
    return message.model_copy(update={"role": INSTRUCTION_ROLE}) if message.role == "system" else message


def _branch_to(targets: list[str]) -> FlowConfig.Branch | None:
    unique = sorted(set(targets))
    return FlowConfig.Branch(field="next", cases={t: t for t in unique}) if unique else None


def default_exit(flow: Flow, kind: str) -> str | None:
    """The flow's first transfer (or end) node: where a form's way out leads by default."""
    for name, node in flow.nodes.items():
        if node.kind == kind:
            return name
    return None


def no_match_targets(flow: Flow, form: Form) -> list[str]:
    targets = []
    for no_match in [form.on_no_match] + [s.on_no_match for s in form.slots if s.on_no_match]:
        if no_match.action == "skip":
            continue
        target = no_match.transition_to or default_exit(flow, no_match.action if no_match.action == "end" else "transfer")
        if target:
            targets.append(target)
    return targets


def completion_targets(completion: Completion) -> list[str]:
    targets = [goto for _, goto in branches(completion.next)]
    if completion.on_error:
        targets.append(completion.on_error)
    return targets


class _Compiler:
    def __init__(self, flow: Flow, file: str):
        self.flow = flow
        self.file = file
        self.functions: dict[str, GeneratedFunction] = {}
        self.forms: dict[str, CompiledForm] = {}
        self.menus: dict[str, CompiledMenu] = {}
        self.intents: list[IntentSpec] = []
        self.handler_refs: dict[str, object] = {}
        self.has_menu = any(node.menu for node in flow.nodes.values())

    def compile(self) -> CompiledFlow:
        nodes = {name: self.node(name, node) for name, node in self.flow.nodes.items()}
        global_functions, global_intents = self.global_functions()
        # Round-trip through validation so the result is a FlowConfig that Pipecat itself accepts.
        config = FlowConfig.model_validate(
            FlowConfig.model_construct(
                initial_node=self.flow.initial_node, nodes=nodes, global_functions=global_functions
            ).model_dump(exclude_none=True)
        )
        return CompiledFlow(
            flow=self.flow,
            file=self.file,
            config=config,
            functions=self.functions,
            forms=self.forms,
            menus=self.menus,
            intents=tuple(self.intents),
            global_intents=global_intents,
            end_nodes=frozenset(n for n, node in self.flow.nodes.items() if node.end),
            transfer_nodes=frozenset(n for n, node in self.flow.nodes.items() if node.transfer),
            closing_nodes=frozenset(n for n, node in self.flow.nodes.items() if node.ends_call),
            handler_refs=self.handler_refs,
        )

    def add(self, fn: GeneratedFunction) -> FlowConfig.Function:
        self.functions[fn.name] = fn
        return FlowConfig.Function(name=fn.name)

    def node(self, name: str, node: Node) -> FlowConfig.Node:
        messages = [_instruction(m) for m in node.task_messages]
        functions = list(node.functions)
        post_actions = list(node.post_actions)
        if node.say:
            messages.append(_message(f"Say this to the caller, briefly and in your own words: {node.say}"))
        for intent in node.intents:
            functions.append(
                FlowConfig.Function(
                    name=intent.name,
                    transition_only=True,
                    description=intent.description or f"The caller says something like: {', '.join(intent.examples[:6])}.",
                    transition_to=intent.transition_to,
                )
            )
            self.intents.append(IntentSpec(intent.name, tuple(intent.examples), name))
        for fn in node.functions:  # plain FlowConfig transition-only functions: match on their words
            if fn.transition_only:
                self.intents.append(IntentSpec(fn.name, content_words(f"{fn.name.replace('_', ' ')} {fn.description or ''}"), name))
        if node.form:
            functions += self.form(name, node.form, messages)
        if node.menu:
            functions += self.menu(name, node.menu, messages)
        closing = node.end or node.transfer
        if closing:
            say = closing.say if not isinstance(closing, bool) else None
            if say:
                messages.append(_message(f"Say this to the caller, then stop: {say}"))
            if not any(a.type == "end_conversation" for a in post_actions):
                post_actions.append(FlowConfig.Action(type="end_conversation"))
        if not messages:
            messages.append(_message("Wait for the caller."))
        return FlowConfig.Node.model_construct(
            task_messages=messages,
            role_message=node.role_message,
            functions=functions,
            pre_actions=list(node.pre_actions),
            post_actions=post_actions,
            context_strategy=node.context_strategy,
            respond_immediately=node.respond_immediately,
        )

    def handler(self, handler) -> None:
        if handler is not None and handler.function:
            self.handler_refs[handler.function] = handler

    def form(self, name: str, form: Form, messages: list[FlowConfig.Message]) -> list[FlowConfig.Function]:
        for slot in form.slots:
            for rule in slot.validate_:
                self.handler(rule.handler)
        self.handler(form.on_complete.handler)
        fill_name, confirm_name = f"fill_{name}", (f"confirm_{name}" if form.confirm else None)
        described = "; ".join(_describe_slot(s) for s in form.slots)
        params = tuple((s.name, str, _describe_slot(s)) for s in form.slots) + (
            ("not_understood", str, "What the caller said, when it is not a usable answer to your last question."),
        )
        targets = completion_targets(form.on_complete) + no_match_targets(self.flow, form)
        fill = self.add(GeneratedFunction(fill_name, "fill", name, f"Record details the caller gave ({described}). Pass each in the caller's words; give several at once when the caller does, and a new value to correct one.", params))
        fill.transition_to = _branch_to(targets)
        result = [fill]
        if confirm_name:
            confirm = self.add(GeneratedFunction(confirm_name, "confirm", name, "The caller's answer to the read-back: whether everything is correct.", (("confirmed", bool, "True if the caller agrees the details are right."),)))
            confirm.transition_to = _branch_to(targets)
            result.append(confirm)
        if self.has_menu:
            menu_node = next(n for n, node in self.flow.nodes.items() if node.menu)
            result.append(FlowConfig.Function(name=f"update_order_{menu_node}"))
        messages.append(_message(
            f"Collect from the caller: {described}. Ask one question at a time, using the 'say' text "
            f"of each function result. Whenever the caller gives any of these (several at once, or a "
            f"correction), call {fill_name} with them in the caller's words."
            + (f" When the result asks for confirmation, call {confirm_name} with the caller's yes or no." if confirm_name else "")
        ))
        self.forms[name] = CompiledForm(
            node=name,
            form=form,
            slots=tuple(form.slots),
            specs={s.name: slot_spec(s, self.flow) for s in form.slots},
            conditions={s.name: parse_condition(s.when) for s in form.slots if s.when},
            next=branches(form.on_complete.next),
            fill_fn=fill_name,
            confirm_fn=confirm_name,
        )
        return result

    def menu(self, name: str, menu: Menu, messages: list[FlowConfig.Message]) -> list[FlowConfig.Function]:
        self.handler(menu.on_done.handler)
        update_name, finish_name = f"update_order_{name}", f"finish_order_{name}"
        update = self.add(GeneratedFunction(update_name, "update_order", name, "Add to, change or remove from the caller's order.", (("request", str, "The caller's words about the order, e.g. 'two large pepperonis and a coke', 'remove the coke', 'make the margherita a large'."),)))
        finish = self.add(GeneratedFunction(finish_name, "finish_order", name, "The caller has finished choosing items (e.g. 'that's all', 'nothing else')."))
        finish.transition_to = _branch_to(completion_targets(menu.on_done))
        items = ", ".join(menu.catalog.items)
        messages.append(_message(
            f"Take the caller's order from this menu: {items}. Call {update_name} with the caller's words "
            f"whenever they add, change or remove something, and {finish_name} when they have finished. "
            f"Speak the 'say' text of each result."
        ))
        self.menus[name] = CompiledMenu(
            node=name, menu=menu, catalog=catalog_spec(menu), next=branches(menu.on_done.next),
            update_fn=update_name, finish_fn=finish_name,
        )
        return [update, finish]

    def global_functions(self) -> tuple[list[FlowConfig.Function], dict[str, str]]:
        functions = list(self.flow.global_functions)
        names: dict[str, str] = {}
        for intent in self.flow.global_intents:
            fn_name = GLOBAL_INTENT_FUNCTIONS[intent.intent]
            names[intent.intent] = fn_name
            description = GLOBAL_INTENT_DESCRIPTIONS[intent.intent]
            examples = tuple(GLOBAL_INTENT_EXAMPLES[intent.intent] + intent.examples)
            self.intents.append(IntentSpec(fn_name, examples, None))
            if intent.intent in ("human", "goodbye"):
                target = intent.transition_to or default_exit(self.flow, "transfer" if intent.intent == "human" else "end")
                functions.append(FlowConfig.Function(name=fn_name, transition_only=True, description=description, transition_to=target))
            elif intent.intent == "start_over":
                self.add(GeneratedFunction(fn_name, "start_over", None, description))
                functions.append(FlowConfig.Function(name=fn_name, transition_to=intent.transition_to or self.flow.initial_node))
            else:
                self.add(GeneratedFunction(fn_name, "repeat", None, description))
                functions.append(FlowConfig.Function(name=fn_name))
        return functions, names


_STOPWORDS = frozenset(
    "a an the to of for and or in on at is are be with wants want would like caller user customer "
    "they their them this that it choose select pick go option wishes asks says about".split()
)


def content_words(text: str) -> tuple[str, ...]:
    """The distinctive words of a function's name and description, as single-word examples."""
    words = re.findall(r"[a-z0-9']+", text.lower())
    return tuple(dict.fromkeys(w for w in words if w not in _STOPWORDS and len(w) > 2))


def _describe_slot(slot: Slot) -> str:
    if slot.type == "choice":
        return f"{slot.name} (one of {', '.join(slot.choice_map)})"
    return f"{slot.name} ({slot.type.replace('_', '/')})"


def compile_flow(flow: Flow, file: str) -> CompiledFlow:
    """Compile a validated flow. Call `app.flows.checks.check_flow` first: this assumes a sound graph."""
    return _Compiler(flow, file).compile()

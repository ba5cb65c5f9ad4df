"""One call's conversation state, and the bodies of the functions the compiler generated.

The flow's state lives here, in code, not in an LLM's memory: which slots are filled and valid,
how often the caller was asked, whether the read-back was confirmed, the cart. Whatever brain
drives the call (the local brain or Claude) can only move it forward through these functions,
so no step is skipped. Every result carries `say` (the words to speak next) and `next` (the node
to go to, or "" to stay), which the compiled FlowConfig branches on.
"""

from __future__ import annotations

import inspect
import weakref
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from loguru import logger
from pipecat.flows import TRANSITION_IN_YAML, FlowManager

from app.brain.normalize import normalize, parse_order
from app.brain.normalize.phone import normalize_phone
from app.brain.speech import join_words, json_value, say_phone, say_value
from app.config.load import LoadedBot
from app.errors import FlowRuntimeError
from app.flows.cart import Cart
from app.flows.checks import BUILTIN_TEMPLATE_NAMES, TEMPLATE
from app.flows.compiler import CompiledFlow, CompiledForm, GeneratedFunction, default_exit
from app.flows.handlers import HandlerContext, call_handler
from app.flows.model import Completion, Slot
from app.flows.rules import check_rule
from app.store import OpeningHours, Store

Result = dict[str, Any]


@dataclass
class FormProgress:
    asking: str | None = None
    attempts: Counter = field(default_factory=Counter)
    awaiting_confirm: bool = False
    skipped: set[str] = field(default_factory=set)
    offering: str | None = None  # the phone slot for which the caller's own number was offered
    offered: set[str] = field(default_factory=set)


class CallSession:
    """The state of one call through one compiled flow."""

    def __init__(self, bot: LoadedBot, store: Store, *, call_id: str, clock: Callable[[], datetime]):
        self.bot = bot
        self.flow: CompiledFlow = bot.flow
        self.store = store
        self.call_id = call_id
        self.clock = clock
        self.values: dict[str, Any] = {}
        self.progress: dict[str, FormProgress] = {}
        menu = next(iter(self.flow.menus.values()), None)
        self.cart: Cart | None = Cart(menu.menu.catalog) if menu else None
        self.menu_misses = 0
        self.result: Result = {}
        self.scratch: dict[str, Any] = {}
        self.outcome: dict[str, Any] | None = None
        self.pending: list[str] = []
        self.carry: str | None = None
        self.flow_manager: FlowManager | None = None
        self.counters: Counter = Counter()
        self.caller_number: str | None = None  # the number the call comes from, when the transport knows it (Twilio)
        self._entered: str | None = None
        hours = self.flow.flow.hours
        self.hours = (
            OpeningHours(days=hours.weekday_numbers, open=hours.open, close=hours.close, step_min=hours.step_min, capacity=hours.capacity)
            if hours
            else None
        )
        self.phone_slots = {s.name for form in self.flow.forms.values() for s in form.slots if s.type == "phone"}
        self.template_names = set(BUILTIN_TEMPLATE_NAMES)
        for form in self.flow.forms.values():
            self.template_names |= {s.name for s in form.slots} | set(form.form.on_complete.sets)
        for menu_ in self.flow.menus.values():
            self.template_names |= set(menu_.menu.on_done.sets)

    # --- glue to Pipecat Flows ------------------------------------------------------------------

    @property
    def node(self) -> str | None:
        return self.flow_manager.current_node if self.flow_manager else None

    def attach(self, flow_manager: FlowManager) -> None:
        """This call's FlowManager: the flow's direct functions called by it act on this session."""
        self.flow_manager = flow_manager
        _SESSIONS[flow_manager] = self

    def sync_state(self) -> None:
        """Mirror the spoken values into Flows' state, which renders `{{ name }}` in task messages."""
        if self.flow_manager is not None:
            self.flow_manager.state.update(self.template_values())

    @property
    def entered(self) -> bool:
        """Whether the brain has taken up the current node (its form progress is current)."""
        return self.node is not None and self.node == self._entered

    def enter_if_new(self) -> None:
        node = self.node
        if node is None or node == self._entered:
            return
        self._entered = node
        self.counters[f"node:{node}"] += 1
        form = self.flow.forms.get(node)
        if form is not None:  # a form entered (again) asks its questions afresh
            for slot in form.slots:
                self.values.pop(slot.name, None)
            self.progress[node] = FormProgress()
        self.sync_state()

    # --- speech ---------------------------------------------------------------------------------

    def template_values(self) -> dict[str, str]:
        today = self.clock().date()
        values = {name: "" for name in self.template_names}
        values.update({k: say_phone(v) if k in self.phone_slots and isinstance(v, str) else say_value(v, today) for k, v in self.values.items()})
        values["bot_name"] = self.bot.config.name
        if self.cart is not None:
            values["cart"] = self.cart.summary()
            values["total"] = self.cart.spoken_total()
        return values

    def render(self, text: str | None) -> str:
        if not text:
            return ""
        values = self.template_values()

        def substitute(match) -> str:
            if match.group(1):
                return match.group(0)[1:]
            return values.get(match.group(2), "")

        return TEMPLATE.sub(substitute, text)

    def speak(self, *lines: str | None) -> str:
        """Pending lines (from a transition) first, then these; drains the pending lines."""
        text = " ".join(line.strip() for line in [*self.pending, *lines] if line and line.strip())
        self.pending.clear()
        return text

    def entry_speech(self) -> str:
        """What the bot says on entering the current node."""
        self.enter_if_new()
        node = self.node
        if node is None:
            return self.speak()
        return self.speak(self.render(self.flow.speech_on_entry(node)), self.question(node))

    def question(self, node: str) -> str:
        """The question the current node is waiting on."""
        if node in self.flow.forms:
            form = self.flow.forms[node]
            progress = self.progress.setdefault(node, FormProgress())
            if progress.awaiting_confirm and form.form.confirm:
                return self.render(form.form.confirm.say)
            slot = self.next_slot(form)
            if slot is not None:
                return self.ask(progress, slot)
        if node in self.flow.menus and self.cart is not None:
            menu = self.flow.menus[node].menu
            return menu.prompt if not self.cart.lines else menu.anything_else
        return ""

    def expects_more(self, text: str) -> bool:
        """Whether `text` is the start of a value the current question still waits for
        (part of a phone number, an email cut off at 'at' or 'dot'): the turn is not over yet."""
        node = self.node
        if node not in self.flow.forms:
            return False
        progress = self.progress.get(node)
        if progress is None or progress.asking is None or progress.awaiting_confirm:
            return False
        kind = self.flow.forms[node].specs[progress.asking].type
        if kind == "phone":
            digits = sum(c.isdigit() for c in text)
            return 0 < digits < 10
        if kind == "email":
            return text.strip().lower().rstrip(".,").endswith((" at", " dot", "@"))
        return False

    def ask(self, progress: FormProgress, slot: Slot) -> str:
        """The question for `slot`: its prompt; for a phone slot, once, the caller's own number as
        a yes/no question when the call's number is known ("Should I use the number you're calling
        from, 555-123-4567?")."""
        progress.asking = slot.name
        progress.offering = None
        own = normalize_phone(self.caller_number) if slot.type == "phone" and self.caller_number else None
        if own and slot.name not in progress.offered:
            progress.offered.add(slot.name)
            progress.offering = slot.name
            return f"Should I use the number you're calling from, {say_phone(own)}?"
        return self.render(slot.prompt)

    # --- forms ----------------------------------------------------------------------------------

    def active(self, form: CompiledForm, slot: Slot) -> bool:
        condition = form.conditions.get(slot.name)
        return condition is None or condition.evaluate(self.values)

    def next_slot(self, form: CompiledForm) -> Slot | None:
        progress = self.progress.setdefault(form.node, FormProgress())
        for slot in form.slots:
            if slot.name in self.values or slot.name in progress.skipped or not self.active(form, slot):
                continue
            if slot.required or progress.asking == slot.name:
                return slot
        return None

    def handler_context(self, node: str, slot: str | None = None, value: Any = None) -> HandlerContext:
        return HandlerContext(
            call_id=self.call_id, node=node, slots=dict(self.values), data=self.flow.flow.data,
            hours=self.hours, store=self.store, now=self.clock(), state=self.scratch, slot=slot, value=value, cart=self.cart,
        )

    async def validate(self, form: CompiledForm, slot: Slot, value: Any) -> str | None:
        """The refusal message when `value` breaks one of the slot's rules, else None."""
        for rule in slot.validate_:
            if rule.rule == "handler":
                assert rule.handler is not None
                ctx = self.handler_context(form.node, slot.name, value)
                ctx.slots = {**self.values, slot.name: value}
                result = await call_handler(rule.handler, ctx)
                if result.get("ok", True) is False:
                    return str(result.get("message") or rule.message or f"Sorry, that {slot.name} doesn't work.")
                continue
            message = check_rule(rule, slot, value, now=self.clock(), hours=self.hours)
            if message:
                return message
        return None

    async def fill(self, node: str, **args: Any) -> Result:
        self.enter_if_new()
        form = self.flow.forms[node]
        progress = self.progress.setdefault(node, FormProgress())
        progress.offering = None
        given = {k: v for k, v in args.items() if k in form.specs and v not in (None, "")}
        failure: tuple[Slot, str | None] | None = None
        changed: list[str] = []
        for slot in form.slots:
            if slot.name not in given or not self.active(form, slot):
                continue
            value = normalize(form.specs[slot.name], str(given[slot.name]), now=self.clock())
            if value is None:
                if failure is None and (slot.name == progress.asking or len(given) == 1):
                    failure = (slot, None)
                continue
            message = await self.validate(form, slot, value)
            if message:
                self.values.pop(slot.name, None)
                failure = failure or (slot, message)
                continue
            self.values[slot.name] = value
            progress.attempts[slot.name] = 0
            changed.append(slot.name)
        if changed:
            self.counters["slots_filled"] += len(changed)
            failure = failure or await self.revalidate(form, changed)
        self.sync_state()
        redo = args.get("redo")
        if not changed and failure is None and isinstance(redo, str) and redo in form.specs:
            self.values.pop(redo, None)
            progress.awaiting_confirm = False
            progress.asking = redo
            return self.stay(self.render(next(s for s in form.slots if s.name == redo).prompt))
        if failure is None and not changed:
            asking = next((s for s in form.slots if s.name == progress.asking), None) or self.next_slot(form)
            if asking is None or progress.awaiting_confirm:
                self.counters["no_match"] += 1
                return self.stay(self.speak("Sorry, I didn't catch that.", self.question(node)))
            failure = (asking, None)
        if failure is not None:
            return await self.refuse(form, progress, *failure)
        return await self.advance(form, progress)

    async def revalidate(self, form: CompiledForm, changed: list[str]) -> tuple[Slot, str] | None:
        """A change may break a slot checked earlier (a new date makes the time taken): check again."""
        for slot in form.slots:
            if slot.name in changed or slot.name not in self.values:
                continue
            if any(rule.rule == "handler" for rule in slot.validate_):
                message = await self.validate(form, slot, self.values[slot.name])
                if message:
                    self.values.pop(slot.name)
                    return slot, message
        return None

    async def refuse(self, form: CompiledForm, progress: FormProgress, slot: Slot, message: str | None) -> Result:
        progress.awaiting_confirm = False
        progress.asking = slot.name
        progress.attempts[slot.name] += 1
        self.counters["no_match" if message is None else "invalid"] += 1
        limit = slot.max_reprompts if slot.max_reprompts is not None else form.form.max_reprompts
        if progress.attempts[slot.name] > limit:
            return await self.way_out(form, progress, slot)
        if message is None:
            reprompts = slot.reprompts
            attempt = progress.attempts[slot.name]
            message = reprompts[min(attempt, len(reprompts)) - 1] if reprompts else f"Sorry, I didn't catch that. {slot.prompt}"
        return self.stay(self.speak(self.render(message)))

    async def way_out(self, form: CompiledForm, progress: FormProgress, slot: Slot) -> Result:
        no_match = slot.on_no_match or form.form.on_no_match
        self.counters["no_match_exit"] += 1
        logger.info(f"call {self.call_id}: no usable '{slot.name}' after {progress.attempts[slot.name]} tries: {no_match.action}")
        if no_match.action == "skip":
            progress.skipped.add(slot.name)
            return await self.advance(form, progress)
        target = no_match.transition_to or default_exit(self.flow.flow, "transfer" if no_match.action == "transfer" else "end")
        self.pending.append(self.render(no_match.say))
        return {"say": "", "next": target or ""}

    async def advance(self, form: CompiledForm, progress: FormProgress) -> Result:
        slot = self.next_slot(form)
        if slot is not None:
            return self.stay(self.speak(self.ask(progress, slot)))
        progress.asking = None
        if form.form.confirm:
            progress.awaiting_confirm = True
            return self.stay(self.speak(self.render(form.form.confirm.say)))
        return await self.complete(form.node, form.form.on_complete, form.next)

    async def confirm(self, node: str, confirmed: bool | None = None, **_: Any) -> Result:
        self.enter_if_new()
        form = self.flow.forms[node]
        progress = self.progress.setdefault(node, FormProgress())
        if not progress.awaiting_confirm:
            return self.stay(self.speak(self.question(node)))
        if confirmed:
            progress.awaiting_confirm = False
            self.counters["confirmed"] += 1
            return await self.complete(node, form.form.on_complete, form.next)
        assert form.form.confirm is not None
        progress.awaiting_confirm = False
        progress.asking = None
        self.counters["confirm_declined"] += 1
        return self.stay(self.speak(self.render(form.form.confirm.on_no)))

    async def complete(self, node: str, completion: Completion, branches) -> Result:
        result: Result = {}
        if completion.handler is not None:
            ctx = self.handler_context(node)
            try:
                result = await call_handler(completion.handler, ctx)
            except FlowRuntimeError as e:
                logger.error(f"call {self.call_id}: {e}")
                self.counters["handler_errors"] += 1
                if completion.on_error:
                    return {"say": "", "next": completion.on_error}
                return self.stay(self.speak("Sorry, something went wrong on our side. Could you say that again?"))
            if ctx.outcome is not None:
                self.outcome = ctx.outcome
        self.result = {k: v for k, v in result.items() if k not in ("say", "clear", "set")}
        self.values.update(result.get("set") or {})
        cleared = [s for s in result.get("clear") or [] if s in self.values]
        if cleared and node in self.flow.forms:
            for name in cleared:
                self.values.pop(name)
            form = self.flow.forms[node]
            progress = self.progress.setdefault(node, FormProgress())
            progress.awaiting_confirm = False
            self.sync_state()
            slot = self.next_slot(form)
            progress.asking = slot.name if slot else None
            return self.stay(self.speak(self.render(result.get("say")), self.render(slot.prompt) if slot and not result.get("say") else None))
        self.sync_state()
        values = {**self.values, "result": self.result}
        target = next((goto for condition, goto in branches if condition is None or condition.evaluate(values)), "")
        self.pending += [self.render(completion.say), self.render(result.get("say"))]
        return {"say": "", "next": target, **{k: json_value(v) for k, v in self.result.items()}}

    def stay(self, say: str) -> Result:
        return {"say": say, "next": ""}

    # --- menus ----------------------------------------------------------------------------------

    async def update_order(self, node: str, request: str | None = None, **_: Any) -> Result:
        self.enter_if_new()
        menu = self.flow.menus[node]
        cart = self.cart
        assert cart is not None
        edits = parse_order(request or "", menu.catalog)
        waiting = cart.needs_size()
        if not edits and waiting is not None:
            size = next((s for s, syn in menu.catalog.sizes.items() if _mentions(request or "", (s, *syn))), None)
            if size:
                waiting.size = size
                return self.stay(self.after_cart_change([f"{cart.describe(waiting)}"]))
        changes = [change for edit in edits if (change := cart.apply(edit))]
        if not changes:
            self.menu_misses += 1
            self.counters["no_match"] += 1
            if self.menu_misses > 2 and (target := default_exit(self.flow.flow, "transfer")):
                return {"say": "", "next": target}
            items = join_words(list(menu.menu.catalog.items), "or")
            return self.stay(self.speak(f"Sorry, I didn't catch that. We have {items}. What would you like?"))
        self.menu_misses = 0
        self.counters["cart_edits"] += len(changes)
        self.sync_state()
        return self.stay(self.after_cart_change(changes))

    def after_cart_change(self, changes: list[str]) -> str:
        cart = self.cart
        assert cart is not None
        waiting = cart.needs_size()
        sizes = join_words(list(cart.catalog.sizes), "or")
        lead = f"Got it, {join_words(changes)}."
        if waiting is not None:
            return self.speak(lead, f"What size would you like the {waiting.item}: {sizes}?")
        node = self.node
        if node in self.flow.menus:
            return self.speak(lead, self.flow.menus[node].menu.anything_else)
        return self.speak(lead, self.question(node) if node else "")

    async def finish_order(self, node: str, **_: Any) -> Result:
        self.enter_if_new()
        menu = self.flow.menus[node]
        cart = self.cart
        assert cart is not None
        if not cart.lines:
            return self.stay(self.speak(menu.menu.empty))
        waiting = cart.needs_size()
        if waiting is not None:
            return self.stay(self.speak(f"What size would you like the {waiting.item}: {join_words(list(cart.catalog.sizes), 'or')}?"))
        return await self.complete(node, menu.menu.on_done, menu.next)

    # --- global intents -------------------------------------------------------------------------

    async def start_over(self, node: str | None = None, **_: Any) -> Result:
        self.values.clear()
        self.progress.clear()
        self.result = {}
        if self.cart is not None:
            self.cart.lines.clear()
        self._entered = None
        self.counters["start_over"] += 1
        self.pending.append("Okay, let's start over.")
        self.sync_state()
        return {"say": "", "next": self.flow.flow.initial_node}

    async def repeat(self, node: str | None = None, **_: Any) -> Result:
        self.counters["repeat"] += 1
        last = ""
        if self.flow_manager is not None:
            for message in reversed(self.flow_manager.get_current_context()):
                if message.get("role") == "assistant" and isinstance(message.get("content"), str) and message["content"].strip():
                    last = message["content"]
                    break
        return self.stay(last or self.speak(self.question(self.node or "")))

    # --- reporting ------------------------------------------------------------------------------

    def slots_json(self) -> dict[str, Any]:
        return {k: json_value(v) for k, v in self.values.items() if v is not None}


def _mentions(text: str, words: tuple[str, ...]) -> bool:
    lowered = f" {text.lower()} "
    return any(f" {w.lower()} " in lowered for w in words if w)


# The FlowManager of each call in progress -> its session (`CallSession.attach`). The direct
# functions are the bot's, built once with its Pipecat Flow (app/pipeline.py `bot_flow`), and
# find the call they act for through the FlowManager that calls them.
_SESSIONS: weakref.WeakKeyDictionary[FlowManager, CallSession] = weakref.WeakKeyDictionary()


def direct_functions(flow: CompiledFlow) -> dict[str, Callable]:
    """The generated direct functions, named as the compiled FlowConfig names them."""
    return {name: _direct_function(fn) for name, fn in flow.functions.items()}


def session_of(flow_manager: FlowManager) -> CallSession:
    try:
        return _SESSIONS[flow_manager]
    except KeyError:
        raise FlowRuntimeError("a flow function was called by a FlowManager no call session is attached to (CallSession.attach)") from None


def _direct_function(fn: GeneratedFunction) -> Callable:
    """A Flows direct function with the generated signature: `(flow_manager, <params>=None)`; its
    body is the method of the calling session named after the function's kind (`fill`, ...)."""
    method = fn.kind
    if not callable(getattr(CallSession, method, None)):
        raise FlowRuntimeError(f"generated function '{fn.name}' is of kind '{fn.kind}', which CallSession has no body for")

    async def direct(flow_manager: FlowManager, **kwargs: Any):
        body: Callable[..., Awaitable[Result]] = getattr(session_of(flow_manager), method)
        result = await body(fn.node, **kwargs) if fn.node is not None else await body(**kwargs)
        logger.debug(f"{fn.name}({kwargs}) -> {result}")
        return result, TRANSITION_IN_YAML

    parameters = [inspect.Parameter("flow_manager", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    parameters += [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None) for name, _, _ in fn.params]
    if fn.kind == "fill":
        parameters.append(inspect.Parameter("redo", inspect.Parameter.KEYWORD_ONLY, default=None))
    direct.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    direct.__annotations__ = {name: kind | None for name, kind, _ in fn.params}
    args = [(name, desc) for name, _, desc in fn.params]
    if fn.kind == "fill":
        direct.__annotations__["redo"] = str | None
        args.append(("redo", "The name of a detail the caller wants to change, when they have not said the new value yet."))
    direct.__doc__ = fn.description + ("\n\nArgs:\n" + "\n".join(f"    {n}: {d}" for n, d in args) if args else "")
    direct.__name__ = direct.__qualname__ = fn.name
    return direct

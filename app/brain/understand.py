"""What the local brain makes of a caller turn: a function to call, or words to say.

Deterministic, offline, driven by the compiled flow: typed extraction for forms, the order
parser for menus, phrase matching for intents, bot.yaml's FAQ, and the global intents.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from app.brain.normalize import classify_yes_no, extract, parse_order
from app.brain.speech import json_value
from app.flows.session import CallSession, FormProgress

NOTHING_HEARD = "The caller spoke, but nothing could be transcribed. Briefly ask them to say that again."
_WORD = re.compile(r"[a-z0-9']+")
DONE_PHRASES = ("that's all", "that is all", "that's it", "that is it", "nothing else", "no", "nope", "i'm done", "im done", "that's everything", "that'll be all", "that will be all", "no thanks", "done", "all set", "that's good", "i'm good")
GREETINGS = ("hello", "hi", "hey", "good morning", "good afternoon", "good evening")
THANKS = ("thanks", "thank you", "cheers")
SLOT_WORDS = {
    "date": ("date", "day"), "time": ("time",), "name": ("name",), "phone": ("number", "phone"),
    "service": ("service",), "address": ("address",), "fulfilment": ("pickup", "delivery"),
}  # fmt: skip


@dataclass(frozen=True)
class Call:
    function: str
    arguments: dict[str, Any] = field(default_factory=dict)
    carry: bool = False  # the utterance may hold values for the node this call leads to


@dataclass(frozen=True)
class Say:
    text: str


Decision = Call | Say


def tokens(text: str) -> list[str]:
    return [_stem(t) for t in _WORD.findall(text.lower().replace("’", "'"))]


def _stem(token: str) -> str:
    return token[:-1] if len(token) > 3 and token.endswith("s") and not token.endswith("ss") else token


def phrase_score(words: list[str], phrase: str) -> int:
    """Length of `phrase` when its words occur together in `words`, else 0."""
    target = tokens(phrase)
    n = len(target)
    if not n:
        return 0
    return n if any(words[i : i + n] == target for i in range(len(words) - n + 1)) else 0


def best_phrase(words: list[str], options: list[tuple[str, tuple[str, ...]]]) -> str | None:
    scored = [(max((phrase_score(words, p) for p in phrases), default=0), -i, key) for i, (key, phrases) in enumerate(options)]
    best = max(scored, default=(0, 0, None))
    return best[2] if best[0] > 0 else None


def canonical(value: Any) -> str:
    """A value as a function argument: its JSON form, and yes/no for booleans."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(json_value(value))


def decide(session: CallSession, utterance: str) -> Decision:
    """The local brain's answer to one caller turn."""
    session.enter_if_new()
    node = session.node or ""
    words = tokens(utterance)
    if not words:
        return Say(session.speak("Sorry, I didn't catch that.", session.question(node)))
    global_call = _global(session, words, ("human", "start_over", "repeat"))
    if global_call:
        return global_call
    if node in session.flow.forms:
        decision = _form(session, node, utterance, words)
    elif node in session.flow.menus:
        decision = _menu(session, node, utterance, words)
    else:
        decision = _intents(session, node, words)
    if decision is not None:
        return decision
    goodbye = _global(session, words, ("goodbye",))
    if goodbye:
        return goodbye
    answer = faq(session, words)
    if answer:
        return Say(session.speak(answer, session.question(node)))
    if words[0] in GREETINGS and len(words) <= 3:
        return Say(session.speak("Hi!", session.question(node) or _entry_text(session, node)))
    if any(phrase_score(words, t) for t in THANKS) and len(words) <= 4:
        return Say(session.speak("You're welcome!", session.question(node)))
    return _no_match(session, node, utterance)


def _global(session: CallSession, words: list[str], kinds: tuple[str, ...]) -> Call | None:
    functions = {session.flow.global_intents[k]: k for k in kinds if k in session.flow.global_intents}
    options = [(i.function, i.examples) for i in session.flow.intents if i.node is None and i.function in functions]
    chosen = best_phrase(words, options)
    return Call(chosen) if chosen else None


def faq(session: CallSession, words: list[str]) -> str | None:
    options = [(str(i), tuple(entry.match)) for i, entry in enumerate(session.bot.config.faq)]
    chosen = best_phrase(words, options)
    return session.bot.config.faq[int(chosen)].answer if chosen is not None else None


def _form(session: CallSession, node: str, utterance: str, words: list[str]) -> Decision | None:
    form = session.flow.forms[node]
    progress = session.progress.setdefault(node, FormProgress())
    specs = [form.specs[s.name] for s in form.slots if session.active(form, s)]
    expected = None if progress.awaiting_confirm else progress.asking
    matches = extract(utterance, specs, now=session.clock(), expected=expected)
    values = {name: canonical(m.value) for name, m in matches.items()}
    if progress.awaiting_confirm and form.confirm_fn:
        answer = classify_yes_no(utterance)
        if values:
            return Call(form.fill_fn, values)
        if answer is not None:
            return Call(form.confirm_fn, {"confirmed": answer})
    elif values:
        return Call(form.fill_fn, values)
    elif progress.offering and (answer := classify_yes_no(utterance)) is not None:  # "Is <their number> the best number?"
        return Call(form.fill_fn, {progress.offering: session.caller_number} if answer else {"redo": progress.offering})
    if session.cart is not None and parse_order(utterance, next(iter(session.flow.menus.values())).catalog):
        menu = next(iter(session.flow.menus.values()))
        return Call(menu.update_fn, {"request": utterance})
    for slot in form.slots:
        if any(w in words for w in SLOT_WORDS.get(slot.name, (slot.name,))) and session.active(form, slot):
            if slot.name in session.values or progress.awaiting_confirm:
                return Call(form.fill_fn, {"redo": slot.name})
    return None


def _menu(session: CallSession, node: str, utterance: str, words: list[str]) -> Decision | None:
    menu = session.flow.menus[node]
    cart = session.cart
    assert cart is not None
    if parse_order(utterance, menu.catalog):
        return Call(menu.update_fn, {"request": utterance})
    waiting = cart.needs_size()
    if waiting is not None and any(phrase_score(words, s) for size, syn in menu.catalog.sizes.items() for s in (size, *syn)):
        return Call(menu.update_fn, {"request": utterance})
    if any(phrase_score(words, p) for p in DONE_PHRASES):
        return Call(menu.finish_fn)
    if classify_yes_no(utterance) is True and len(words) <= 3:
        return Say(session.speak("Sure, what else would you like?"))
    return None


def _intents(session: CallSession, node: str, words: list[str]) -> Decision | None:
    options = [(i.function, i.examples) for i in session.flow.intents if i.node == node]
    chosen = best_phrase(words, options)
    return Call(chosen, carry=True) if chosen else None


def _no_match(session: CallSession, node: str, utterance: str) -> Decision:
    if node in session.flow.forms:
        return Call(session.flow.forms[node].fill_fn, {"not_understood": utterance})
    if node in session.flow.menus:
        return Call(session.flow.menus[node].update_fn, {"request": utterance})
    session.counters["no_match"] += 1  # forms and menus count their own misses
    return Say(session.speak("Sorry, I didn't catch that.", _entry_text(session, node)))


def _entry_text(session: CallSession, node: str) -> str:
    return session.render(session.flow.speech_on_entry(node)) if node else ""


def on_entry(session: CallSession) -> Decision:
    """The local brain's turn when a node is entered: use a carried utterance, else speak."""
    session.enter_if_new()
    node = session.node or ""
    carry, session.carry = session.carry, None
    if carry:
        entry = session.render(session.flow.speech_on_entry(node))
        if node in session.flow.forms:
            form = session.flow.forms[node]
            specs = [form.specs[s.name] for s in form.slots if session.active(form, s)]
            matches = extract(carry, specs, now=session.clock(), expected=None)
            if matches:
                session.pending.append(entry)
                return Call(form.fill_fn, {n: canonical(m.value) for n, m in matches.items()})
        if node in session.flow.menus and parse_order(carry, session.flow.menus[node].catalog):
            session.pending.append(entry)
            return Call(session.flow.menus[node].update_fn, {"request": carry})
    return Say(session.entry_speech())

"""Which brain answers a caller turn: the local fast path, or the tool-calling LLM.

A pure reading of the turn against the call's state (nothing in the session changes): the same
recognizers the local brain uses (typed slot extraction, yes/no, the order parser, intent phrases,
the FAQ, greetings), asked only "would the local brain answer this with confidence?".

Modes (bot.yaml `routing:`):
- `off`: every turn goes to the configured LLM;
- `conservative`: only turns that are plainly simple: a value for the slot being asked, a bare
  yes/no to a read-back, a global intent ("repeat that", "a person please"), an FAQ, greetings,
  thanks, goodbye, silence;
- `aggressive`: every turn the local brain recognizes (orders, intents, slot values given out of
  order, corrections); only what it cannot place goes to the LLM.

With `light=True` (bot.yaml `light_model:`), the turns left for the LLM are weighed once more: the
simple ones go to the lighter model (`Route.light`), the rest to the main one. Light: a short
turn in a form that says one value or none the parser could read ("hmm let me think", a one-slot
correction at the read-back), a yes/no-ish reply, small talk. Main: questions, long turns, more
than one slot value, order changes, and anything outside a form the flow cannot place. When in
doubt the main model: a light turn sent to it costs a little time, the other way round an answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from app.brain.normalize import classify_yes_no, extract, parse_order
from app.brain.understand import DONE_PHRASES, GREETINGS, THANKS, _global, best_phrase, faq, phrase_score, tokens
from app.flows.session import CallSession, FormProgress

Mode = Literal["off", "conservative", "aggressive"]
SHORT = 8  # words: a longer turn usually says more than one simple thing
# A question asks for what the flow does not hold: wh-words anywhere, these only to open the turn.
WH_WORDS = frozenset(tokens("what what's which when where why how how's who whose"))
ASKING = frozenset(tokens("do does did can could would will is are should may any"))
SMALL_TALK = (
    "how are you", "how are you doing", "how's it going", "how is it going", "how's your day",
    "nice to meet you", "have a nice day", "have a good day",
)  # fmt: skip
_PLEASANTRIES = sorted((tokens(p) for p in (*SMALL_TALK, *GREETINGS, *THANKS)), key=len, reverse=True)


@dataclass(frozen=True)
class Route:
    fast: bool
    reason: str
    light: bool = False  # an LLM turn simple enough for the light model

    @property
    def path(self) -> str:
        return "fast" if self.fast else "light" if self.light else "llm"


def route(session: CallSession, utterance: str, mode: Mode, *, light: bool = False) -> Route:
    """Classify one final caller turn; never changes the session. `light`: weigh the LLM turns."""
    if mode == "off":
        return Route(False, "routing off")
    words = tokens(utterance)
    aggressive = mode == "aggressive"
    if not words:
        return Route(True, "nothing heard")
    if _global(session, words, ("human", "start_over", "repeat")):
        return Route(True, "global intent")
    node = session.node or ""
    found = None
    if node in session.flow.forms:
        found = _form(session, node, utterance, words, aggressive)
    elif node in session.flow.menus:
        found = _menu(session, node, utterance, words, aggressive)
    else:
        options = [(i.function, i.examples) for i in session.flow.intents if i.node == node]
        if best_phrase(words, options) and (aggressive or len(words) <= SHORT):
            found = Route(True, "intent phrase")
    if found is not None:
        return found
    if _global(session, words, ("goodbye",)):
        return Route(True, "goodbye")
    if faq(session, words):
        return Route(True, "faq")
    if words[0] in GREETINGS and len(words) <= 3:
        return Route(True, "greeting")
    if any(phrase_score(words, t) for t in THANKS) and len(words) <= 4:
        return Route(True, "thanks")
    return _weigh(session, node, utterance, words) if light else Route(False, "no confident local answer")


def _progress(session: CallSession, node: str) -> FormProgress:
    # A node the flow has just moved to starts afresh when the brain takes it up.
    return session.progress.get(node, FormProgress()) if session.entered else FormProgress()


def _form(session: CallSession, node: str, utterance: str, words: list[str], aggressive: bool) -> Route | None:
    form = session.flow.forms[node]
    progress = _progress(session, node)
    specs = [form.specs[s.name] for s in form.slots if session.active(form, s)]
    if progress.awaiting_confirm:
        values = extract(utterance, specs, now=session.clock(), expected=None)
        if values:
            return Route(True, "correction at read-back") if aggressive else None
        if classify_yes_no(utterance) is not None and (aggressive or len(words) <= 4):
            return Route(True, "yes/no to read-back")
        return _cart_edit(session, utterance, aggressive)
    values = extract(utterance, specs, now=session.clock(), expected=progress.asking)
    if not values:
        return _cart_edit(session, utterance, aggressive)
    if progress.asking in values and len(words) <= SHORT:
        return Route(True, f"value for '{progress.asking}'")
    return Route(True, "slot values") if aggressive else None


def _cart_edit(session: CallSession, utterance: str, aggressive: bool) -> Route | None:
    """An order change after the menu ("actually add a sprite" at the checkout read-back), which
    the local brain applies to the cart: fast in aggressive mode."""
    if not aggressive or session.cart is None or not session.flow.menus:
        return None
    menu = next(iter(session.flow.menus.values()))
    return Route(True, "order edit") if parse_order(utterance, menu.catalog) else None


def _menu(session: CallSession, node: str, utterance: str, words: list[str], aggressive: bool) -> Route | None:
    menu = session.flow.menus[node]
    if parse_order(utterance, menu.catalog):
        return Route(True, "order items") if aggressive or len(words) <= SHORT else None
    if any(phrase_score(words, p) for p in DONE_PHRASES) and len(words) <= 4:
        return Route(True, "order finished")
    cart = session.cart
    if cart is not None and cart.needs_size() is not None:
        if any(phrase_score(words, s) for size, syn in menu.catalog.sizes.items() for s in (size, *syn)):
            return Route(True, "size for the last item")
    return None


def _weigh(session: CallSession, node: str, utterance: str, words: list[str]) -> Route:
    """An LLM turn: for the light model when simple (see the module docstring), else the main one."""
    if len(words) > SHORT:
        return Route(False, "long turn")
    if _small_talk(words):
        return Route(False, "small talk", light=True)
    if utterance.rstrip().endswith("?") or words[0] in ASKING or WH_WORDS.intersection(words):
        return Route(False, "question")
    if node in session.flow.forms:
        return _weigh_form(session, node, utterance)
    if classify_yes_no(utterance) is not None:
        return Route(False, "yes/no-ish reply", light=True)
    return Route(False, "not understood")


def _weigh_form(session: CallSession, node: str, utterance: str) -> Route:
    form = session.flow.forms[node]
    progress = _progress(session, node)
    specs = [form.specs[s.name] for s in form.slots if session.active(form, s)]
    expected = None if progress.awaiting_confirm else progress.asking
    values = extract(utterance, specs, now=session.clock(), expected=expected)
    if len(values) > 1:
        return Route(False, "several slot values")
    if session.cart is not None and session.flow.menus:
        menu = next(iter(session.flow.menus.values()))
        if parse_order(utterance, menu.catalog):
            return Route(False, "order change")
    if values:
        return Route(False, "one-slot correction" if progress.awaiting_confirm else "one slot value", light=True)
    if classify_yes_no(utterance) is not None:
        return Route(False, "yes/no-ish reply", light=True)
    return Route(False, "short answer the parser missed", light=True)


def _small_talk(words: list[str]) -> bool:
    """Pleasantries and at most two words more ("hi there, how are you", "thanks so much")."""
    rest = list(words)
    for phrase in _PLEASANTRIES:
        n = len(phrase)
        at = next((i for i in range(len(rest) - n + 1) if rest[i : i + n] == phrase), None)
        if at is not None:
            del rest[at : at + n]
    return len(rest) < len(words) and len(rest) <= 2 and not WH_WORDS.intersection(rest)

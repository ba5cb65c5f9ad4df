"""Tokens with spans into the original text, and the filler words every slot type ignores."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

_TOKEN = re.compile(
    r"""
    (?P<email>[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)
    |(?P<iso>\d{4}-\d{1,2}-\d{1,2}(?:T\d{1,2}:\d{2}(?::\d{2})?)?)(?![\d/])
    |(?P<slash>\d{1,2}/\d{1,2}(?:/\d{2,4})?)(?![\d/])
    |(?P<clock>\d{1,2}:\d{2})(?![\d:])
    |(?P<meridiem>(?<![A-Za-z])[aApP]\.\s?[mM]\.?(?![A-Za-z]))
    |(?P<dotted>\d+(?:\.\d+){2,})
    |(?P<thousands>\d{1,3}(?:,\d{3})+)(?![\d,])
    |(?P<decimal>\d+\.\d+)
    |(?P<ordinal>\d+(?:st|nd|rd|th)(?![A-Za-z]))
    |(?P<digits>\d+)
    |(?P<word>[^\W\d_]+(?:['’][^\W\d_]+)*)
    |(?P<at>@)
    """,
    re.X,
)
_BREAK = re.compile(r"[,;!?]|\.\s|\s-\s|\s—|—\s")


@dataclass(frozen=True, slots=True)
class Tok:
    text: str  # lowercase, apostrophes straightened, "a.m." -> "am", "1,200" -> "1200"
    kind: str  # email iso slash clock meridiem dotted thousands decimal ordinal digits word at
    start: int
    end: int
    brk: bool  # punctuation (a pause) between the previous token and this one
    gap: str  # the raw characters between the previous token and this one
    cap: bool  # written with a capital first letter


@lru_cache(maxsize=512)
def tokenize(text: str) -> tuple[Tok, ...]:
    """The words, numbers and symbols of `text`, each with its span."""
    out: list[Tok] = []
    prev = 0
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup or "word"
        raw = m.group()
        if kind == "meridiem":
            norm = raw[0].lower() + "m"
        elif kind in ("thousands", "dotted"):
            norm = raw.replace(",", "").replace(".", "")
            kind = "digits"
        elif kind == "email":
            norm = raw.lower()
        else:
            norm = raw.lower().replace("’", "'")
        gap = text[prev : m.start()]
        out.append(Tok(norm, kind, m.start(), m.end(), bool(out) and bool(_BREAK.search(gap)), gap, raw[0].isupper()))
        prev = m.end()
    return tuple(out)


def match_phrase(toks: tuple[Tok, ...], i: int, end: int, phrases: dict[str, list[tuple[str, ...]]]) -> int:
    """End index of the longest phrase (indexed by first word) starting at i, else -1."""
    if i >= end:
        return -1
    for phrase in phrases.get(toks[i].text, ()):
        j = i + len(phrase)
        if j <= end and all(toks[i + k].text == w for k, w in enumerate(phrase)):
            if all(not toks[i + k].brk for k in range(1, len(phrase))):
                return j
    return -1


def phrase_index(phrases: list[str] | tuple[str, ...]) -> dict[str, list[tuple[str, ...]]]:
    """Phrases keyed by their first word, longest first."""
    index: dict[str, list[tuple[str, ...]]] = {}
    for p in phrases:
        parts = tuple(p.split())
        index.setdefault(parts[0], []).append(parts)
    for v in index.values():
        v.sort(key=len, reverse=True)
    return index


def stem(word: str) -> str:
    """A crude singular: 'pepperonis' -> 'pepperoni', 'fries' -> 'fry', 'tomatoes' -> 'tomato'."""
    if len(word) > 3 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("oes"):
        return word[:-2]
    if len(word) > 2 and word.endswith("s") and not word.endswith("ss") and word[-2] != "'":
        return word[:-1]
    if word.endswith("'s"):
        return word[:-2]
    return word


HESITATIONS = frozenset("um umm uh uhh uhm er erm ah ahh hmm hm mm mmm".split())

_LEAD = phrase_index(
    [
        p
        for p in """um|umm|uh|uhh|uhm|er|erm|ah|ahh|hmm|hm|mm|mmm|oh|well|so|yeah|yes|yep|okay|ok|sure|actually|sorry|like|
        it's|its|it is|it'll be|it will be|that's|thats|that is|that'd be|that would be|it'd be|it would be|
        i'd say|i would say|let's say|lets say|let's do|lets do|let's go with|lets go with|go with|make it|make that|
        how about|what about|maybe|probably|perhaps|i think|i guess|i'd like|i would like|i want|i'll take|
        i'll have|can i get|can i have|could i get|could i have|can we do|could we do|can you do|
        please|at|on|for|around|about|by|and|just""".replace("\n", "").split("|")
        if p.strip()
    ]
)
_LEAD_LIGHT = phrase_index(
    "um|umm|uh|uhh|uhm|er|erm|ah|ahh|hmm|hm|mm|mmm|well|so|okay|ok|sure|actually|sorry|it's|its|it is|that's|thats|that is|yeah|yes".split("|")
)
_TRAIL = phrase_index(
    """please|thanks|thank you|thank you very much|thanks very much|that's it|that's all|i think|i guess|
    if possible|if that's ok|if that's okay|if you can|um|uh|er|hmm|then|ok|okay""".replace("\n", "").replace("    ", "").split("|")
)
_TRAIL_WORDS = {p[-1] for v in _TRAIL.values() for p in v}
_SAYS = frozenset({"is", "are", "'s"})


def strip_filler(
    toks: tuple[Tok, ...], lo: int = 0, hi: int | None = None, keep: frozenset[str] = frozenset(), light: bool = False
) -> tuple[int, int]:
    """(lo, hi) narrowed past leading and trailing filler ('um', "it's", 'my number is', 'please');
    `light` drops only hesitations and lead-ins, not 'at' / 'on' / 'for' / 'make it'."""
    hi = len(toks) if hi is None else hi
    lead = _LEAD_LIGHT if light else _LEAD
    changed = True
    while changed and lo < hi:
        changed = False
        if toks[lo].text in keep:
            break
        j = match_phrase(toks, lo, hi, lead)
        if j > lo:
            lo, changed = j, True
            continue
        j = _my_x_is(toks, lo, hi)
        if j > lo:
            lo, changed = j, True
    while lo < hi and toks[hi - 1].text in _TRAIL_WORDS and toks[hi - 1].text not in keep:
        for k in range(max(lo, hi - 4), hi):
            if match_phrase(toks, k, hi, _TRAIL) == hi:
                hi = k
                break
        else:
            break
    return lo, hi


_SLOT_NOUNS = frozenset("name number phone email address date day time".split())
_NOT_NOUNS = frozenset("and at on for to a an it this that".split())


def _my_x_is(toks: tuple[Tok, ...], lo: int, hi: int) -> int:
    """After 'my phone number is' / 'the name is' / "my name's" / 'name is', else -1."""
    first = toks[lo].text
    if first in ("my", "the", "our"):
        for k in range(lo + 1, min(lo + 4, hi)):
            t = toks[k].text
            if t in _SAYS and k > lo + 1:
                return k + 1
            if t.endswith("'s") and t[:-2].isalpha():
                return k + 1
            if not t.isalpha() or t in _NOT_NOUNS:
                return -1
        return -1
    if first in _SLOT_NOUNS and lo + 1 < hi and toks[lo + 1].text in _SAYS:
        return lo + 2
    if first.endswith("'s") and first[:-2] in _SLOT_NOUNS:
        return lo + 1
    return -1

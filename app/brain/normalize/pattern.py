"""Codes checked by a slot's regex, said letter by letter: 'a b c one two three' -> 'ABC123'."""

from __future__ import annotations

import re
from functools import lru_cache

from app.brain.normalize.numbers import DIGIT_WORDS, UNITS
from app.brain.normalize.text import Tok, strip_filler, tokenize

NATO = {
    "alpha": "a", "alfa": "a", "bravo": "b", "charlie": "c", "delta": "d", "echo": "e", "foxtrot": "f", "golf": "g",
    "hotel": "h", "india": "i", "juliet": "j", "juliett": "j", "kilo": "k", "lima": "l", "mike": "m", "november": "n",
    "oscar": "o", "papa": "p", "quebec": "q", "romeo": "r", "sierra": "s", "tango": "t", "uniform": "u", "victor": "v",
    "whiskey": "w", "whisky": "w", "xray": "x", "yankee": "y", "zulu": "z",
}  # fmt: skip
_SYMBOLS = {"dash": "-", "hyphen": "-", "dot": ".", "slash": "/", "underscore": "_", "space": " "}
_REPEAT = {"double": 2, "triple": 3}


@lru_cache(maxsize=128)
def compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None


def spell(toks: tuple[Tok, ...], lo: int, hi: int, zero: bool) -> str | None:
    """Letters, digits and symbols said one by one, joined; `zero` reads 'oh' as 0 (else O)."""
    out: list[str] = []
    k = lo
    while k < hi:
        w = toks[k].text
        if w == "as" and k + 3 <= hi and toks[k + 1].text in ("in", "for"):
            k += 3  # 'b as in boy'
            continue
        if w in _REPEAT and k + 1 < hi:
            nxt = _one(toks[k + 1].text, zero)
            if nxt is None:
                return None
            out.append(nxt * _REPEAT[w])
            k += 2
            continue
        one = _one(w, zero)
        if one is None:
            if toks[k].kind not in ("digits", "word"):
                return None
            one = w
        out.append(one)
        k += 1
    return "".join(out) or None


def _one(w: str, zero: bool) -> str | None:
    if w in ("oh", "o"):
        return "0" if zero else "o"
    if w in DIGIT_WORDS and (w in UNITS or w == "zero"):
        return DIGIT_WORDS[w]
    if w in NATO:
        return NATO[w]
    if w in _SYMBOLS:
        return _SYMBOLS[w]
    if len(w) == 1 or w.isdigit():
        return w
    return None


def match_code(regex: re.Pattern[str], toks: tuple[Tok, ...], lo: int, hi: int, raw: str | None = None) -> str | None:
    """The code said by toks[lo:hi] when it matches the whole regex (upper case tried first)."""
    if raw is not None and regex.fullmatch(raw):
        return raw
    for zero in (True, False):
        said = spell(toks, lo, hi, zero)
        if said is None:
            continue
        for candidate in (said.upper(), said):
            if regex.fullmatch(candidate):
                return candidate
    return None


def normalize_pattern(pattern: str | None, text: str) -> str | None:
    regex = compiled(pattern) if pattern else None
    if regex is None:
        return None
    toks = tokenize(text)
    lo, hi = strip_filler(toks, keep=frozenset({"oh", "o", "a"}))
    if lo >= hi:
        return None
    raw = text[toks[lo].start : toks[hi - 1].end]
    return match_code(regex, toks, lo, hi, raw)


def _spellable(tok: Tok) -> bool:
    return tok.kind == "digits" or _one(tok.text, True) is not None or tok.text in _REPEAT


def find_codes(regex: re.Pattern[str], text: str, toks: tuple[Tok, ...], used: bytearray) -> list[tuple[str, int, int]]:
    """Codes in the unused tokens: one written token, or the longest run of spoken letters and digits."""
    found: list[tuple[str, int, int]] = []
    n = len(toks)
    i = 0
    while i < n:
        if used[i]:
            i += 1
            continue
        glued = i + 1
        while glued < n and not used[glued] and not toks[glued].gap:
            glued += 1
        raw = text[toks[i].start : toks[glued - 1].end]
        if regex.fullmatch(raw) or regex.fullmatch(raw.upper()):
            found.append((raw if regex.fullmatch(raw) else raw.upper(), i, glued))
            i = glued
            continue
        if not _spellable(toks[i]):
            i += 1
            continue
        end = i
        while end < n and not used[end] and end - i < 24 and (_spellable(toks[end]) or toks[end].text in ("as", "in")):
            end += 1
        for j in range(end, i, -1):
            got = match_code(regex, toks, i, j, text[toks[i].start : toks[j - 1].end])
            if got:
                found.append((got, i, j))
                i = j
                break
        else:
            i += 1
    return found

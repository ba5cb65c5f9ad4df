"""Phone numbers: digit strings with separators, spoken digits, 'double five', 'triple two', 'oh'."""

from __future__ import annotations

import re

from app.brain.normalize.numbers import DIGIT_WORDS, UNITS, match_number
from app.brain.normalize.text import Tok, strip_filler, tokenize

_REPEAT = {"double": 2, "triple": 3, "treble": 3}
_KEEP = frozenset({"oh", "o"})
PHONE_MIN, PHONE_MAX = 7, 15  # a complete number (extraction without a cue); see also `normalize_phone`

Piece = tuple[int, int, str]  # first token, token after, digits


def match_pieces(toks: tuple[Tok, ...], i: int, end: int, used: bytearray | None = None) -> list[Piece]:
    """The run of digit-ish pieces starting at token i ('555', 'five', 'double five', 'thirty three')."""
    pieces: list[Piece] = []
    j = i
    while j < end and (used is None or not used[j]):
        tok = toks[j]
        w = tok.text
        if tok.kind == "digits":
            pieces.append((j, j + 1, w))
            j += 1
        elif w in ("oh", "o", "zero", "nought") and (pieces or w != "o" or _next_is_digit(toks, j + 1, end)):
            pieces.append((j, j + 1, "0"))
            j += 1
        elif w in _REPEAT and j + 1 < end and (used is None or not used[j + 1]):
            d = DIGIT_WORDS.get(toks[j + 1].text) or (toks[j + 1].text if toks[j + 1].kind == "digits" and len(toks[j + 1].text) == 1 else None)
            if d is None:
                break
            pieces.append((j, j + 2, d * _REPEAT[w]))
            j += 2
        elif w in ("plus",) and not pieces:
            j += 1
        else:
            got = match_number(toks, j, _run_end(toks, j, end, used), simple=True)
            if got is None or not isinstance(got[0], int):
                break
            pieces.append((j, got[1], str(got[0])))
            j = got[1]
    return pieces


def _run_end(toks: tuple[Tok, ...], j: int, end: int, used: bytearray | None) -> int:
    if used is None:
        return end
    k = j
    while k < end and not used[k]:
        k += 1
    return k


def _next_is_digit(toks: tuple[Tok, ...], j: int, end: int) -> bool:
    return j < end and (toks[j].kind == "digits" or toks[j].text in DIGIT_WORDS or toks[j].text in UNITS)


def best_suffix(pieces: list[Piece]) -> list[Piece]:
    """Drop leading pieces that are not part of the number ('eleven 555 222 3333' -> '555 222 3333').

    A single spoken digit is never dropped: in '5 5 5 2 2 2 3 3 3 3 3' the caller (or the
    recogniser) said one digit too many, and guessing which one would book a wrong number."""
    for k in range(len(pieces)):
        if k > 0 and len(pieces[k - 1][2]) == 1:
            break
        digits = "".join(p[2] for p in pieces[k:])
        if len(digits) == 10 or (len(digits) == 11 and digits[0] == "1"):
            return pieces[k:]
        if len(digits) < 10:
            break
    return pieces


_GROUP_DOT = re.compile(r"(?<=\d)\.(?=\d)")


def clean_phone(digits: str, minimum: int = PHONE_MIN) -> str | None:
    """Digits only; a leading 1 on 11 digits is dropped; None outside minimum..15 digits."""
    if len(digits) == 11 and digits[0] == "1":
        digits = digits[1:]
    return digits if minimum <= len(digits) <= PHONE_MAX else None


def _ungroup(text: str) -> str:
    """Dots between digits group a phone number ('555.123.4567'; Whisper writes '4.567'), they are
    not decimal points."""
    return _GROUP_DOT.sub("", text)


def spoken_digits(text: str) -> str | None:
    """'five five five two two two three three three three' -> '5552223333', 'double five' -> '55',
    'oh' -> '0', 'thirty three' -> '33'; None unless the whole text is digits."""
    toks = tokenize(_ungroup(text))
    return _whole(toks, 0, len(toks))


def _whole(toks: tuple[Tok, ...], lo: int, hi: int) -> str | None:
    if lo < hi and toks[lo].text == "o" and hi - lo == 1:
        return "0"
    pieces = match_pieces(toks, lo, hi)
    covered = pieces[-1][1] if pieces else lo
    if not pieces or covered != hi:
        return None
    return "".join(p[2] for p in pieces)


def normalize_phone(text: str, minimum: int = 3) -> str | None:
    """A phone answer as digits. Short numbers (3+ digits) are kept so that a form's length rule
    can say what is wrong; extraction without a cue needs 7 or more."""
    toks = tokenize(_ungroup(text))
    lo, hi = strip_filler(toks, keep=_KEEP)
    if lo < hi and toks[lo].text in ("at", "on"):
        lo += 1
    digits = _whole(toks, lo, hi)
    return clean_phone(digits, minimum) if digits else None

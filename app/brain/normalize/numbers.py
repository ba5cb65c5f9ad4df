"""Numbers said as words or digits: 'twenty five', 'two hundred and five', 'a dozen', '1,200', 'fourteenth'."""

from __future__ import annotations

from app.brain.normalize.text import Tok, strip_filler, tokenize

UNITS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9}
TEENS = {
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
SCALES = {"thousand": 1000, "million": 1_000_000, "billion": 1_000_000_000}
NUMBER_WORDS = frozenset({*UNITS, *TEENS, *TENS, *SCALES, "zero", "hundred", "dozen"})
ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
    "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13, "fourteenth": 14,
    "fifteenth": 15, "sixteenth": 16, "seventeenth": 17, "eighteenth": 18, "nineteenth": 19,
    "twentieth": 20, "thirtieth": 30,
}  # fmt: skip
DIGIT_WORDS = {"zero": "0", "oh": "0", "o": "0", "nought": "0", "nil": "0", **{w: str(v) for w, v in UNITS.items()}}

Value = int | float


def _clean(value: float) -> Value:
    return int(value) if float(value).is_integer() else value


def _digit_value(tok: Tok) -> Value | None:
    if tok.kind == "digits":
        return int(tok.text)
    if tok.kind == "decimal":
        return _clean(float(tok.text))
    return None


def match_number(toks: tuple[Tok, ...], i: int, end: int | None = None, *, simple: bool = False) -> tuple[Value, int] | None:
    """The number starting at token i and the index after it; `simple` skips fractions and 'a dozen'."""
    end = len(toks) if end is None else end
    if i >= end:
        return None
    t = toks[i].text
    if not simple and t == "half" and i + 2 < end and toks[i + 1].text == "a" and toks[i + 2].text == "dozen":
        return 6, i + 3
    value = _digit_value(toks[i])
    if value is not None:
        j = i + 1
        if isinstance(value, int) and j < end and not toks[j].brk:
            nxt = toks[j].text
            if nxt == "hundred" and value < 100:
                value, j = value * 100, j + 1
            elif nxt in SCALES and value < 1000:
                value, j = value * SCALES[nxt], j + 1
            elif nxt == "dozen" and not simple:
                value, j = value * 12, j + 1
    else:
        got = _match_words(toks, i, end, simple)
        if got is None:
            return None
        value, j = got
    if simple:
        return value, j
    return _fraction(toks, value, j, end)


def _match_words(toks: tuple[Tok, ...], i: int, end: int, simple: bool) -> tuple[Value, int] | None:
    total = current = 0
    last: str | None = None
    j = i
    while j < end:
        tok = toks[j]
        w = tok.text
        if j > i and tok.brk:
            break
        if w in ("a", "an") and last is None and j + 1 < end and toks[j + 1].text in ("hundred", "thousand", "million", "dozen"):
            if simple and toks[j + 1].text == "dozen":
                break
            current, last = 1, "unit"
        elif w == "zero" and last is None:
            return 0, j + 1
        elif w in UNITS and last in (None, "tens", "hundred", "scale"):
            current, last = current + UNITS[w], "unit"
        elif w in TEENS and last in (None, "hundred", "scale"):
            current, last = current + TEENS[w], "teen"
        elif w in TENS and last in (None, "hundred", "scale"):
            current, last = current + TENS[w], "tens"
        elif w == "hundred" and last in ("unit", "teen", "tens") and current < 100:
            current, last = current * 100, "hundred"
        elif w in SCALES and last in ("unit", "teen", "tens", "hundred") and 0 < current < 1000:
            total, current, last = total + current * SCALES[w], 0, "scale"
        elif w == "dozen" and not simple and last in ("unit", "teen", "tens"):
            current, last = current * 12, "dozen"
            j += 1
            break
        elif w == "and" and last in ("hundred", "scale") and j + 1 < end and toks[j + 1].text in UNITS.keys() | TEENS.keys() | TENS.keys():
            j += 1
            continue
        else:
            break
        j += 1
    if last is None:
        return None
    return total + current, j


def _fraction(toks: tuple[Tok, ...], value: Value, j: int, end: int) -> tuple[Value, int]:
    if j + 2 < end and toks[j].text == "and" and toks[j + 1].text == "a" and toks[j + 2].text in ("half", "quarter"):
        return _clean(value + (0.5 if toks[j + 2].text == "half" else 0.25)), j + 3
    if j + 1 < end and toks[j].text == "point" and isinstance(value, int):
        k, frac = j + 1, ""
        while k < end and (toks[k].text in DIGIT_WORDS or (toks[k].kind == "digits" and not toks[k].brk)):
            frac += DIGIT_WORDS.get(toks[k].text, toks[k].text)
            k += 1
        if frac:
            return _clean(float(f"{value}.{frac}")), k
    return value, j


def match_ordinal(toks: tuple[Tok, ...], i: int, end: int | None = None) -> tuple[int, int] | None:
    """'14th', 'fourteenth', 'twenty first' / 'twenty-first' at token i."""
    end = len(toks) if end is None else end
    if i >= end:
        return None
    tok = toks[i]
    if tok.kind == "ordinal":
        return int(tok.text[:-2]), i + 1
    if tok.text in ORDINALS:
        return ORDINALS[tok.text], i + 1
    if tok.text in TENS and i + 1 < end and not toks[i + 1].brk:
        nxt = toks[i + 1].text
        if nxt in ORDINALS and ORDINALS[nxt] < 10:
            return TENS[tok.text] + ORDINALS[nxt], i + 2
    return None


def words_to_number(text: str) -> int | float | None:
    """'twenty five' -> 25, 'two hundred and five' -> 205, 'a dozen' -> 12, 'three and a half' -> 3.5,
    'two point five' -> 2.5, '1,200' -> 1200, 'zero' -> 0; None unless the whole text is one number."""
    toks = tokenize(text)
    lo, hi = strip_filler(toks)
    negative = lo < hi and toks[lo].text in ("minus", "negative")
    got = match_number(toks, lo + negative, hi)
    if got is None or got[1] != hi:
        return None
    return -got[0] if negative else got[0]

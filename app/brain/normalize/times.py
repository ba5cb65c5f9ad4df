"""Clock times said aloud; the semantics are written down in `datetimes`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time

from app.brain.normalize.numbers import TEENS, TENS, UNITS, match_number
from app.brain.normalize.text import Tok, strip_filler, tokenize

Hours = tuple[time, time] | None
PARTS = {"morning": "am", "afternoon": "pm", "evening": "pm", "night": "night", "tonight": "night"}
PART_HOURS = {"morning": time(9), "afternoon": time(14), "evening": time(18), "night": time(18), "tonight": time(18)}
TIME_PREPS = frozenset({"at", "around", "about", "by", "for", "from", "after", "before", "til", "till", "until", "say"})
_NAMED = {"noon": time(12), "midday": time(12), "midnight": time(0)}
_PAST = frozenset({"past", "after"})
_TO = frozenset({"to", "of", "till", "til", "before"})
_MINUTE_WORDS = frozenset({*UNITS, *TEENS, *TENS})


@dataclass(frozen=True, slots=True)
class TimeHit:
    value: time
    end: int
    cued: bool  # the shape alone says it is a time (am/pm, o'clock, 3:30, half past, noon)


def _hour(toks: tuple[Tok, ...], i: int, end: int) -> tuple[int, int] | None:
    """An hour 0-24 at i (word or digits, no minutes)."""
    if i >= end:
        return None
    tok = toks[i]
    if tok.kind == "digits":
        return (int(tok.text), i + 1) if len(tok.text) <= 2 and int(tok.text) <= 24 else None
    w = tok.text
    if w in UNITS:
        return UNITS[w], i + 1
    if w in TEENS:
        return TEENS[w], i + 1
    if w == "zero":
        return 0, i + 1
    if w == "twenty":
        if i + 1 < end and not toks[i + 1].brk and toks[i + 1].text in ("one", "two", "three", "four"):
            return 20 + UNITS[toks[i + 1].text], i + 2
        return 20, i + 1
    return None


def _minutes(toks: tuple[Tok, ...], i: int, end: int) -> tuple[int, int] | None:
    """Minutes after an hour: 'thirty', 'fifteen', 'forty five', 'oh five', '30'."""
    if i >= end or toks[i].brk:
        return None
    tok = toks[i]
    if tok.kind == "digits" and len(tok.text) == 2 and int(tok.text) < 60:
        return int(tok.text), i + 1
    if tok.text in ("oh", "o", "zero") and i + 1 < end and toks[i + 1].text in UNITS:
        return UNITS[toks[i + 1].text], i + 2
    if tok.text in _MINUTE_WORDS and tok.text not in UNITS:
        got = match_number(toks, i, min(end, i + 2), simple=True)
        if got and isinstance(got[0], int) and 10 <= got[0] < 60:
            return got[0], got[1]
    return None


def _suffix(toks: tuple[Tok, ...], i: int, end: int) -> tuple[str | None, int]:
    """'am' / 'pm' / 'in the morning' / 'at night' / "o'clock" / 'hours' after a time."""
    if i >= end:
        return None, i
    w = toks[i].text
    if w in ("am", "pm") or (w in ("a", "p") and i + 1 < end and toks[i + 1].text == "m"):
        return w[0] + "m", i + (1 if len(w) == 2 else 2)
    if w in ("in", "this", "at") and i + 1 < end:
        k = i + 1 + (toks[i + 1].text == "the")
        if k < end and toks[k].text in PARTS and (w != "at" or toks[k].text == "night"):
            return PARTS[toks[k].text], k + 1
    if w == "tonight":
        return "night", i + 1
    if w in ("o'clock", "oclock"):
        more, j = _suffix(toks, i + 1, end)
        return more or "clock", j
    if w == "hours":
        return "24h", i + 1
    return None, i


def resolve(hour: int, minute: int, meridiem: str | None, hours: Hours = None, part: str | None = None) -> time | None:
    """The clock time for an hour and minutes with an optional am/pm/part of day."""
    if not (0 <= hour <= 24 and 0 <= minute < 60) or (hour == 24 and minute):
        return None
    hour %= 24
    meridiem = meridiem if meridiem in ("am", "pm", "night", "24h") else part
    if hour == 0 or hour > 12 or meridiem == "24h":
        return time(hour, minute)
    if meridiem == "am":
        return time(hour % 12, minute)
    if meridiem == "pm":
        return time(hour % 12 + 12, minute)
    if meridiem == "night":
        return time(hour % 12 + (12 if hour >= 6 and hour != 12 else 0), minute)
    am, pm = time(hour % 12, minute), time(hour % 12 + 12, minute)
    if hours is not None:
        fits = [t for t in (am, pm) if hours[0] <= t <= hours[1]]
        if fits:
            return fits[0]
    return pm if hour == 12 or hour <= 6 else am


def match_time(toks: tuple[Tok, ...], i: int, end: int | None = None, *, hours: Hours = None, part: str | None = None) -> TimeHit | None:
    """The time starting at token i (no leading 'at'), greedy."""
    end = len(toks) if end is None else end
    if i >= end:
        return None
    tok, w = toks[i], toks[i].text
    if w in _NAMED:
        return TimeHit(_NAMED[w], i + 1, True)
    if tok.kind == "clock":
        h, m = (int(x) for x in tok.text.split(":"))
        meridiem, j = _suffix(toks, i + 1, end)
        zero_padded = tok.text[0] == "0" and len(tok.text) == 5
        value = resolve(h, m, "24h" if zero_padded and not meridiem else meridiem, hours, part)
        return TimeHit(value, j, True) if value else None
    if tok.kind == "decimal":
        h_text, m_text = tok.text.split(".")
        meridiem, j = _suffix(toks, i + 1, end)
        if len(m_text) != 2 or (meridiem is None and part is None):
            return None
        value = resolve(int(h_text), int(m_text), meridiem, hours, part)
        return TimeHit(value, j, meridiem is not None) if value else None
    if tok.kind == "digits" and len(tok.text) in (3, 4):
        meridiem, j = _suffix(toks, i + 1, end)
        value = resolve(int(tok.text[:-2]), int(tok.text[-2:]), meridiem or ("24h" if tok.text[0] == "0" else None), hours, part)
        return TimeHit(value, j, meridiem is not None) if value else None
    past = _past_to(toks, i, end, hours, part)
    if past:
        return past
    got = _hour(toks, i, end)
    if got is None:
        return None
    h, j = got
    m, cued = 0, False
    if j < end and toks[j].text == "hundred" and not toks[j].brk:
        j += 1
        mins = _minutes(toks, j, end)
        if mins:
            m, j = mins
        cued = True
        meridiem = "24h"
        more, j = _suffix(toks, j, end)
        meridiem = more if more not in (None, "clock") else meridiem
    else:
        mins = _minutes(toks, j, end)
        if mins:
            m, j = mins
        if j < end and toks[j].text in _NAMED and h == 12:
            return TimeHit(_NAMED[toks[j].text], j + 1, True)
        meridiem, j = _suffix(toks, j, end)
        cued = meridiem is not None
    value = resolve(h, m, meridiem, hours, part)
    return TimeHit(value, j, cued) if value else None


def _past_to(toks: tuple[Tok, ...], i: int, end: int, hours: Hours, part: str | None) -> TimeHit | None:
    """'half past ten', 'quarter to five', 'twenty past two', 'ten minutes to six', 'half ten'."""
    j = i + (toks[i].text == "a")
    if j >= end:
        return None
    w = toks[j].text
    if w == "half":
        minutes, j = 30, j + 1
    elif w == "quarter":
        minutes, j = 15, j + 1
    else:
        got = match_number(toks, j, min(end, j + 2), simple=True)
        if not got or not isinstance(got[0], int) or not 1 <= got[0] <= 30:
            return None
        minutes, j = got
        said_minutes = j < end and toks[j].text in ("minutes", "minute", "mins", "min")
        if said_minutes:
            j += 1
        elif toks[i].kind == "digits" or minutes not in (5, 10, 20, 25):
            return None
    if j >= end:
        return None
    rel = toks[j].text
    if rel in _PAST or rel in _TO:
        j += 1
    elif w == "half" and toks[i].text == "half":
        rel = "past"  # British 'half ten' = 10:30
    else:
        return None
    if j < end and toks[j].text in _NAMED:
        hour = _NAMED[toks[j].text].hour or (24 if rel in _TO else 0)
        j += 1
    else:
        got_h = _hour(toks, j, end)
        if got_h is None:
            return None
        hour, j = got_h
    meridiem, j = _suffix(toks, j, end)
    if rel in _TO:
        hour, minutes = hour - 1, 60 - minutes
        if hour == 0 and meridiem is None:
            hour = 12
    value = resolve(hour, minutes, meridiem, hours, part)
    return TimeHit(value, j, True) if value else None


def part_of_day(toks: tuple[Tok, ...]) -> str | None:
    """'am' / 'pm' / 'night' when the caller said 'morning', 'afternoon', 'evening' or 'night'."""
    for tok in toks:
        if tok.text in PARTS:
            return PARTS[tok.text]
    return None


def parse_time(text: str, hours: Hours = None) -> time | None:
    """The time when the whole of `text` is one ('three thirty pm', 'noon', 'quarter to five')."""
    toks = tokenize(text)
    lo, hi = strip_filler(toks)
    hit = match_time(toks, lo, hi, hours=hours, part=part_of_day(toks[lo:hi]))
    return hit.value if hit and hit.end == hi else None



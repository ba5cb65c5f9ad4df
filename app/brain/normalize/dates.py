"""Calendar dates said aloud; the semantics are written down in `datetimes`."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from app.brain.normalize.numbers import TEENS, TENS, match_number, match_ordinal
from app.brain.normalize.text import Tok, strip_filler, tokenize

WEEKDAYS = {d.lower(): i for i, d in enumerate(calendar.day_name)}
WEEKDAYS.update({d.lower() + "s": i for i, d in enumerate(calendar.day_name)})
MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_name) if m}
MONTHS.update({m.lower(): i for i, m in enumerate(calendar.month_abbr) if m and m.lower() not in ("mar", "may")})
MONTHS["sept"] = 9
_RELATIVE = {"today": 0, "tonight": 0, "tomorrow": 1, "tmrw": 1, "tomorrow's": 1, "yesterday": -1}
_PART_WORDS = frozenset({"morning", "afternoon", "evening", "night"})
_UNITS = {"day": 1, "days": 1, "week": 7, "weeks": 7, "fortnight": 14}


@dataclass(frozen=True, slots=True)
class DateHit:
    value: date
    end: int
    cued: bool  # a weekday, 'tomorrow', a month name, 'the 14th', 12/3: a date whatever slot was asked
    part: str | None = None  # 'morning' / 'afternoon' / 'evening' / 'night' said with it


def _year(toks: tuple[Tok, ...], i: int, end: int) -> tuple[int, int] | None:
    """'2026', 'twenty twenty six', 'two thousand and twenty six' at i."""
    if i >= end:
        return None
    tok = toks[i]
    if tok.kind == "digits" and len(tok.text) == 4 and 1900 <= int(tok.text) <= 2100:
        return int(tok.text), i + 1
    if tok.text in ("twenty", "nineteen") and i + 1 < end and not toks[i + 1].brk:
        nxt = toks[i + 1].text
        if nxt in TENS or nxt in TEENS or nxt in ("oh", "o"):
            got = match_number(toks, i + 1 + (nxt in ("oh", "o")), end, simple=True)
            if got and isinstance(got[0], int) and got[0] < 100:
                return (2000 if tok.text == "twenty" else 1900) + got[0], got[1]
    if tok.text == "two":
        got = match_number(toks, i, end, simple=True)
        if got and isinstance(got[0], int) and 2000 <= got[0] <= 2100:
            return got[0], got[1]
    return None


def _day(toks: tuple[Tok, ...], i: int, end: int, *, cardinal: bool = True) -> tuple[int, int] | None:
    got = match_ordinal(toks, i, end)
    if got is None and cardinal:
        tok = toks[i] if i < end else None
        if tok is not None and (tok.kind == "digits" and len(tok.text) <= 2 or tok.kind == "word"):
            num = match_number(toks, i, min(end, i + 2), simple=True)
            got = (num[0], num[1]) if num and isinstance(num[0], int) else None
    return got if got and 1 <= got[0] <= 31 else None


def month_day(today: date, month: int, day: int, year: int | None = None) -> date | None:
    """That month and day; without a year, the next one from today (today included)."""
    try:
        if year is not None:
            return date(year, month, day)
        found = date(today.year, month, day)
        return found if found >= today else date(today.year + 1, month, day)
    except ValueError:
        return None


def day_of_month(today: date, day: int) -> date | None:
    """The next date with that day of the month, today included."""
    year, month = today.year, today.month
    for _ in range(13):
        if day <= calendar.monthrange(year, month)[1]:
            found = date(year, month, day)
            if found >= today:
                return found
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return None


def weekday_date(today: date, weekday: int, next_week: bool = False) -> date:
    if next_week:
        return today - timedelta(days=today.weekday()) + timedelta(days=7 + weekday)
    return today + timedelta(days=(weekday - today.weekday()) % 7 or 7)


def match_date(toks: tuple[Tok, ...], i: int, end: int | None = None, *, now: datetime, bare: bool = False) -> DateHit | None:
    """The date starting at token i, greedy; `bare` also allows 'fourteenth' and '14' alone."""
    end = len(toks) if end is None else end
    if i >= end:
        return None
    hit = _match(toks, i, end, now.date(), bare)
    if hit is None:
        return None
    j = hit.end
    if j < end and toks[j].text in _PART_WORDS and not toks[j].brk:
        return DateHit(hit.value, j + 1, hit.cued, toks[j].text)
    if toks[i].text == "tonight":
        return DateHit(hit.value, j, hit.cued, "night")
    return hit


def _match(toks: tuple[Tok, ...], i: int, end: int, today: date, bare: bool) -> DateHit | None:
    tok, w = toks[i], toks[i].text
    if tok.kind == "iso":
        y, m, d = (int(x) for x in tok.text[:10].split("T")[0].split("-"))
        found = month_day(today, m, d, y)
        return DateHit(found, i + 1, True) if found else None
    if tok.kind == "slash":
        parts = [int(x) for x in tok.text.split("/")]
        year = None if len(parts) == 2 else (parts[2] + 2000 if parts[2] < 100 else parts[2])
        found = month_day(today, parts[0], parts[1], year) if 1 <= parts[0] <= 12 else None
        return DateHit(found, i + 1, True) if found else None
    if w in _RELATIVE:
        return DateHit(today + timedelta(days=_RELATIVE[w]), i + 1, True)
    if w in ("the", "day") and _words(toks, i, end, ("the", "day", "after", "tomorrow")[w == "day" :]):
        return DateHit(today + timedelta(days=2), i + (4 if w == "the" else 3), True)
    if w in ("this", "next", "coming", "on", "in", "a") or w in WEEKDAYS:
        hit = _weekday(toks, i, end, today)
        if hit:
            return hit
    if w in ("in", "a", "an", "one", "two", "three", "four", "five", "six", "seven", "ten") or tok.kind == "digits":
        hit = _relative(toks, i, end, today)
        if hit:
            return hit
    if w in MONTHS:
        return _month_first(toks, i, end, today)
    return _day_first(toks, i, end, today, bare)


def _words(toks: tuple[Tok, ...], i: int, end: int, seq: tuple[str, ...]) -> bool:
    return i + len(seq) <= end and all(toks[i + k].text == s for k, s in enumerate(seq))


def _weekday(toks: tuple[Tok, ...], i: int, end: int, today: date) -> DateHit | None:
    """'Saturday', 'this Saturday', 'next Tuesday', 'this coming Friday', 'Friday next week'."""
    j, next_week = i, False
    while j < end and toks[j].text in ("this", "next", "coming", "on", "upcoming"):
        next_week = next_week or toks[j].text == "next"
        j += 1
    if j >= end or toks[j].text not in WEEKDAYS:
        return None
    weekday, j = WEEKDAYS[toks[j].text], j + 1
    if _words(toks, j, end, ("next", "week")):
        next_week, j = True, j + 2
    elif _words(toks, j, end, ("this", "week")):
        j += 2
    found = weekday_date(today, weekday, next_week)
    explicit = _explicit_after_weekday(toks, j, end, today)
    if explicit:
        return explicit
    return DateHit(found, j, True)


def _explicit_after_weekday(toks: tuple[Tok, ...], j: int, end: int, today: date) -> DateHit | None:
    """'Saturday the 28th', 'Saturday, November 28th': the explicit date wins."""
    if j < end and toks[j].text in MONTHS:
        return _month_first(toks, j, end, today)
    if j < end and toks[j].text == "the":
        return _day_first(toks, j, end, today, False)
    return None


def _relative(toks: tuple[Tok, ...], i: int, end: int, today: date) -> DateHit | None:
    """'in two days', 'in a week', 'two weeks from today', 'a week from tomorrow'."""
    j = i + (toks[i].text == "in")
    if j < end and toks[j].text in ("a", "an", "one") and j + 1 < end and toks[j + 1].text in _UNITS:
        count, j = 1, j + 1
    else:
        got = match_number(toks, j, end, simple=True)
        if not got or not isinstance(got[0], int) or got[0] > 400:
            return None
        count, j = got
    if j >= end or toks[j].text not in _UNITS:
        return None
    days, j = count * _UNITS[toks[j].text], j + 1
    if toks[i].text == "in":
        if _words(toks, j, end, ("from", "now")) or _words(toks, j, end, ("from", "today")):
            j += 2
        return DateHit(today + timedelta(days=days), j, True)
    if j + 1 < end and toks[j].text in ("from", "after") and toks[j + 1].text in ("today", "now", "tomorrow"):
        base = today + timedelta(days=toks[j + 1].text == "tomorrow")
        return DateHit(base + timedelta(days=days), j + 2, True)
    if _words(toks, j, end, ("from", "now")):
        return DateHit(today + timedelta(days=days), j + 2, True)
    return None


def _month_first(toks: tuple[Tok, ...], i: int, end: int, today: date) -> DateHit | None:
    """'December 3rd', 'Dec 3', 'December the third, 2026', 'December third twenty twenty six'."""
    month, j = MONTHS[toks[i].text], i + 1
    j += j < end and toks[j].text == "the"
    got = _day(toks, j, end)
    if got is None:
        return None
    day, j = got
    year = _year(toks, j + (j < end and toks[j].text == "of"), end)
    found = month_day(today, month, day, year[0] if year else None)
    return DateHit(found, year[1] if year else j, True) if found else None


def _day_first(toks: tuple[Tok, ...], i: int, end: int, today: date, bare: bool) -> DateHit | None:
    """'the 14th', '3rd of December', 'the third of December 2026', '3 December'; bare 'fourteenth'."""
    j, the = i, toks[i].text == "the"
    j += the
    digits = j < end and toks[j].kind == "digits"
    got = _day(toks, j, end, cardinal=bare or (the and digits) or _month_follows(toks, j, end))
    if got is None:
        return None
    day, j = got
    k = j + (j < end and toks[j].text == "of")
    if k < end and toks[k].text in MONTHS and not toks[k].brk:
        month, k = MONTHS[toks[k].text], k + 1
        year = _year(toks, k, end)
        found = month_day(today, month, day, year[0] if year else None)
        return DateHit(found, year[1] if year else k, True) if found else None
    if _words(toks, j, end, ("of", "this", "month")):
        j += 3
    found = day_of_month(today, day) if the or bare else None
    return DateHit(found, j, the) if found else None


def _month_follows(toks: tuple[Tok, ...], j: int, end: int) -> bool:
    for k in range(j + 1, min(j + 4, end)):
        if toks[k].text in MONTHS:
            return True
    return False


def parse_date(text: str, now: datetime) -> date | None:
    """The date when the whole of `text` is one ('tomorrow', 'next Tuesday', 'the 14th', '12/3')."""
    toks = tokenize(text)
    lo, hi = strip_filler(toks, keep=frozenset({"on"}))
    lo += lo < hi and toks[lo].text in ("on", "for")
    hit = match_date(toks, lo, hi, now=now, bare=True)
    return hit.value if hit and hit.end == hi else None

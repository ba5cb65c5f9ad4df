"""Dates, times and date-times said aloud. `now` is always a parameter (naive local time).

Dates
- 'today', 'tonight', 'tomorrow', 'yesterday', '(the) day after tomorrow'.
- A weekday alone, 'this <weekday>' or 'this coming <weekday>': the next occurrence strictly after
  today (1-7 days ahead). 'next <weekday>' / '<weekday> next week': that weekday in the following
  Monday-started week (on Mon 2026-11-23: 'this Tuesday' = 11-24, 'next Tuesday' = 12-01).
  'Saturday the 28th' / 'Saturday, November 28th': the explicit date wins.
- 'the 14th' / 'on the fourteenth' / 'the 14': the next date with that day of the month, today
  included (months without that day are skipped). A bare '14' or 'fourteenth' only counts when the
  date is the slot being asked for.
- 'December 3rd', '3rd of December', 'Dec 3', 'December the third', '12/3' (US month/day),
  '12/3/2026', '2026-12-03', 'December third twenty twenty six'. Without a year, a month-day
  already past this year rolls to next year (today stays this year).
- 'in two days', 'in a week', 'two weeks from today', 'a week from tomorrow', 'ten days from now'.
- 'tomorrow morning' is a date (tomorrow); as a date-time it is 09:00 (morning), 14:00 (afternoon),
  18:00 (evening, night, tonight) unless a time is given; the part of day also settles am/pm.

Times
- 'three thirty pm' 15:30, '3:30', '3.30 p.m.', '10 a.m.', 'ten in the morning', 'two in the
  afternoon', 'seven in the evening', 'eleven at night', 'noon', 'midday', 'midnight', 'twelve noon',
  'half past ten', 'quarter past two', 'quarter to five', 'twenty past two', 'ten minutes to six',
  'two fifteen', 'two oh five', 'eleven o'clock', '14:30', '0900', 'fourteen hundred (hours)'.
- Without am/pm or a part of day, an hour of 1-12 is read with `hours` (the business window):
  the reading inside the window, am when both fit; with no window or neither fitting: 1-6 -> pm,
  7-11 -> am, 12 -> noon. Hours 0 and 13-23 and zero-padded '09:00' are 24-hour clock times.

Date-times
- A date and a time in either order ('Saturday at eleven', 'at 3 pm tomorrow', '2026-11-28T11:00').
- A time alone means today when it is still ahead of `now`, else tomorrow. A date alone has no
  time and is no date-time, unless a part of day was said ('tomorrow morning' -> 09:00).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from app.brain.normalize.dates import DateHit, match_date, parse_date
from app.brain.normalize.text import Tok, strip_filler, tokenize
from app.brain.normalize.times import PART_HOURS, PARTS, TIME_PREPS, Hours, TimeHit, match_time, parse_time, part_of_day

_JOINERS = frozenset({"at", "on", "around", "about", "by", "for", "and", "in", "the", "of", "say"})

__all__ = ["parse_date", "parse_time", "parse_datetime", "combine", "DateHit", "TimeHit"]


def combine(day: date | None, at: time | None, part: str | None, now: datetime) -> datetime | None:
    """A date-time from what was said: a date and/or a time and/or a part of day."""
    if at is None and part is not None and day is not None:
        at = PART_HOURS.get(part)
    if at is None:
        return None
    if day is None:
        day = now.date() if datetime.combine(now.date(), at) > now else now.date() + timedelta(days=1)
    return datetime.combine(day, at)


def parse_datetime(text: str, now: datetime, hours: Hours = None) -> datetime | None:
    """The date-time when the whole of `text` is one ('Saturday at eleven', 'tomorrow morning')."""
    toks = tokenize(text)
    lo, hi = strip_filler(toks, keep=frozenset({"at", "on"}))
    if hi - lo == 1 and toks[lo].kind == "iso" and "t" in toks[lo].text:
        try:
            return datetime.fromisoformat(toks[lo].text.upper())
        except ValueError:
            return None
    found = scan_datetime(toks, lo, hi, now=now, hours=hours)
    if found is None:
        return None
    day, at, part = found
    return combine(day, at, part, now)


def scan_datetime(toks: tuple[Tok, ...], lo: int, hi: int, *, now: datetime, hours: Hours) -> tuple[date | None, time | None, str | None] | None:
    """One date and/or one time covering all of toks[lo:hi] apart from joining words."""
    day_hit: DateHit | None = None
    j = lo
    spans: list[tuple[int, int]] = []
    while j < hi:
        if day_hit is None and (hit := match_date(toks, j, hi, now=now)):
            day_hit = hit
            spans.append((j, hit.end))
            j = hit.end
        else:
            j += 1
    part = day_hit.part if day_hit and day_hit.part else None
    meridiem = PARTS.get(part) if part else part_of_day(toks[lo:hi])
    time_hit: TimeHit | None = None
    j = lo
    while j < hi:
        inside = next((e for s, e in spans if s <= j < e), None)
        if inside is not None:
            j = inside
            continue
        tok = toks[j]
        if time_hit is None and (hit := match_time(toks, j, hi, hours=hours, part=meridiem)):
            time_hit = hit
            j = hit.end
            continue
        if tok.text in _JOINERS or tok.text in TIME_PREPS:
            j += 1
            continue
        if tok.text in PARTS and part is None:
            part = tok.text
            j += 1
            continue
        return None
    if day_hit is None and time_hit is None:
        return None
    return (day_hit.value if day_hit else None, time_hit.value if time_hit else None, part)

"""The built-in validation rules of a slot. Each returns the words to speak when the value fails."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from app.brain.speech import join_words, say_time
from app.flows.model import Rule, Slot
from app.store import OpeningHours

DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def check_rule(rule: Rule, slot: Slot, value: Any, *, now: datetime, hours: OpeningHours | None) -> str | None:
    ok = _CHECKS[rule.rule](rule, value, now, hours)
    if ok:
        return None
    return rule.message or _default_message(rule, slot, hours)


def _range(rule: Rule, value: Any, now: datetime, hours: OpeningHours | None) -> bool:
    if not isinstance(value, int | float):
        return True
    return (rule.min is None or value >= rule.min) and (rule.max is None or value <= rule.max)


def _length(rule: Rule, value: Any, now: datetime, hours: OpeningHours | None) -> bool:
    size = len(str(value))
    return (rule.min is None or size >= rule.min) and (rule.max is None or size <= rule.max)


def _allowed(rule: Rule, value: Any, now: datetime, hours: OpeningHours | None) -> bool:
    allowed = {str(v).lower() for v in rule.values or []}
    return str(value).lower() in allowed


def _day(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    return value if isinstance(value, date) else None


def _open_day(rule: Rule, value: Any, now: datetime, hours: OpeningHours | None) -> bool:
    day = _day(value)
    return hours is None or day is None or day.weekday() in hours.days


def _business_hours(rule: Rule, value: Any, now: datetime, hours: OpeningHours | None) -> bool:
    clock = value.time() if isinstance(value, datetime) else value
    if hours is None or not isinstance(clock, time):
        return True
    return hours.open <= clock < hours.close


def _not_past(rule: Rule, value: Any, now: datetime, hours: OpeningHours | None) -> bool:
    if isinstance(value, datetime):
        return value >= now
    if isinstance(value, date):
        return value >= now.date()
    return True


def _within_days(rule: Rule, value: Any, now: datetime, hours: OpeningHours | None) -> bool:
    day = _day(value)
    return day is None or rule.days is None or day <= now.date() + timedelta(days=rule.days)


_CHECKS = {
    "range": _range,
    "length": _length,
    "allowed": _allowed,
    "open_day": _open_day,
    "business_hours": _business_hours,
    "not_past": _not_past,
    "future_within_days": _within_days,
}


def _default_message(rule: Rule, slot: Slot, hours: OpeningHours | None) -> str:
    if rule.rule == "open_day" and hours is not None:
        days = join_words([DAY_NAMES[d] for d in sorted(hours.days)])
        return f"Sorry, we're closed that day. We're open {days}. Which day works for you?"
    if rule.rule == "business_hours" and hours is not None:
        return f"Sorry, we're open from {say_time(hours.open)} to {say_time(hours.close)}. What time would you like?"
    if rule.rule == "not_past":
        return f"That {slot.name} has already passed. {slot.prompt}"
    if rule.rule == "allowed":
        return f"Sorry, that {slot.name} isn't one of the options. {slot.prompt}"
    return f"Sorry, that {slot.name} doesn't work. {slot.prompt}"



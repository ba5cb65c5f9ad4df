"""Values as the bot says them: dates, times, phone numbers, money, lists."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from num2words import num2words


def ordinal(n: int) -> str:
    suffix = "th" if 11 <= n % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def say_date(d: date, today: date | None = None) -> str:
    text = f"{d.strftime('%A')}, {d.strftime('%B')} {ordinal(d.day)}"
    if today is not None and d.year != today.year:
        text += f", {d.year}"
    return text


def say_time(t: time) -> str:
    if t == time(12, 0):
        return "noon"
    if t == time(0, 0):
        return "midnight"
    hour = t.hour % 12 or 12
    suffix = "AM" if t.hour < 12 else "PM"
    return f"{hour} {suffix}" if t.minute == 0 else f"{hour}:{t.minute:02d} {suffix}"


def say_phone(digits: str) -> str:
    if len(digits) == 10:
        return f"{digits[:3]}-{digits[3:6]}-{digits[6:]}"
    return digits


def say_money(amount: float, currency: str = "dollars") -> str:
    cents = round(amount * 100)
    whole, rest = divmod(cents, 100)
    unit = currency if whole != 1 else currency.rstrip("s")
    return f"{whole} {unit}" + (f" and {rest} cents" if rest else "")


def join_words(parts: list[str], conjunction: str = "and") -> str:
    if not parts:
        return ""
    if len(parts) == 1:
        return parts[0]
    return f"{', '.join(parts[:-1])} {conjunction} {parts[-1]}"


def plural(word: str, count: int) -> str:
    if count == 1:
        return word
    if word.endswith(("s", "sh", "ch", "x")):
        return word + "es"
    return word + "s"


def count_words(count: int) -> str:
    return "a" if count == 1 else num2words(count)


def say_value(value: Any, today: date | None = None) -> str:
    """Any slot value, spoken."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return f"{say_date(value.date(), today)} at {say_time(value.time())}"
    if isinstance(value, date):
        return say_date(value, today)
    if isinstance(value, time):
        return say_time(value)
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def json_value(value: Any) -> Any:
    """A slot value for JSON output: ISO date, HH:MM time, plain scalars."""
    if isinstance(value, datetime):
        return value.isoformat(timespec="minutes")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.strftime("%H:%M")
    return value

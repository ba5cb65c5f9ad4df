"""Slot specs, matches, and `normalize`: one whole answer as a slot's typed value."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time

from app.brain.normalize.choice import normalize_choice
from app.brain.normalize.datetimes import parse_date, parse_datetime, parse_time
from app.brain.normalize.email import normalize_email
from app.brain.normalize.names import normalize_name
from app.brain.normalize.numbers import words_to_number
from app.brain.normalize.pattern import normalize_pattern
from app.brain.normalize.phone import normalize_phone
from app.brain.normalize.text import strip_filler, tokenize
from app.brain.normalize.yesno import classify_yes_no

SLOT_TYPES = ("text", "name", "date", "time", "datetime", "integer", "number", "phone", "email", "yes_no", "choice", "pattern")


@dataclass(frozen=True)
class SlotSpec:
    name: str
    type: str  # one of SLOT_TYPES
    choices: dict[str, tuple[str, ...]] = field(default_factory=dict)  # canonical value -> synonyms
    pattern: str | None = None  # regex for type "pattern"
    hours: tuple[time, time] | None = None  # window that settles am/pm for time/datetime


@dataclass(frozen=True)
class Match:
    slot: str
    value: object
    start: int  # span in the original text
    end: int


def normalize_text(text: str) -> str | None:
    """The text without hesitations, lead-ins ("it's") or a trailing 'please' / punctuation."""
    toks = tokenize(text)
    lo, hi = strip_filler(toks, light=True)
    if lo >= hi:
        return None
    return text[toks[lo].start : toks[hi - 1].end].strip()


def normalize(spec: SlotSpec, text: str, *, now: datetime) -> object | None:
    """The value of `text` as the slot's type when the whole text (after filler) is one, else None."""
    kind = spec.type
    if kind == "text":
        return normalize_text(text)
    if kind == "name":
        return normalize_name(text)
    if kind == "date":
        return parse_date(text, now)
    if kind == "time":
        return parse_time(text, spec.hours)
    if kind == "datetime":
        return parse_datetime(text, now, spec.hours)
    if kind in ("integer", "number"):
        value = words_to_number(text)
        if kind == "integer" and value is not None:
            return int(value) if float(value).is_integer() else None
        return value
    if kind == "phone":
        return normalize_phone(text)
    if kind == "email":
        return normalize_email(text)
    if kind == "yes_no":
        flat = text.strip().lower()
        return {"true": True, "false": False}.get(flat, classify_yes_no(text))
    if kind == "choice":
        return normalize_choice(spec, spec.choices, text)
    if kind == "pattern":
        return normalize_pattern(spec.pattern, text)
    return None

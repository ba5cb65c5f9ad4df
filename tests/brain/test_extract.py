"""Slot values found anywhere in a free utterance (now = Monday 2026-11-23 10:00)."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest

from app.brain.normalize import Match, SlotSpec, extract

NOW = datetime(2026, 11, 23, 10, 0)
HOURS = (time(9, 0), time(18, 0))
SERVICE = SlotSpec(
    "service",
    "choice",
    choices={
        "haircut": ("hair cut", "cut", "trim my hair", "men's cut", "womens cut"),
        "color": ("colour", "dye", "highlights", "coloring", "colouring"),
        "blowout": ("blow out", "blow dry", "blowdry"),
        "beard trim": ("beard", "beard tidy", "trim my beard"),
    },
)
BOOKING = [SlotSpec("name", "name"), SERVICE, SlotSpec("date", "date"), SlotSpec("time", "time", hours=HOURS), SlotSpec("phone", "phone")]


def values(text: str, specs: list[SlotSpec] = BOOKING, expected: str | None = None) -> dict[str, object]:
    return {k: m.value for k, m in extract(text, specs, now=NOW, expected=expected).items()}


def test_everything_in_one_breath():
    text = "hello, can I book a beard trim this Saturday at eleven? I'm Tom Baker, 555 222 3333"
    found = extract(text, BOOKING, now=NOW)
    assert {k: m.value for k, m in found.items()} == {
        "service": "beard trim",
        "date": date(2026, 11, 28),
        "time": time(11, 0),
        "name": "Tom Baker",
        "phone": "5552223333",
    }
    assert found["date"] == Match("date", date(2026, 11, 28), text.index("this Saturday"), text.index("this Saturday") + 13)
    assert text[found["time"].start : found["time"].end] == "at eleven"
    assert text[found["phone"].start : found["phone"].end] == "555 222 3333"
    assert text[found["name"].start : found["name"].end] == "I'm Tom Baker"


@pytest.mark.parametrize(
    ("text", "expected", "found"),
    [
        ("actually make it Wednesday", None, {"date": date(2026, 11, 25)}),
        ("Tuesday, no wait, Wednesday", None, {"date": date(2026, 11, 25)}),
        ("not Tuesday, Wednesday", None, {"date": date(2026, 11, 25)}),
        ("Wednesday, not Tuesday", None, {"date": date(2026, 11, 25)}),
        ("no, change the time to 3 pm", None, {"time": time(15, 0)}),
        ("no wait, make it 4pm", None, {"time": time(16, 0)}),
        ("the time to 3 please", None, {"time": time(15, 0)}),
        ("at three, no, at four", None, {"time": time(16, 0)}),
    ],
)
def test_corrections_last_mention_wins(text, expected, found):
    assert values(text, expected=expected) == found


@pytest.mark.parametrize(
    ("text", "expected", "found"),
    [
        ("eleven", "time", {"time": time(11, 0)}),
        ("two thirty", "time", {"time": time(14, 30)}),
        ("seven in the evening", "time", {"time": time(19, 0)}),
        ("11:30", "time", {"time": time(11, 30)}),
        ("Tom Baker", "name", {"name": "Tom Baker"}),
        ("yes, Jane Doe", "name", {"name": "Jane Doe"}),
        ("um my name is um Bo Chen", "name", {"name": "Bo Chen"}),
        ("14", "date", {"date": date(2026, 12, 14)}),
        ("the fourteenth", "date", {"date": date(2026, 12, 14)}),
        ("Sunday", "date", {"date": date(2026, 11, 29)}),
        ("a haircut please", "service", {"service": "haircut"}),
        ("555 123", "phone", {"phone": "555123"}),
        ("five five five one two three four five six seven", "phone", {"phone": "5551234567"}),
    ],
)
def test_bare_values_go_to_the_expected_slot(text, expected, found):
    assert values(text, expected=expected) == found


@pytest.mark.parametrize("text", ["eleven", "Tom Baker", "14", "yes", "555 123", "bananas", "I'd like to make an appointment", "i don't know"])
def test_bare_values_need_the_slot_to_be_expected(text):
    assert values(text) == {}


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("I want a haircut on Saturday at 11am", {"service": "haircut", "date": date(2026, 11, 28), "time": time(11, 0)}),
        (
            "book a blowout on Friday at 10am for Sam Reed, 555 444 1111",
            {"service": "blowout", "date": date(2026, 11, 27), "time": time(10, 0), "name": "Sam Reed", "phone": "5554441111"},
        ),
        ("at 3 555 222 3333", {"time": time(15, 0), "phone": "5552223333"}),
        ("can I come in at eleven 555 222 3333", {"time": time(11, 0), "phone": "5552223333"}),
        ("I'm free at 3 on Friday", {"time": time(15, 0), "date": date(2026, 11, 27)}),
        ("this is Tom calling about a haircut", {"name": "Tom", "service": "haircut"}),
        ("I'm looking for a haircut tomorrow afternoon at 2", {"service": "haircut", "date": date(2026, 11, 24), "time": time(14, 0)}),
        ("the 14th at half past two", {"date": date(2026, 12, 14), "time": time(14, 30)}),
        ("a color on December 3rd at ten thirty in the morning", {"service": "color", "date": date(2026, 12, 3), "time": time(10, 30)}),
        (
            "my number is five five five, two two two, three three three three and my name is jane doe",
            {"phone": "5552223333", "name": "Jane Doe"},
        ),
        ("call me on 555 222 3333 tomorrow at 3", {"phone": "5552223333", "date": date(2026, 11, 24), "time": time(15, 0)}),
        ("it's for sam", {}),
    ],
)
def test_several_slots_in_any_order(text, found):
    assert values(text) == found


def test_other_slot_types():
    email, guests, when = SlotSpec("email", "email"), SlotSpec("guests", "integer"), SlotSpec("when", "datetime", hours=HOURS)
    ok, address = SlotSpec("ok", "yes_no"), SlotSpec("address", "text")
    code = SlotSpec("reference", "pattern", pattern="[A-Z]{3}[0-9]{3}")
    assert values("you can reach me at john dot smith at example dot com, thanks", [email]) == {"email": "john.smith@example.com"}
    assert values("a table for four guests tomorrow at 7 pm", [guests, when]) == {"guests": 4, "when": datetime(2026, 11, 24, 19, 0)}
    assert values("4", [guests, when], "guests") == {"guests": 4}
    assert values("tomorrow evening", [guests, when]) == {"when": datetime(2026, 11, 24, 18, 0)}
    assert values("yeah that's right", [ok], "ok") == {"ok": True}
    assert values("yeah that's right", [ok]) == {}
    assert values("12 Oak Street", [address, SlotSpec("name", "name"), SlotSpec("phone", "phone")], "address") == {"address": "12 Oak Street"}
    assert values("my reference is ABC123", [code]) == {"reference": "ABC123"}
    assert values("a b c one two three", [code], "reference") == {"reference": "ABC123"}
    assert values("reference a b c one two three", [code]) == {"reference": "ABC123"}


def test_two_slots_of_one_type_take_values_in_order():
    specs = [SlotSpec("phone", "phone"), SlotSpec("alt_phone", "phone")]
    assert values("5552223333 and 5559998888", specs) == {"phone": "5552223333", "alt_phone": "5559998888"}


def test_nothing_to_find():
    assert extract("", BOOKING, now=NOW) == {}
    assert extract("hello", [], now=NOW) == {}


def test_an_extra_spoken_digit_is_not_silently_dropped():
    from datetime import datetime

    from app.brain.normalize import SlotSpec, extract

    found = extract("5 5 5 2 2 2 3 3 3 3 3.", [SlotSpec("phone", "phone")], now=datetime(2026, 11, 23, 10), expected="phone")
    assert found["phone"].value == "55522233333"  # refused later by the flow's ten-digit rule

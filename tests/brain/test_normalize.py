"""Slot normalizers: one whole answer read as a slot's type (now = Monday 2026-11-23 10:00)."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest

from app.brain.normalize import (
    SlotSpec,
    classify_yes_no,
    normalize,
    parse_date,
    parse_datetime,
    parse_time,
    spoken_digits,
    words_to_number,
)

NOW = datetime(2026, 11, 23, 10, 0)  # a Monday
HOURS = (time(9, 0), time(18, 0))
SERVICES = {
    "haircut": ("hair cut", "cut", "trim my hair"),
    "color": ("colour", "dye", "highlights"),
    "blowout": ("blow out", "blow dry"),
    "beard trim": ("beard", "beard tidy", "trim my beard"),
}
CODE = "[A-Z]{3}[0-9]{3}"

CASES = [
    # numbers
    ("number", "twenty five", 25),
    ("number", "two hundred and five", 205),
    ("number", "a dozen", 12),
    ("number", "half a dozen", 6),
    ("number", "three and a half", 3.5),
    ("number", "two point five", 2.5),
    ("number", "1,200", 1200),
    ("number", "zero", 0),
    ("number", "one thousand two hundred", 1200),
    ("number", "a hundred and one", 101),
    ("number", "2.5", 2.5),
    ("number", "forty two please", 42),
    ("number", "minus three", -3),
    ("number", "nineteen ninety", None),
    ("number", "12 people", None),
    ("integer", "14", 14),
    ("integer", "fourteen", 14),
    ("integer", "about twenty", 20),
    ("integer", "3.0", 3),
    ("integer", "2.5", None),
    ("integer", "lots", None),
    # times, with the 09:00-18:00 window
    ("time", "three thirty pm", time(15, 30)),
    ("time", "3:30", time(15, 30)),
    ("time", "3.30 p.m.", time(15, 30)),
    ("time", "10 a.m.", time(10, 0)),
    ("time", "3pm", time(15, 0)),
    ("time", "11am", time(11, 0)),
    ("time", "ten in the morning", time(10, 0)),
    ("time", "two in the afternoon", time(14, 0)),
    ("time", "seven in the evening", time(19, 0)),
    ("time", "eleven at night", time(23, 0)),
    ("time", "noon", time(12, 0)),
    ("time", "midday", time(12, 0)),
    ("time", "midnight", time(0, 0)),
    ("time", "around noon", time(12, 0)),
    ("time", "half past ten", time(10, 30)),
    ("time", "quarter past two", time(14, 15)),
    ("time", "quarter to five", time(16, 45)),
    ("time", "twenty past two", time(14, 20)),
    ("time", "ten to six", time(17, 50)),
    ("time", "two fifteen", time(14, 15)),
    ("time", "two oh five", time(14, 5)),
    ("time", "twelve thirty", time(12, 30)),
    ("time", "eleven o'clock", time(11, 0)),
    ("time", "14:30", time(14, 30)),
    ("time", "09:00", time(9, 0)),
    ("time", "fourteen hundred", time(14, 0)),
    ("time", "1430 hours", time(14, 30)),
    ("time", "eleven", time(11, 0)),
    ("time", "three", time(15, 0)),
    ("time", "six", time(18, 0)),
    ("time", "at 3", time(15, 0)),
    ("time", "9", time(9, 0)),
    ("time", "twelve", time(12, 0)),
    ("time", "seven", time(7, 0)),  # neither 7:00 nor 19:00 is open: 7-11 read as am
    ("time", "bananas", None),
    # dates
    ("date", "today", date(2026, 11, 23)),
    ("date", "tomorrow", date(2026, 11, 24)),
    ("date", "the day after tomorrow", date(2026, 11, 25)),
    ("date", "yesterday", date(2026, 11, 22)),
    ("date", "Saturday", date(2026, 11, 28)),
    ("date", "on friday", date(2026, 11, 27)),
    ("date", "this Tuesday", date(2026, 11, 24)),
    ("date", "next Tuesday", date(2026, 12, 1)),
    ("date", "this Monday", date(2026, 11, 30)),
    ("date", "next Monday", date(2026, 11, 30)),
    ("date", "wednesday next week", date(2026, 12, 2)),
    ("date", "tuesdays", date(2026, 11, 24)),
    ("date", "saturday the 28th", date(2026, 11, 28)),
    ("date", "sunday november 29th", date(2026, 11, 29)),
    ("date", "the 14th", date(2026, 12, 14)),
    ("date", "on the fourteenth", date(2026, 12, 14)),
    ("date", "the 23rd", date(2026, 11, 23)),
    ("date", "the first", date(2026, 12, 1)),
    ("date", "the 31st", date(2026, 12, 31)),
    ("date", "December 3rd", date(2026, 12, 3)),
    ("date", "3rd of December", date(2026, 12, 3)),
    ("date", "Dec 3", date(2026, 12, 3)),
    ("date", "12/3", date(2026, 12, 3)),
    ("date", "2026-12-03", date(2026, 12, 3)),
    ("date", "December third twenty twenty six", date(2026, 12, 3)),
    ("date", "March 1st 2027", date(2027, 3, 1)),
    ("date", "January 5", date(2027, 1, 5)),
    ("date", "November 20", date(2027, 11, 20)),
    ("date", "in two days", date(2026, 11, 25)),
    ("date", "in 3 weeks", date(2026, 12, 14)),
    ("date", "a week from today", date(2026, 11, 30)),
    ("date", "two weeks from tomorrow", date(2026, 12, 8)),
    ("date", "tomorrow morning", date(2026, 11, 24)),
    ("date", "feb 30", None),
    ("date", "soon", None),
    # date-times
    ("datetime", "tomorrow at 3 pm", datetime(2026, 11, 24, 15, 0)),
    ("datetime", "saturday at eleven", datetime(2026, 11, 28, 11, 0)),
    ("datetime", "at 3 pm tomorrow", datetime(2026, 11, 24, 15, 0)),
    ("datetime", "tomorrow morning", datetime(2026, 11, 24, 9, 0)),
    ("datetime", "friday afternoon", datetime(2026, 11, 27, 14, 0)),
    ("datetime", "next tuesday evening", datetime(2026, 12, 1, 18, 0)),
    ("datetime", "friday afternoon at two", datetime(2026, 11, 27, 14, 0)),
    ("datetime", "December 3rd at ten thirty", datetime(2026, 12, 3, 10, 30)),
    ("datetime", "3 pm", datetime(2026, 11, 23, 15, 0)),
    ("datetime", "9 am", datetime(2026, 11, 24, 9, 0)),
    ("datetime", "2026-11-28T11:00", datetime(2026, 11, 28, 11, 0)),
    ("datetime", "tomorrow", None),
    # phones
    ("phone", "5552223333", "5552223333"),
    ("phone", "555-222-3333", "5552223333"),
    ("phone", "(555) 222-3333", "5552223333"),
    ("phone", "555.222.3333", "5552223333"),
    ("phone", "555. One, two, three. 4.567.", "5551234567"),  # Whisper, one fragment per pause
    ("phone", "+1 555 222 3333", "5552223333"),
    ("phone", "1-555-222-3333", "5552223333"),
    ("phone", "five five five two two two three three three three", "5552223333"),
    ("phone", "double five five two two two three three three three", "5552223333"),
    ("phone", "five five five triple two three three three three", "5552223333"),
    ("phone", "five fifty five two twenty two thirty three thirty three", "5552223333"),
    ("phone", "my number is 555 222 3333", "5552223333"),
    ("phone", "oh one two three four five six seven", "01234567"),
    ("phone", "555 123", "555123"),  # short, kept so the form's length rule can say so
    ("phone", "5", None),
    ("phone", "call me maybe", None),
    # emails
    ("email", "john dot smith at example dot com", "john.smith@example.com"),
    ("email", "j o h n at gmail dot com", "john@gmail.com"),
    ("email", "John.Smith@Example.COM", "john.smith@example.com"),
    ("email", "my email is jane underscore doe at yahoo dot co dot uk", "jane_doe@yahoo.co.uk"),
    ("email", "bob dash jones at sign mail dot org", "bob-jones@mail.org"),
    ("email", "tom at gmail.com", "tom@gmail.com"),
    ("email", "not an email", None),
    # names
    ("name", "tom baker", "Tom Baker"),
    ("name", "I'm Tom Baker", "Tom Baker"),
    ("name", "my name is jane doe", "Jane Doe"),
    ("name", "this is Sam", "Sam"),
    ("name", "call me Bo", "Bo"),
    ("name", "name's Bob", "Bob"),
    ("name", "it's Jane", "Jane"),
    ("name", "it's Mary-Jane O'Neil", "Mary-Jane O'Neil"),
    ("name", "Tom Baker please", "Tom Baker"),
    ("name", "TOM BAKER", "Tom Baker"),
    ("name", "McDonald", "McDonald"),
    ("name", "yes", None),
    ("name", "Saturday", None),
    ("name", "one two", None),
    ("name", "tom baker smith jones junior", None),
    # yes / no
    ("yes_no", "yes", True),
    ("yes_no", "yeah sure", True),
    ("yes_no", "that's right", True),
    ("yes_no", "nope", False),
    ("yes_no", "no thanks", False),
    ("yes_no", "1", True),
    ("yes_no", "2", False),
    ("yes_no", "true", True),
    ("yes_no", "maybe", None),
    # choices
    ("choice", "haircut", "haircut"),
    ("choice", "a haircut please", "haircut"),
    ("choice", "haircuts", "haircut"),
    ("choice", "highlights", "color"),
    ("choice", "colour", "color"),
    ("choice", "Beard trims", "beard trim"),
    ("choice", "the beard", "beard trim"),
    ("choice", "blow dry", "blowout"),
    ("choice", "a haircut and a color", None),
    ("choice", "pizza", None),
    # patterns
    ("pattern", "a b c one two three", "ABC123"),
    ("pattern", "ABC123", "ABC123"),
    ("pattern", "abc 123", "ABC123"),
    ("pattern", "alpha bravo charlie one two three", "ABC123"),
    ("pattern", "x y z double four five", "XYZ445"),
    ("pattern", "a b c one two", None),
    # free text
    ("text", "  12 Oak Street. ", "12 Oak Street"),
    ("text", "um, it's 12 Oak Street please", "12 Oak Street"),
    ("text", "", None),
]


def spec(kind: str) -> SlotSpec:
    return SlotSpec(name="slot", type=kind, choices=SERVICES if kind == "choice" else {}, pattern=CODE if kind == "pattern" else None, hours=HOURS)


@pytest.mark.parametrize(("kind", "text", "expected"), CASES)
def test_normalize(kind, text, expected):
    got = normalize(spec(kind), text, now=NOW)
    assert got == expected
    assert type(got) is type(expected)


def test_case_count():
    assert len(CASES) >= 130


@pytest.mark.parametrize(
    ("text", "expected"),
    [("eleven", time(11, 0)), ("three", time(15, 0)), ("seven", time(7, 0)), ("twelve", time(12, 0)), ("six", time(18, 0)), ("1:30", time(13, 30))],
)
def test_time_without_a_window(text, expected):
    assert parse_time(text) == expected


def test_window_prefers_am_when_both_fit():
    assert parse_time("ten", (time(8, 0), time(23, 0))) == time(10, 0)
    assert parse_time("eight", (time(12, 0), time(22, 0))) == time(20, 0)


def test_public_parsers():
    assert parse_date("next Tuesday", NOW) == date(2026, 12, 1)
    assert parse_date("Tuesday at 3", NOW) is None
    assert parse_datetime("tomorrow at three", NOW, HOURS) == datetime(2026, 11, 24, 15, 0)
    assert parse_time("quarter to five") == time(16, 45)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("twenty five", 25), ("two hundred and five", 205), ("a dozen", 12), ("three and a half", 3.5),
        ("two point five", 2.5), ("1,200", 1200), ("zero", 0), ("seven hundred thousand", 700000), ("hello", None),
    ],
)  # fmt: skip
def test_words_to_number(text, expected):
    assert words_to_number(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("five five five two two two three three three three", "5552223333"), ("double five", "55"), ("oh", "0"),
        ("five thirty three", "533"), ("555-222 three three three three", "5552223333"), ("triple oh seven", "0007"),
        ("hello", None), ("five and six", None),
    ],
)  # fmt: skip
def test_spoken_digits(text, expected):
    assert spoken_digits(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("yes", True), ("yeah", True), ("yep", True), ("sure", True), ("correct", True), ("that's right", True),
        ("sounds good", True), ("please do", True), ("go ahead", True), ("absolutely", True), ("ok", True),
        ("yes please", True), ("um yes", True), ("1", True), ("no", False), ("nope", False), ("nah", False),
        ("not really", False), ("that's wrong", False), ("incorrect", False), ("no thanks", False),
        ("no, make it Wednesday", False), ("actually no", False), ("2", False), ("maybe", None), ("I'm not sure", None),
        ("what time is it", None), ("", None),
    ],
)  # fmt: skip
def test_classify_yes_no(text, expected):
    assert classify_yes_no(text) is expected

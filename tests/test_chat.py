"""Full text conversations through the real `frontdesk chat` command, ending in the real database."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.store import Store
from tests.conftest import ROOT

NOW = "2026-11-23T10:00"  # a Monday


def chat(turns: list[str], db: Path, bot: Path = ROOT / "bot.yaml", now: str = NOW, env: dict | None = None) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "chat", str(bot), "--json", "--now", now, "--db", str(db)],
        input="\n".join(turns) + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "HOME": str(db.parent), "FRONTDESK_LOG_LEVEL": "WARNING"} | (env or {}),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def bot_lines(result: dict) -> list[str]:
    return [t["text"] for t in result["transcript"] if t["role"] == "bot"]


@pytest.fixture
def db(tmp_path) -> Path:
    return tmp_path / "frontdesk.db"


@pytest.fixture
def ordering_bot(tmp_path) -> Path:
    text = (ROOT / "bot.yaml").read_text().replace("flow: flows/scheduling.yaml", f"flow: {ROOT / 'flows/ordering.yaml'}")
    path = tmp_path / "bot.yaml"
    path.write_text(text)
    return path


BOOKING = {"type": "booking", "name": "Tom Baker", "service": "beard trim", "date": "2026-11-28", "time": "11:00", "phone": "5552223333"}


def test_everything_in_one_breath_books_and_stores(db):
    result = chat(["hello, can I book a beard trim this Saturday at eleven? I'm Tom Baker, 555 222 3333", "yes"], db)
    assert result["outcome"] == BOOKING
    assert result["node"] == "booked"
    assert result["slots"] == {"service": "beard trim", "date": "2026-11-28", "time": "11:00", "name": "Tom Baker", "phone": "5552223333"}
    lines = bot_lines(result)
    assert lines[0] == "Thanks for calling Shear Delight. Would you like to book, reschedule or cancel an appointment?"
    assert lines[1] == (
        "Sure, let's get you booked. So that's a beard trim on Saturday, November 28th at 11 AM for Tom Baker, "
        "and your number is 555-222-3333. Shall I book it?"
    )
    assert lines[2].startswith("You're all set for Saturday, November 28th at 11 AM.")
    with Store(db) as store:
        [booking] = store.list_bookings()
        assert (booking.name, booking.service, booking.date.isoformat(), booking.time.strftime("%H:%M"), booking.phone) == (
            "Tom Baker", "beard trim", "2026-11-28", "11:00", "5552223333",
        )
        call = store.get_call(_only_call_id(db))
        assert [t["role"] for t in call["turns"]][:3] == ["bot", "caller", "bot"]


def closed_port() -> int:
    """A loopback port nothing listens on (connections to it are refused)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_claude_hands_every_turn_to_the_local_brain(db):
    """ANTHROPIC_API_KEY set, but Claude unreachable: the call still books, and the switch is counted."""
    env = {"ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{closed_port()}"}
    result = chat(["hello, can I book a beard trim this Saturday at eleven? I'm Tom Baker, 555 222 3333", "yes"], db, env=env)
    assert result["outcome"] == BOOKING
    lines = bot_lines(result)
    assert lines[0] == "Thanks for calling Shear Delight. Would you like to book, reschedule or cancel an appointment?"
    assert len(lines) == 3  # one greeting, one read-back, one confirmation: nothing said twice
    with Store(db) as store:
        metrics = store.get_call(_only_call_id(db))["metrics"]
    assert metrics["failover:llm"] >= 1


def _only_call_id(db: Path) -> str:
    import sqlite3

    [(call_id,)] = sqlite3.connect(db).execute("select call_id from calls").fetchall()
    return call_id


def test_step_by_step_with_invalid_values_and_a_correction(db):
    result = chat(
        [
            "I'd like to make an appointment",
            "a haircut please",
            "Sunday",                # closed
            "Wednesday",
            "seven in the evening",  # after closing
            "two thirty",
            "Jane Doe",
            "555 123",               # too short
            "five five five one two three four five six seven",
            "actually make it Thursday",
            "yes",
        ],
        db,
    )
    lines = bot_lines(result)
    assert "We're closed that day; we're open Tuesday to Saturday. Which day works for you?" in lines
    assert "We're open from nine in the morning to six in the evening. What time would you like?" in lines
    assert "That didn't sound like a full ten-digit number. What's your phone number?" in lines
    assert lines[-2].startswith("So that's a haircut on Thursday, November 26th at 2:30 PM for Jane Doe")
    assert result["outcome"] == {"type": "booking", "name": "Jane Doe", "service": "haircut", "date": "2026-11-26", "time": "14:30", "phone": "5551234567"}


def test_taken_time_offers_nearest_free_times(db):
    chat(["book a beard trim this Saturday at eleven, I'm Tom Baker, 555 222 3333", "yes"], db)
    result = chat(["I want a haircut on Saturday at 11am", "11:30", "Ann Lee", "555 999 8888", "yes"], db)
    lines = bot_lines(result)
    assert lines[1] == (
        "Sure, let's get you booked. Sorry, 11 AM on Saturday, November 28th is taken. "
        "I can do 11:30 AM or 10:15 AM. Would one of those work?"
    )
    assert result["outcome"]["time"] == "11:30"
    with Store(db) as store:
        assert sorted(b.time.strftime("%H:%M") for b in store.list_bookings()) == ["11:00", "11:30"]


def test_global_intent_speak_to_a_human(db):
    result = chat(["book a haircut", "can I talk to a real person please"], db)
    assert result["node"] == "transfer"
    assert bot_lines(result)[-1] == "Please hold while I connect you to someone at the salon."
    assert result["outcome"] is None


def test_caller_who_never_gives_a_valid_value_is_transferred(db):
    result = chat(["book an appointment", "bananas", "purple", "i don't know"], db)
    lines = bot_lines(result)
    assert lines[2] == "Sorry, which service was that? A haircut, color, a blowout or a beard trim?"
    assert lines[-1] == "Let me get someone from the salon to help you. Please hold while I connect you to someone at the salon."
    assert result["node"] == "transfer"
    with Store(db) as store:
        assert store.list_bookings() == []


def test_reschedule_and_cancel_by_phone(db):
    chat(["book a blowout on Friday at 10am for Sam Reed, 555 444 1111", "yes"], db)
    moved = chat(["I need to reschedule", "555 444 1111", "next Tuesday", "at 3 pm", "yes"], db)
    assert moved["outcome"] == {"type": "reschedule", "name": "Sam Reed", "service": "blowout", "date": "2026-12-01", "time": "15:00", "phone": "5554441111"}
    cancelled = chat(["cancel my appointment", "555 444 1111", "yes", "no thanks"], db)
    assert cancelled["outcome"]["type"] == "cancellation"
    assert "I found your blowout on Tuesday, December 1st at 3 PM. Do you want me to cancel it?" in bot_lines(cancelled)
    with Store(db) as store:
        [booking] = store.list_bookings()
        assert booking.status == "cancelled"


def test_repeat_and_start_over(db):
    result = chat(["book a haircut", "can you repeat that", "start over", "cancel"], db)
    lines = bot_lines(result)
    assert lines[2] == lines[1]
    assert lines[3] == "Okay, let's start over. Thanks for calling Shear Delight. Would you like to book, reschedule or cancel an appointment?"
    assert result["node"] == "cancel_lookup"


def test_ordering_with_cart_edits_delivery_and_total(db, ordering_bot):
    result = chat(
        [
            "two large pepperonis and a coke",
            "and a medium margherita with extra mushrooms",
            "actually remove the coke",
            "make the margherita a large",
            "that's all",
            "delivery please",
            "12 Oak Street",
            "Ann Lee",
            "555 321 7654",
            "yes",
        ],
        db,
        bot=ordering_bot,
    )
    assert result["outcome"] == {
        "type": "order",
        "items": [
            {"item": "pepperoni", "size": "large", "quantity": 2, "extras": []},
            {"item": "margherita", "size": "large", "quantity": 1, "extras": ["mushrooms"]},
        ],
        "fulfilment": "delivery",
        "address": "12 Oak Street",
        "name": "Ann Lee",
        "phone": "5553217654",
        "total": 48.5,
    }
    assert result["node"] == "placed_delivery"
    read_back = next(line for line in bot_lines(result) if line.startswith("Let me read that back"))
    assert "two large pepperoni pizzas and a large margherita pizza with mushrooms" in read_back
    assert "48 dollars and 50 cents" in read_back
    with Store(db) as store:
        [order] = store.list_orders()
        assert order.total_cents == 4850 and order.address == "12 Oak Street"


def test_ordering_asks_for_a_missing_size_and_skips_address_for_pickup(db, ordering_bot):
    result = chat(["a veggie pizza and garlic bread", "small", "nothing else", "I'll pick it up", "Bo Chen", "555 000 1234", "yes"], db, bot=ordering_bot)
    lines = bot_lines(result)
    assert "What size would you like the veggie: small, medium or large?" in " ".join(lines)
    assert not any("delivery address" in line for line in lines)
    assert result["outcome"]["items"] == [
        {"item": "veggie", "size": "small", "quantity": 1, "extras": []},
        {"item": "garlic bread", "size": None, "quantity": 1, "extras": []},
    ]
    assert result["outcome"]["total"] == 15.0 and result["outcome"]["address"] is None


def test_plain_flowconfig_runs_unchanged(db, tmp_path):
    bot = tmp_path / "plain-bot.yaml"
    bot.write_text(f"name: Plain\nflow: {ROOT / 'tests/fixtures/plain_flow.yaml'}\n")
    result = chat(["sushi please"], db, bot=bot)
    assert bot_lines(result) == ["Would you like pizza or sushi today?", "Lovely, sushi it is. Goodbye!"]
    assert result["node"] == "sushi"


def test_ordering_edits_by_reference_and_from_the_read_back(db, ordering_bot):
    result = chat(
        ["a pepperoni pizza", "make it a large", "that's it", "pickup", "Max Roe", "555 222 1111", "actually add a sprite", "yes"],
        db,
        bot=ordering_bot,
    )
    lines = bot_lines(result)
    assert lines[1] == "Got it, a pepperoni pizza. What size would you like the pepperoni: small, medium or large?"
    assert lines[2] == "Got it, that's now a large pepperoni pizza. Anything else?"
    assert lines[-2].startswith("Got it, a sprite. Let me read that back: a large pepperoni pizza and a sprite.")
    assert result["outcome"]["items"] == [
        {"item": "pepperoni", "size": "large", "quantity": 1, "extras": []},
        {"item": "sprite", "size": None, "quantity": 1, "extras": []},
    ]
    assert result["outcome"]["total"] == 18.5

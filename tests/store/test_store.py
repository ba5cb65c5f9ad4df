"""Bookings, orders and call records against real SQLite files."""

from __future__ import annotations

import asyncio
import threading
from datetime import date, datetime, time, timezone
from pathlib import Path

import pytest

from app.store import Booking, BookingNotFound, OpeningHours, OrderRecord, SlotTaken, Store, StoreError

SAT = date(2026, 11, 28)  # a Saturday
SUN = date(2026, 11, 29)
MON = date(2026, 11, 30)
TUE = date(2026, 12, 1)
HOURS = OpeningHours(days=frozenset({1, 2, 3, 4, 5}), open=time(9), close=time(18))  # Tue-Sat 09-18


@pytest.fixture
def store(tmp_path: Path):
    s = Store(tmp_path / "frontdesk.db")
    yield s
    s.close()


def book(store: Store, d: date, t: time, minutes: int = 30, *, phone: str = "+15550001", name: str = "Ann",
         hours: OpeningHours = HOURS) -> Booking:
    return store.create_booking(
        call_id="call-1", name=name, service="haircut", d=d, t=t, duration_min=minutes, phone=phone, hours=hours
    )


# --- opening hours ----------------------------------------------------------------------------


def test_opening_hours_validation() -> None:
    assert OpeningHours(days={0, 6}, open=time(9), close=time(10)).days == frozenset({0, 6})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="weekday numbers 0-6"):
        OpeningHours(days=frozenset({7}), open=time(9), close=time(18))
    with pytest.raises(ValueError, match="opening time 18:00 must be before closing time 09:00"):
        OpeningHours(days=frozenset({1}), open=time(18), close=time(9))
    with pytest.raises(ValueError, match="capacity"):
        OpeningHours(days=frozenset({1}), open=time(9), close=time(18), capacity=0)


def test_is_free_respects_days_and_hours(store: Store) -> None:
    assert store.is_free(SAT, time(9), 30, HOURS) is True
    assert store.is_free(SAT, time(17, 30), 30, HOURS) is True  # ends exactly at close
    assert store.is_free(SAT, time(17, 45), 30, HOURS) is False  # runs past close
    assert store.is_free(SAT, time(8, 45), 30, HOURS) is False  # starts before open
    assert store.is_free(SUN, time(11), 30, HOURS) is False
    assert store.is_free(MON, time(11), 30, HOURS) is False
    with pytest.raises(ValueError, match="duration_min must be positive"):
        store.is_free(SAT, time(11), 0, HOURS)


# --- booking and refusing ---------------------------------------------------------------------


def test_create_booking_round_trip(store: Store) -> None:
    b = book(store, SAT, time(11))
    assert b == Booking(
        id=1, call_id="call-1", name="Ann", service="haircut", date=SAT, time=time(11), duration_min=30,
        phone="+15550001", status="booked",
    )
    assert store.list_bookings() == [b]
    assert store.is_free(SAT, time(11), 30, HOURS) is False
    assert store.is_free(SAT, time(10, 45), 30, HOURS) is False
    assert store.is_free(SAT, time(10, 30), 30, HOURS) is True
    assert store.is_free(SAT, time(11, 30), 30, HOURS) is True


def test_double_booking_refused_with_exact_alternatives(store: Store) -> None:
    book(store, SAT, time(11))
    with pytest.raises(SlotTaken) as err:
        book(store, SAT, time(11), name="Bob", phone="+15550002")
    assert err.value.alternatives == [(SAT, time(10, 30)), (SAT, time(11, 30))]
    assert str(err.value) == "2026-11-28 11:00 for 30 min is not available"
    assert isinstance(err.value, StoreError)
    assert [b.name for b in store.list_bookings()] == ["Ann"]


def test_nearest_free_same_day_ordering(store: Store) -> None:
    book(store, SAT, time(11))
    assert store.nearest_free(SAT, time(11), 30, HOURS, n=5) == [
        (SAT, time(10, 30)), (SAT, time(11, 30)), (SAT, time(10, 15)), (SAT, time(11, 45)), (SAT, time(10)),
    ]
    # a free requested start is itself the nearest
    assert store.nearest_free(SAT, time(14), 30, HOURS, n=1) == [(SAT, time(14))]
    # an off-grid request: distances from 11:10 are 10:30 -> 40, 11:30 -> 20, 11:45 -> 35
    assert store.nearest_free(SAT, time(11, 10), 30, HOURS, n=3) == [
        (SAT, time(11, 30)), (SAT, time(11, 45)), (SAT, time(10, 30)),
    ]


def test_nearest_free_moves_to_following_open_days(store: Store) -> None:
    book(store, SAT, time(9), minutes=9 * 60)  # the whole Saturday
    assert store.nearest_free(SAT, time(11), 30, HOURS, n=3) == [
        (TUE, time(9)), (TUE, time(9, 15)), (TUE, time(9, 30)),
    ]
    assert store.nearest_free(SAT, time(11), 30, HOURS, search_days=2) == []  # Sun, Mon closed


def test_appointment_past_close_refused(store: Store) -> None:
    with pytest.raises(SlotTaken) as err:
        book(store, SAT, time(17, 45))
    assert err.value.alternatives == [(SAT, time(17, 30)), (SAT, time(17, 15))]
    assert store.list_bookings() == []


def test_closed_day_refused(store: Store) -> None:
    with pytest.raises(SlotTaken) as err:
        book(store, SUN, time(11))
    assert err.value.alternatives == [(TUE, time(9)), (TUE, time(9, 15))]
    assert store.list_bookings() == []


def test_capacity_two_allows_two_overlapping(store: Store) -> None:
    two = OpeningHours(days=frozenset({5}), open=time(9), close=time(18), capacity=2)
    book(store, SAT, time(10), 60, hours=two)
    book(store, SAT, time(11), 60, hours=two)
    # overlaps both, but never more than one at a time: fits in two chairs
    book(store, SAT, time(10, 30), 60, hours=two)
    # 10:30-11:00 now has two appointments
    with pytest.raises(SlotTaken) as err:
        book(store, SAT, time(10, 30), 30, hours=two)
    # 10:15 and 11:00 would make three at once; 10:00 (30 away) and 09:45 (45 away) fit
    assert err.value.alternatives == [(SAT, time(10)), (SAT, time(9, 45))]
    assert store.is_free(SAT, time(9, 15), 60, two) is True  # meets only 10:00-11:00
    assert store.is_free(SAT, time(10, 45), 15, two) is False
    assert store.is_free(SAT, time(11, 30), 30, two) is True
    assert len(store.list_bookings(SAT)) == 3


# --- concurrency ------------------------------------------------------------------------------


def test_two_stores_racing_for_one_slot_only_one_wins(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    Store(path).close()
    stores = [Store(path), Store(path)]
    slots = [time(9 + i // 2, 30 * (i % 2)) for i in range(18)]  # every 30-min slot of the day
    results: list[list[str]] = [[], []]
    barrier = threading.Barrier(2)

    def race(i: int) -> None:
        for t in slots:
            barrier.wait()
            try:
                book(stores[i], SAT, t, name=f"caller{i}")
                results[i].append("ok")
            except SlotTaken:
                results[i].append("taken")

    threads = [threading.Thread(target=race, args=(i,)) for i in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for s in stores:
        s.close()

    for a, b in zip(*results, strict=True):
        assert sorted([a, b]) == ["ok", "taken"]
    with Store(path) as check:
        booked = check.list_bookings(SAT)
    assert [b.time for b in booked] == slots
    assert sorted(results[0] + results[1]) == ["ok"] * 18 + ["taken"] * 18


async def test_one_store_shared_across_to_thread_workers(store: Store) -> None:
    async def attempt(i: int) -> str:
        try:
            await asyncio.to_thread(book, store, SAT, time(15), 30, name=f"c{i}")
            return "ok"
        except SlotTaken:
            return "taken"

    outcomes = await asyncio.gather(*(attempt(i) for i in range(8)))
    assert sorted(outcomes) == ["ok"] + ["taken"] * 7
    assert len(store.list_bookings(SAT)) == 1


# --- cancel, reschedule, lookups --------------------------------------------------------------


def test_cancel_frees_the_slot(store: Store) -> None:
    b = book(store, SAT, time(11))
    cancelled = store.cancel_booking(b.id)
    assert cancelled.status == "cancelled"
    assert store.cancel_booking(b.id) == cancelled  # idempotent
    assert store.is_free(SAT, time(11), 30, HOURS) is True
    again = book(store, SAT, time(11), name="Bob")
    assert again.id == 2
    assert [(x.name, x.status) for x in store.list_bookings(SAT)] == [("Ann", "cancelled"), ("Bob", "booked")]
    with pytest.raises(BookingNotFound, match="no booking 99"):
        store.cancel_booking(99)


def test_reschedule(store: Store) -> None:
    ann = book(store, SAT, time(11))
    book(store, SAT, time(14), name="Bob", phone="+15550002")
    # overlapping its own old slot is fine: it excludes itself
    moved = store.reschedule_booking(ann.id, SAT, time(11, 15), HOURS)
    assert moved == Booking(
        id=ann.id, call_id="call-1", name="Ann", service="haircut", date=SAT, time=time(11, 15), duration_min=30,
        phone="+15550001", status="booked",
    )
    assert store.is_free(SAT, time(11), 15, HOURS) is True
    with pytest.raises(SlotTaken) as err:
        store.reschedule_booking(ann.id, SAT, time(14), HOURS)
    # Ann's own 11:15 does not block the alternatives
    assert err.value.alternatives == [(SAT, time(13, 30)), (SAT, time(14, 30))]
    assert store.list_bookings(SAT)[0].time == time(11, 15)
    moved = store.reschedule_booking(ann.id, TUE, time(9), HOURS)
    assert (moved.date, moved.time) == (TUE, time(9))
    store.cancel_booking(ann.id)
    with pytest.raises(StoreError, match="booking 1 is cancelled"):
        store.reschedule_booking(ann.id, SAT, time(11), HOURS)
    with pytest.raises(BookingNotFound):
        store.reschedule_booking(42, SAT, time(11), HOURS)


def test_bookings_by_phone(store: Store) -> None:
    later = book(store, TUE, time(10))
    sooner = book(store, SAT, time(16))
    earliest = book(store, SAT, time(9, 30))
    book(store, SAT, time(12), phone="+15559999", name="Other")
    gone = book(store, date(2026, 12, 2), time(10))
    store.cancel_booking(gone.id)
    assert store.bookings_by_phone("+15550001") == [earliest, sooner, later]
    assert store.bookings_by_phone("+15550001", on_or_after=date(2026, 11, 29)) == [later]
    assert store.bookings_by_phone("+10000000") == []


def test_list_bookings_by_day(store: Store) -> None:
    b1 = book(store, TUE, time(10))
    b2 = book(store, SAT, time(16))
    b3 = book(store, SAT, time(9, 30))
    assert store.list_bookings() == [b3, b2, b1]
    assert store.list_bookings(SAT) == [b3, b2]
    assert store.list_bookings(SUN) == []


def test_bookings_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "f.db"
    with Store(path) as s:
        b = book(s, SAT, time(11))
    with Store(path) as s:
        assert s.list_bookings() == [b]
        assert s.is_free(SAT, time(11), 30, HOURS) is False


# --- orders -----------------------------------------------------------------------------------


def test_orders_round_trip(store: Store) -> None:
    at = datetime(2026, 11, 28, 18, 5, 30, tzinfo=timezone.utc)
    items = [
        {"item": "Margherita", "size": "large", "qty": 2, "price_cents": 1400, "options": ["extra basil"]},
        {"item": "Crème brûlée", "qty": 1, "price_cents": 650},
    ]
    o1 = store.create_order(
        call_id="call-7", items=items, fulfilment="delivery", address="1 High St", name="Ann", phone="+15550001",
        total_cents=3450, created_at=at,
    )
    o2 = store.create_order(
        call_id=None, items=[], fulfilment="pickup", address=None, name="Bob", phone="+15550002",
        total_cents=0, created_at=at,
    )
    assert o1 == OrderRecord(
        id=1, call_id="call-7", items=items, fulfilment="delivery", address="1 High St", name="Ann",
        phone="+15550001", total_cents=3450, created_at=at,
    )
    assert o2.id == 2 and o2.address is None and o2.call_id is None
    assert store.list_orders() == [o1, o2]
    assert store.list_orders()[0].created_at.tzinfo == timezone.utc


# --- calls ------------------------------------------------------------------------------------


def test_calls_and_turns_round_trip(store: Store) -> None:
    start = datetime(2026, 11, 28, 10, 0, 0, tzinfo=timezone.utc)
    end = datetime(2026, 11, 28, 10, 3, 12, tzinfo=timezone.utc)
    store.start_call("call-1", bot="salon", flow="booking", transport="webrtc", started_at=start)
    assert store.get_call("call-1") == {
        "call_id": "call-1", "bot": "salon", "flow": "booking", "transport": "webrtc", "caller": None, "started_at": start,
        "ended_at": None, "final_node": None, "outcome": None, "metrics": None, "turns": [],
    }
    store.add_turn("call-1", "bot", "Hello, how can I help?", start)
    store.add_turn("call-1", "caller", "A haircut on Saturday, please.", start)
    store.add_turn("call-1", "bot", "Eleven o'clock?", start)
    store.end_call(
        "call-1", ended_at=end, final_node="done",
        outcome={"booking_id": 1, "date": date(2026, 11, 28)}, metrics={"turns": 3, "latency_ms": [412, 380]},
        caller="+15552223333",
    )
    assert store.get_call("call-1") == {
        "call_id": "call-1", "bot": "salon", "flow": "booking", "transport": "webrtc", "caller": "+15552223333", "started_at": start,
        "ended_at": end, "final_node": "done",
        "outcome": {"booking_id": 1, "date": "2026-11-28"},
        "metrics": {"turns": 3, "latency_ms": [412, 380]},
        "turns": [
            {"role": "bot", "text": "Hello, how can I help?"},
            {"role": "caller", "text": "A haircut on Saturday, please."},
            {"role": "bot", "text": "Eleven o'clock?"},
        ],
    }
    assert store.get_call("nope") is None


def test_call_errors(store: Store) -> None:
    at = datetime(2026, 11, 28, 10, 0)
    store.start_call("c", bot="b", flow="f", transport="daily", started_at=at)
    with pytest.raises(StoreError, match="call 'c' was already started"):
        store.start_call("c", bot="b", flow="f", transport="daily", started_at=at)
    with pytest.raises(StoreError, match="no call 'x' to add a turn to"):
        store.add_turn("x", "bot", "hi", at)
    with pytest.raises(ValueError, match="role must be"):
        store.add_turn("c", "agent", "hi", at)
    with pytest.raises(StoreError, match="no call 'x' to end"):
        store.end_call("x", ended_at=at, final_node=None, outcome=None)
    # the store is still usable after each refusal
    store.end_call("c", ended_at=at, final_node=None, outcome=None)
    call = store.get_call("c")
    assert call is not None and call["ended_at"] == at and call["turns"] == []

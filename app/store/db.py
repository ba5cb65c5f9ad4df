"""The store: calls, bookings and orders in one SQLite file.

One connection per Store, in autocommit mode; every operation holds a lock, so a Store may be used
from the event loop thread and from `asyncio.to_thread` workers alike. Writes that must check
before they insert run under BEGIN IMMEDIATE, which also serialises separate Stores (or processes)
on the same file.

A file is kept in WAL mode with `synchronous=NORMAL`: a commit is in the log, and survives the
process being killed, when the call returns, without waiting for the disk (SQLite's default, FULL,
syncs the log at every commit: ~0.4 ms here, on the event loop, for each line of every call's
transcript). What NORMAL gives up is the last commits before a power cut or an OS crash; the
file stays consistent either way (https://www.sqlite.org/pragma.html#pragma_synchronous).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from app.store import migrations
from app.store.availability import Interval, OpeningHours, by_distance, clock, fits, free_starts, minutes, within_hours
from app.store.errors import BookingNotFound, SlotTaken, StoreError

BUSY_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Booking:
    id: int
    call_id: str | None
    name: str
    service: str
    date: date
    time: time
    duration_min: int
    phone: str
    status: str  # 'booked' | 'cancelled'


@dataclass(frozen=True)
class OrderRecord:
    id: int
    call_id: str | None
    items: list[dict]
    fulfilment: str
    address: str | None
    name: str
    phone: str
    total_cents: int
    created_at: datetime


_BOOKING_COLUMNS = "id, call_id, name, service, date, time, duration_min, phone, status"


def _booking(row: sqlite3.Row) -> Booking:
    return Booking(
        id=row["id"],
        call_id=row["call_id"],
        name=row["name"],
        service=row["service"],
        date=date.fromisoformat(row["date"]),
        time=time.fromisoformat(row["time"]),
        duration_min=row["duration_min"],
        phone=row["phone"],
        status=row["status"],
    )


def _order(row: sqlite3.Row) -> OrderRecord:
    return OrderRecord(
        id=row["id"],
        call_id=row["call_id"],
        items=json.loads(row["items"]),
        fulfilment=row["fulfilment"],
        address=row["address"],
        name=row["name"],
        phone=row["phone"],
        total_cents=row["total_cents"],
        created_at=datetime.fromisoformat(row["created_at"]),
    )


def _json(value: Any) -> str | None:
    # default=str: slot values such as dates are stored as their text, not refused.
    return None if value is None else json.dumps(value, default=str, ensure_ascii=False)


def _hhmm(t: time) -> str:
    return f"{t.hour:02d}:{t.minute:02d}"


def _check_duration(duration_min: int) -> None:
    if duration_min < 1:
        raise ValueError(f"duration_min must be positive, got {duration_min}")


class Store:
    def __init__(self, path: str | Path):
        memory = str(path) == ":memory:"
        if not memory:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(
            str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        try:
            self._conn.row_factory = sqlite3.Row
            if not memory:
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            migrations.migrate(self._conn)
        except BaseException:
            self._conn.close()
            raise

    @property
    def schema_version(self) -> int:
        with self._lock:
            return migrations.current_version(self._conn)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @contextmanager
    def _tx(self, *, write: bool) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    # --- calls ----------------------------------------------------------------------------------

    def start_call(self, call_id: str, *, bot: str, flow: str, transport: str, started_at: datetime) -> None:
        try:
            with self._tx(write=True) as conn:
                conn.execute(
                    "INSERT INTO calls (call_id, bot, flow, transport, started_at) VALUES (?, ?, ?, ?, ?)",
                    (call_id, bot, flow, transport, started_at.isoformat()),
                )
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"call {call_id!r} was already started") from exc

    def add_turn(self, call_id: str, role: str, text: str, at: datetime) -> None:
        if role not in ("bot", "caller"):
            raise ValueError(f"role must be 'bot' or 'caller', got {role!r}")
        try:
            with self._tx(write=True) as conn:
                conn.execute(
                    "INSERT INTO turns (call_id, role, text, at) VALUES (?, ?, ?, ?)",
                    (call_id, role, text, at.isoformat()),
                )
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"no call {call_id!r} to add a turn to") from exc

    def end_call(
        self,
        call_id: str,
        *,
        ended_at: datetime,
        final_node: str | None,
        outcome: dict | None,
        metrics: dict | None = None,
        caller: str | None = None,
    ) -> None:
        with self._tx(write=True) as conn:
            cursor = conn.execute(
                "UPDATE calls SET ended_at = ?, final_node = ?, outcome = ?, metrics = ?, caller = coalesce(?, caller) WHERE call_id = ?",
                (ended_at.isoformat(), final_node, _json(outcome), _json(metrics), caller, call_id),
            )
            if cursor.rowcount == 0:
                raise StoreError(f"no call {call_id!r} to end")

    def get_call(self, call_id: str) -> dict | None:
        with self._tx(write=False) as conn:
            row = conn.execute("SELECT * FROM calls WHERE call_id = ?", (call_id,)).fetchone()
            if row is None:
                return None
            turns = conn.execute(
                "SELECT role, text FROM turns WHERE call_id = ? ORDER BY id", (call_id,)
            ).fetchall()
        return {
            "call_id": row["call_id"],
            "bot": row["bot"],
            "flow": row["flow"],
            "transport": row["transport"],
            "caller": row["caller"],
            "started_at": datetime.fromisoformat(row["started_at"]),
            "ended_at": datetime.fromisoformat(row["ended_at"]) if row["ended_at"] else None,
            "final_node": row["final_node"],
            "outcome": json.loads(row["outcome"]) if row["outcome"] is not None else None,
            "metrics": json.loads(row["metrics"]) if row["metrics"] is not None else None,
            "turns": [{"role": t["role"], "text": t["text"]} for t in turns],
        }

    # --- bookings -------------------------------------------------------------------------------

    def _taken(self, d: date, exclude_booking: int | None) -> list[Interval]:
        rows = self._conn.execute(
            "SELECT time, duration_min FROM bookings WHERE date = ? AND status = 'booked' AND id IS NOT ?",
            (d.isoformat(), exclude_booking),
        ).fetchall()
        out: list[Interval] = []
        for row in rows:
            start = minutes(time.fromisoformat(row["time"]))
            out.append((start, start + row["duration_min"]))
        return out

    def _is_free(self, d: date, t: time, duration_min: int, hours: OpeningHours, exclude: int | None) -> bool:
        start = minutes(t)
        if not within_hours(d, start, duration_min, hours):
            return False
        return fits(start, duration_min, self._taken(d, exclude), hours.capacity)

    def _nearest_free(
        self, d: date, t: time, duration_min: int, hours: OpeningHours, n: int, exclude: int | None, search_days: int
    ) -> list[tuple[date, time]]:
        found: list[tuple[date, time]] = []
        for offset in range(search_days + 1):
            if len(found) >= n:
                break
            day = d + timedelta(days=offset)
            if day.weekday() not in hours.days:
                continue
            starts = free_starts(day, duration_min, hours, self._taken(day, exclude))
            if offset == 0:
                starts = by_distance(starts, minutes(t))
            found.extend((day, clock(s)) for s in starts[: n - len(found)])
        return found

    def is_free(
        self, d: date, t: time, duration_min: int, hours: OpeningHours, *, exclude_booking: int | None = None
    ) -> bool:
        _check_duration(duration_min)
        with self._tx(write=False):
            return self._is_free(d, t, duration_min, hours, exclude_booking)

    def nearest_free(
        self,
        d: date,
        t: time,
        duration_min: int,
        hours: OpeningHours,
        *,
        n: int = 2,
        exclude_booking: int | None = None,
        search_days: int = 14,
    ) -> list[tuple[date, time]]:
        """Free starts on the step grid nearest the requested one, closest first.

        The requested day comes first, ordered by distance from `t` (ties: earlier first); then the
        following open days up to `search_days` later, earliest first. A free `t` on the grid is
        itself included.
        """
        _check_duration(duration_min)
        with self._tx(write=False):
            return self._nearest_free(d, t, duration_min, hours, n, exclude_booking, search_days)

    def _get_booking(self, booking_id: int) -> Booking:
        row = self._conn.execute(
            f"SELECT {_BOOKING_COLUMNS} FROM bookings WHERE id = ?", (booking_id,)
        ).fetchone()
        if row is None:
            raise BookingNotFound(f"no booking {booking_id}")
        return _booking(row)

    def _refuse(self, d: date, t: time, duration_min: int, hours: OpeningHours, exclude: int | None) -> SlotTaken:
        alternatives = self._nearest_free(d, t, duration_min, hours, 2, exclude, 14)
        return SlotTaken(alternatives, f"{d.isoformat()} {_hhmm(t)} for {duration_min} min is not available")

    def create_booking(
        self,
        *,
        call_id: str | None,
        name: str,
        service: str,
        d: date,
        t: time,
        duration_min: int,
        phone: str,
        hours: OpeningHours,
    ) -> Booking:
        _check_duration(duration_min)
        with self._tx(write=True) as conn:
            if not self._is_free(d, t, duration_min, hours, None):
                raise self._refuse(d, t, duration_min, hours, None)
            cursor = conn.execute(
                "INSERT INTO bookings (call_id, name, service, date, time, duration_min, phone)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (call_id, name, service, d.isoformat(), _hhmm(t), duration_min, phone),
            )
            assert cursor.lastrowid is not None
            return self._get_booking(cursor.lastrowid)

    def bookings_by_phone(self, phone: str, *, on_or_after: date | None = None) -> list[Booking]:
        since = on_or_after.isoformat() if on_or_after else ""
        with self._tx(write=False) as conn:
            rows = conn.execute(
                f"SELECT {_BOOKING_COLUMNS} FROM bookings"
                " WHERE phone = ? AND status = 'booked' AND date >= ? ORDER BY date, time, id",
                (phone, since),
            ).fetchall()
        return [_booking(r) for r in rows]

    def cancel_booking(self, booking_id: int) -> Booking:
        """Cancel a booking; cancelling one already cancelled returns it unchanged."""
        with self._tx(write=True) as conn:
            self._get_booking(booking_id)
            conn.execute("UPDATE bookings SET status = 'cancelled' WHERE id = ?", (booking_id,))
            return self._get_booking(booking_id)

    def reschedule_booking(self, booking_id: int, d: date, t: time, hours: OpeningHours) -> Booking:
        """Move an active booking (same duration) to a new start; raises SlotTaken if not free."""
        with self._tx(write=True) as conn:
            booking = self._get_booking(booking_id)
            if booking.status != "booked":
                raise StoreError(f"booking {booking_id} is {booking.status}")
            if not self._is_free(d, t, booking.duration_min, hours, booking_id):
                raise self._refuse(d, t, booking.duration_min, hours, booking_id)
            conn.execute(
                "UPDATE bookings SET date = ?, time = ? WHERE id = ?", (d.isoformat(), _hhmm(t), booking_id)
            )
            return self._get_booking(booking_id)

    def list_bookings(self, d: date | None = None) -> list[Booking]:
        """Every booking (cancelled ones too), in time order; only day `d` when given."""
        with self._tx(write=False) as conn:
            if d is None:
                rows = conn.execute(f"SELECT {_BOOKING_COLUMNS} FROM bookings ORDER BY date, time, id").fetchall()
            else:
                rows = conn.execute(
                    f"SELECT {_BOOKING_COLUMNS} FROM bookings WHERE date = ? ORDER BY time, id", (d.isoformat(),)
                ).fetchall()
        return [_booking(r) for r in rows]

    # --- orders ---------------------------------------------------------------------------------

    def create_order(
        self,
        *,
        call_id: str | None,
        items: list[dict],
        fulfilment: str,
        address: str | None,
        name: str,
        phone: str,
        total_cents: int,
        created_at: datetime,
    ) -> OrderRecord:
        with self._tx(write=True) as conn:
            cursor = conn.execute(
                "INSERT INTO orders (call_id, items, fulfilment, address, name, phone, total_cents, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (call_id, _json(items), fulfilment, address, name, phone, total_cents, created_at.isoformat()),
            )
            row = conn.execute("SELECT * FROM orders WHERE id = ?", (cursor.lastrowid,)).fetchone()
        return _order(row)

    def list_orders(self) -> list[OrderRecord]:
        with self._tx(write=False) as conn:
            rows = conn.execute("SELECT * FROM orders ORDER BY id").fetchall()
        return [_order(r) for r in rows]

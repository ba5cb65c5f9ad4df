"""Schema migrations: numbered SQL scripts, each applied once, in order, in its own transaction.

`schema_migrations` records what has been applied; the schema version is its highest row (0 when
empty). To change the schema, append `(next_version, sql)` to MIGRATIONS; never edit a released one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone

from app.store.errors import StoreError

V1 = """
CREATE TABLE calls (
    call_id    TEXT PRIMARY KEY,
    bot        TEXT NOT NULL,
    flow       TEXT NOT NULL,
    transport  TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at   TEXT,
    final_node TEXT,
    outcome    TEXT,  -- JSON
    metrics    TEXT   -- JSON
);

CREATE TABLE turns (
    id      INTEGER PRIMARY KEY,
    call_id TEXT NOT NULL REFERENCES calls (call_id) ON DELETE CASCADE,
    role    TEXT NOT NULL CHECK (role IN ('bot', 'caller')),
    text    TEXT NOT NULL,
    at      TEXT NOT NULL
);
CREATE INDEX turns_call ON turns (call_id, id);

CREATE TABLE bookings (
    id           INTEGER PRIMARY KEY,
    call_id      TEXT,  -- not a foreign key: a booking outlives (or predates) call records
    name         TEXT NOT NULL,
    service      TEXT NOT NULL,
    date         TEXT NOT NULL,  -- ISO date
    time         TEXT NOT NULL CHECK (time GLOB '[0-2][0-9]:[0-5][0-9]'),
    duration_min INTEGER NOT NULL CHECK (duration_min > 0),
    phone        TEXT NOT NULL,
    status       TEXT NOT NULL DEFAULT 'booked' CHECK (status IN ('booked', 'cancelled')),
    created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
CREATE INDEX bookings_date_status ON bookings (date, status);
CREATE INDEX bookings_phone ON bookings (phone);

CREATE TABLE orders (
    id          INTEGER PRIMARY KEY,
    call_id     TEXT,
    items       TEXT NOT NULL,  -- JSON list
    fulfilment  TEXT NOT NULL,
    address     TEXT,
    name        TEXT NOT NULL,
    phone       TEXT NOT NULL,
    total_cents INTEGER NOT NULL CHECK (total_cents >= 0),
    created_at  TEXT NOT NULL
);
CREATE INDEX orders_created ON orders (created_at);
"""

V2 = """
ALTER TABLE calls ADD COLUMN caller TEXT;  -- the number the call comes from, when the transport knows it
"""

MIGRATIONS: list[tuple[int, str]] = [
    (1, V1),
    (2, V2),
]

_BOOKKEEPING = (
    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
)


def current_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()
    return int(row[0])


def statements(script: str) -> Iterator[str]:
    """Split a script into complete statements (executescript would commit mid-transaction)."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending.strip()
            pending = ""
    if pending.strip() and not pending.strip().startswith("--"):
        raise StoreError(f"incomplete SQL statement in migration: {pending.strip()[:80]!r}")


def migrate(conn: sqlite3.Connection, migrations: Sequence[tuple[int, str]] | None = None) -> list[int]:
    """Apply every migration above the database's version; return the versions applied.

    `conn` must be in autocommit mode (isolation_level=None). Each migration runs under
    BEGIN IMMEDIATE and re-reads the version first, so two processes opening the same new file
    cannot apply one twice.
    """
    steps = list(MIGRATIONS if migrations is None else migrations)
    versions = [v for v, _ in steps]
    if versions != sorted(set(versions)) or (versions and versions[0] < 1):
        raise StoreError(f"migration versions must be unique, ascending and start above 0: {versions}")
    conn.execute(_BOOKKEEPING)
    latest = versions[-1] if versions else 0
    found = current_version(conn)
    if found > latest:
        raise StoreError(f"database schema version {found} is newer than this code knows ({latest})")

    applied: list[int] = []
    for version, script in steps:
        conn.execute("BEGIN IMMEDIATE")
        try:
            if current_version(conn) >= version:
                conn.execute("ROLLBACK")
                continue
            for statement in statements(script):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                (version, datetime.now(timezone.utc).isoformat(timespec="seconds")),
            )
            conn.execute("COMMIT")
        except BaseException as exc:
            conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"schema migration {version} failed: {exc}") from exc
            raise
        applied.append(version)
    return applied

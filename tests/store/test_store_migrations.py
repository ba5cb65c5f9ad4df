"""Schema migrations on real SQLite files."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from app.store import Store, StoreError, migrations


def _rows(path: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_empty_file_migrates_to_latest(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "frontdesk.db"
    with Store(path) as store:
        assert store.schema_version == 2
    assert path.exists()
    tables = _rows(path, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    assert tables == [("bookings",), ("calls",), ("orders",), ("schema_migrations",), ("turns",)]
    indexes = _rows(path, "SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name")
    assert indexes == [
        ("bookings_date_status", "bookings"),
        ("bookings_phone", "bookings"),
        ("orders_created", "orders"),
        ("turns_call", "turns"),
    ]
    assert _rows(path, "PRAGMA index_info(bookings_date_status)") == [(0, 4, "date"), (1, 8, "status")]
    assert [v for v, in _rows(path, "SELECT version FROM schema_migrations")] == [1, 2]
    assert _rows(path, "PRAGMA journal_mode") == [("wal",)]


def test_commits_do_not_wait_for_the_disk_but_survive_a_killed_process(tmp_path: Path) -> None:
    path = tmp_path / "f.db"
    with Store(path) as store:
        assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL, not FULL (2)
    # A worker killed right after a caller's line was stored: the line is in the file.
    script = (
        "import os, signal, sys\n"
        "from datetime import datetime\n"
        "from app.store import Store\n"
        "store = Store(sys.argv[1])\n"
        "store.start_call('c1', bot='b', flow='f', transport='twilio', started_at=datetime(2026, 1, 1))\n"
        "store.add_turn('c1', 'caller', 'my number is 555 0100', datetime(2026, 1, 1))\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(path)], cwd=Path(__file__).resolve().parents[2], timeout=60)
    assert done.returncode == -signal.SIGKILL
    with Store(path) as store:
        assert store.get_call("c1")["turns"] == [{"role": "caller", "text": "my number is 555 0100"}]


def test_connection_has_foreign_keys_on(tmp_path: Path) -> None:
    with Store(tmp_path / "f.db") as store:
        assert store._conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_reopening_applies_nothing_twice(tmp_path: Path) -> None:
    path = tmp_path / "f.db"
    Store(path).close()
    before = _rows(path, "SELECT version, applied_at FROM schema_migrations")
    with Store(path) as store:
        assert store.schema_version == 2
    with Store(path) as store:
        assert store.schema_version == 2
    assert _rows(path, "SELECT version, applied_at FROM schema_migrations") == before
    assert len(before) == 2


def test_version_1_database_is_upgraded_and_keeps_its_calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "f.db"
    latest = migrations.MIGRATIONS
    monkeypatch.setattr(migrations, "MIGRATIONS", latest[:1])
    with Store(path) as store:
        store.start_call("c1", bot="b", flow="f", transport="webrtc", started_at=_dt())
    monkeypatch.setattr(migrations, "MIGRATIONS", latest)
    with Store(path) as store:
        assert store.schema_version == 2
        assert store.get_call("c1")["caller"] is None
        store.end_call("c1", ended_at=_dt(), final_node="done", outcome=None, caller="+15551234567")
        assert store.get_call("c1")["caller"] == "+15551234567"
    assert [v for v, in _rows(path, "SELECT version FROM schema_migrations ORDER BY version")] == [1, 2]
    with Store(path) as store:  # and again: nothing re-applied
        assert store.schema_version == 2
    assert len(_rows(path, "SELECT version FROM schema_migrations")) == 2


def test_failed_migration_rolls_back_whole_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "f.db"
    Store(path).close()
    broken = "ALTER TABLE calls ADD COLUMN who TEXT;\nALTER TABLE no_such_table ADD COLUMN x TEXT;"
    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, (3, broken)])
    with pytest.raises(StoreError, match="schema migration 3 failed: no such table: no_such_table"):
        Store(path)
    assert [v for v, in _rows(path, "SELECT version FROM schema_migrations")] == [1, 2]
    assert ("who",) not in _rows(path, "SELECT name FROM pragma_table_info('calls')")


def test_database_newer_than_code_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "f.db"
    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, (3, "CREATE TABLE extra (x);")])
    Store(path).close()
    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:2])
    with pytest.raises(StoreError, match=r"database schema version 3 is newer than this code knows \(2\)"):
        Store(path)


def test_migration_versions_must_ascend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(migrations, "MIGRATIONS", [(2, "CREATE TABLE a (x);"), (1, "CREATE TABLE b (x);")])
    with pytest.raises(StoreError, match="unique, ascending"):
        Store(tmp_path / "f.db")


def test_memory_database(tmp_path: Path) -> None:
    with Store(":memory:") as store:
        assert store.schema_version == 2


def _dt():
    from datetime import datetime, timezone

    return datetime(2026, 11, 28, 10, 0, tzinfo=timezone.utc)

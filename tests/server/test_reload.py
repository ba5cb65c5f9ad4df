"""Hot reload: good edits reach the next call, bad edits are refused, calls keep their bot."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from app.errors import ConfigError
from app.server.reload import BotSource

GREETING = "Thanks for calling Shear Delight. Would you like to book, reschedule or cancel an appointment?"




def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    bump_mtime(path)


def bump_mtime(path: Path) -> None:
    # Edits in the same clock tick can share an mtime: move it forward explicitly.
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def greeting(source: BotSource) -> str:
    return source.current().flow.flow.nodes["greeting"].say


def test_unchanged_files_are_not_reparsed(bot_dir, monkeypatch):
    source = BotSource("bot.yaml")
    first = source.current()
    monkeypatch.setattr("app.server.reload.load_bot", lambda path: pytest.fail("re-parsed unchanged files"))
    assert source.current() is first
    assert source.generation == 1


def test_good_flow_edit_reaches_the_next_call(bot_dir):
    source = BotSource("bot.yaml")
    assert greeting(source) == GREETING
    edit(bot_dir / "flows/scheduling.yaml", "Thanks for calling Shear Delight.", "Hello from the new greeting.")
    assert greeting(source).startswith("Hello from the new greeting.")
    assert source.generation == 2
    assert source.last_error is None


def test_good_bot_edit_switching_flows(bot_dir):
    source = BotSource("bot.yaml")
    edit(bot_dir / "bot.yaml", "flow: flows/scheduling.yaml", "flow: flows/ordering.yaml")
    assert source.current().flow.file.endswith("ordering.yaml")


def test_bad_edit_is_refused_and_the_last_good_bot_kept(bot_dir):
    source = BotSource("bot.yaml")
    good = source.current()
    edit(bot_dir / "bot.yaml", "name: Shear Delight", "name: [Shear Delight")
    assert source.current() is good
    assert source.generation == 1
    assert source.last_error is not None
    assert re.match(r"bot\.yaml:\d+:\d+: ", source.last_error), source.last_error


def test_bad_flow_edit_is_located_in_the_flow(bot_dir):
    source = BotSource("bot.yaml")
    good = source.current()
    edit(bot_dir / "flows/scheduling.yaml", "initial_node: greeting", "initial_node: nowhere")
    assert source.current() is good
    assert re.search(r"flows/scheduling\.yaml:\d+:\d+: ", source.last_error or ""), source.last_error


def test_fixing_the_files_clears_the_error(bot_dir):
    source = BotSource("bot.yaml")
    edit(bot_dir / "bot.yaml", "name: Shear Delight", "name: [Shear Delight")
    source.current()
    edit(bot_dir / "bot.yaml", "name: [Shear Delight", "name: Shear Delight Too")
    assert source.current().config.name == "Shear Delight Too"
    assert source.last_error is None
    assert source.generation == 2


def test_a_call_in_progress_keeps_its_bot(bot_dir):
    source = BotSource("bot.yaml")
    call_a = source.current()  # what a running call holds
    edit(bot_dir / "flows/scheduling.yaml", "Thanks for calling Shear Delight.", "Welcome back.")
    call_b = source.current()
    assert call_a.flow.flow.nodes["greeting"].say == GREETING
    assert call_b.flow.flow.nodes["greeting"].say.startswith("Welcome back.")


def test_first_load_failure_raises(bot_dir):
    edit(bot_dir / "bot.yaml", "name: Shear Delight", "name: [Shear Delight")
    with pytest.raises(ConfigError) as e:
        BotSource("bot.yaml")
    assert e.value.diagnostics[0].format().startswith("bot.yaml:")

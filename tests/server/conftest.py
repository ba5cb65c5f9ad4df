"""Fixtures shared by the server tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.standins.twilio import ACCOUNT_SID, AUTH_TOKEN
from tests.conftest import ROOT

KEYS = ("ANTHROPIC_API_KEY", "DEEPGRAM_API_KEY", "CARTESIA_API_KEY")  # the offline brain and speech


@pytest.fixture
def bot_dir(tmp_path, monkeypatch) -> Path:
    """A copy of the repository's bot.yaml and flows, in a working directory of its own."""
    shutil.copy(ROOT / "bot.yaml", tmp_path / "bot.yaml")
    shutil.copytree(ROOT / "flows", tmp_path / "flows")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def twilio_bot(bot_dir: Path, monkeypatch) -> Path:
    """bot.yaml for Twilio tests: the offline stack, `silence` turns, calls stored in bot_dir, the
    Twilio credentials set (webhooks are signed and streams must be announced), the REST API at a
    stand-in whose base URL is set later (`point_at` in test_twilio.py)."""
    for key in KEYS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", ACCOUNT_SID)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    bot = bot_dir / "bot.yaml"
    text = bot.read_text(encoding="utf-8").replace("path: data/frontdesk.db", f"path: {bot_dir / 'calls.db'}")
    text += "\nturn:\n  detector: silence   # synthetic speech confuses smart-turn (see DESIGN.md)\n"
    bot.write_text(text, encoding="utf-8")
    return bot

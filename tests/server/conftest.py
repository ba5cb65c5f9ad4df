"""Fixtures shared by the server tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT


@pytest.fixture
def bot_dir(tmp_path, monkeypatch) -> Path:
    """A copy of the repository's bot.yaml and flows, in a working directory of its own."""
    shutil.copy(ROOT / "bot.yaml", tmp_path / "bot.yaml")
    shutil.copytree(ROOT / "flows", tmp_path / "flows")
    monkeypatch.chdir(tmp_path)
    return tmp_path

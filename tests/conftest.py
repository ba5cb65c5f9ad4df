"""Shared test helpers: files written under tmp_path, and the repository root."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def write(tmp_path, monkeypatch):
    """Write a dedented file under tmp_path and make tmp_path the working directory."""
    monkeypatch.chdir(tmp_path)

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return _write


PROVIDER_ENV = (
    "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "DEEPGRAM_API_KEY", "CARTESIA_API_KEY",
    "DAILY_API_KEY", "DAILY_API_URL", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN",
)  # fmt: skip


@pytest.fixture(autouse=True)
def no_provider_keys(monkeypatch):
    """Keys in the developer's environment never reach a test: no test talks to a real provider
    (tests that need one set its key to a loopback stand-in's)."""
    for name in PROVIDER_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def fresh_provider_breakers():
    """The process-wide provider breakers start closed in every test (a stand-in's failure in one
    test must not keep the next test's calls off a provider)."""
    from processors.breaker import PROVIDERS

    PROVIDERS.clear()
    yield
    PROVIDERS.clear()


@pytest.fixture(autouse=True)
def logs_on_the_real_stderr():
    """Each test ends with loguru writing to the process's own stderr. A test that runs a CLI's
    `main` leaves a handler on the stream pytest captured for that test, which pytest then closes:
    every later log line would print a 'Logging error' traceback instead."""
    yield
    from loguru import logger

    logger.remove()
    logger.add(sys.__stderr__, level="INFO")

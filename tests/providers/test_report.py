"""The start-up report of the provider chains: missing keys named by variable, never by value."""

from __future__ import annotations

from app.config.bot import BotConfig
from app.providers.report import chain_report

CONFIG = BotConfig.model_validate({
    "name": "x", "flow": "f.yaml",
    "brain": [{"provider": "anthropic"}, {"provider": "local"}],
    "stt": [{"provider": "deepgram"}],
    "tts": [{"provider": "cartesia"}, {"provider": "piper"}],
})  # fmt: skip


def test_missing_keys_are_named_and_the_chain_falls_through(monkeypatch):
    for name in ("ANTHROPIC_API_KEY", "DEEPGRAM_API_KEY", "CARTESIA_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert chain_report(CONFIG) == [
        "brain: anthropic (off: ANTHROPIC_API_KEY is not set) -> local",
        "stt: deepgram (off: DEEPGRAM_API_KEY is not set) -> whisper",
        "tts: cartesia (off: CARTESIA_API_KEY is not set) -> piper",
    ]


def test_keys_that_are_set_switch_providers_on_without_showing_them(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-secret-value")
    monkeypatch.setenv("DEEPGRAM_API_KEY", "dg-secret-value")
    monkeypatch.delenv("CARTESIA_API_KEY", raising=False)
    report = chain_report(CONFIG)
    assert report[:2] == ["brain: anthropic -> local", "stt: deepgram -> whisper"]
    assert not any("secret" in line for line in report)


def test_a_provider_that_is_off_is_warned_about_once_per_process_not_on_every_call(monkeypatch):
    from loguru import logger

    from app.providers import report
    from app.providers.speech import build_stt_chain

    monkeypatch.setattr(report, "_reported", set())
    lines: list[tuple[str, str]] = []
    sink = logger.add(lambda m: lines.append((m.record["level"].name, m.record["message"])), level="DEBUG")
    try:
        for _call in range(3):
            build_stt_chain(CONFIG)
    finally:
        logger.remove(sink)
    said = [(level, text) for level, text in lines if "skipped" in text or "ttfs_p99_latency" in text]
    assert said[0] == ("WARNING", "stt 'deepgram' skipped: DEEPGRAM_API_KEY is not set")
    assert [level for level, _ in said[1:]] == ["DEBUG", "DEBUG"]


def test_every_call_shares_a_cloud_providers_breaker(monkeypatch):
    """A provider down for one call is down for the next: the failovers of two calls built from
    the same bot.yaml hold one breaker per cloud provider (and one of their own for Whisper)."""
    from app.voice import stt_slot, tts_slot

    monkeypatch.setenv("DEEPGRAM_API_KEY", "dg-key")
    monkeypatch.setenv("CARTESIA_API_KEY", "ca-key")
    one, two = stt_slot(CONFIG, []), stt_slot(CONFIG, [])
    assert one.services[0].provider_key == "stt deepgram default endpoint"
    assert one.breaker(one.services[0]) is two.breaker(two.services[0])
    assert one.breaker(one.services[-1]) is not two.breaker(two.services[-1])  # embedded Whisper
    three, four = tts_slot(CONFIG), tts_slot(CONFIG)
    assert three.breaker(three.services[0]) is four.breaker(four.services[0])

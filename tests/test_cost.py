"""The cost of a call: usage from Pipecat's metrics frames, priced at bot.yaml's `prices:`, in the
call record's metrics."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from app.chat import run_chat
from app.config.bot import LLMPrice, MinutePrice, Prices
from app.config.load import load_bot
from app.cost import ProviderUsage, UsageMeter, price_call
from app.pipeline import CallAssembly
from app.simulate.caller import CallerTurn
from app.simulate.run import simulate
from app.standins.anthropic import API_KEY, AnthropicStandIn, local_brain_responder
from app.store import Store
from tests.conftest import ROOT

NOW = datetime(2026, 11, 23, 10)
ANTHROPIC = {"input_per_mtok": 3.0, "output_per_mtok": 15.0, "cache_read_per_mtok": 0.3, "cache_write_per_mtok": 3.75}


def bot_yaml(tmp_path, extra: str) -> object:
    text = (ROOT / "bot.yaml").read_text().replace("flow: flows/scheduling.yaml", f"flow: {ROOT / 'flows/scheduling.yaml'}")
    path = tmp_path / "bot.yaml"
    path.write_text(text + extra)
    return load_bot(path)


async def said(turns):
    for turn in turns:
        yield turn


async def test_a_claude_call_records_its_tokens_and_their_cost(tmp_path, monkeypatch):
    prices = "".join(f"\n    {k}: {v}" for k, v in ANTHROPIC.items())
    bot = bot_yaml(tmp_path, f"\nrouting: off\nprices:\n  anthropic:{prices}\n")
    holder: list[CallAssembly] = []
    async with AnthropicStandIn(local_brain_responder(lambda: holder[0].session, lambda: holder[0].context.get_messages())) as claude:
        monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)
        monkeypatch.setenv("ANTHROPIC_BASE_URL", claude.base_url)
        with Store(tmp_path / "calls.db") as store:
            result = await run_chat(bot, store, said(["I'd like to book an appointment", "a haircut"]), now=NOW, on_ready=holder.append)
            metrics = store.get_call(result.call_id)["metrics"]
    assert len(claude.script.requests) >= 3
    tokens = metrics["usage"]["anthropic"]
    assert tokens["input_tokens"] > 0 and tokens["output_tokens"] > 0
    assert tokens["cache_write_tokens"] > 0  # the stand-in simulates prompt caching (the prefix moves each turn: no reads)
    expected = sum(tokens.get(bucket, 0) * ANTHROPIC[f"{bucket.removesuffix('_tokens')}_per_mtok"] for bucket in (
        "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")) / 1e6  # fmt: skip
    assert metrics["cost_usd"] == pytest.approx(expected, abs=1e-6) and expected > 0
    assert metrics["cost_by_provider"]["anthropic"] == pytest.approx(expected, abs=1e-6)
    assert result.cost_usd == pytest.approx(expected)
    assert "unpriced" not in metrics


def test_a_voice_call_records_stt_seconds_and_tts_characters_at_no_cost(tmp_path):
    bot = bot_yaml(tmp_path, "\nturn:\n  detector: silence\n")

    async def run():
        with Store(tmp_path / "calls.db") as store:
            result = await simulate(bot, store, [CallerTurn(say="I want to book a haircut")], now=NOW)
            return store.get_call(result.chat.call_id)["metrics"]

    metrics = asyncio.run(run())
    assert metrics["usage"]["whisper"]["stt_seconds"] > 1.0
    assert metrics["usage"]["piper"]["tts_characters"] > 50
    assert metrics["cost_usd"] == 0 and "unpriced" not in metrics


def test_unpriced_providers_are_listed_not_counted_and_telephony_is_priced_by_the_minute():
    now = [100.0]
    meter = UsageMeter("twilio", clock=lambda: now[0])
    now[0] += 90
    usage = meter.finish() | {"anthropic": ProviderUsage(input_tokens=1000, output_tokens=100)}
    cost = price_call(usage, Prices(twilio=MinutePrice(per_minute=0.02)))
    assert usage["twilio"].minutes == 1.5
    assert cost.by_provider == {"twilio": pytest.approx(0.03)} and cost.unpriced == ("anthropic",)
    assert cost.as_metrics()["unpriced"] == ["anthropic"]
    assert "anthropic no price set: 1000 input_tokens, 100 output_tokens" in cost.summary()
    priced = price_call(usage, Prices(twilio=MinutePrice(per_minute=0.02), anthropic=LLMPrice(input_per_mtok=3, output_per_mtok=15)))
    assert priced.total == pytest.approx(0.03 + 0.003 + 0.0015)

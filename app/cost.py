"""What a call used and what that cost at bot.yaml's `prices:`.

Usage is read off Pipecat's usage metrics (`PipelineParams(enable_usage_metrics=True)`): the
`UsageMeter` adds up the `MetricsFrame`s the services push, per provider. It listens to each
service's own pushes (`watch`), not as a pipeline observer: Pipecat hands an observer every frame
of the call, every hop, through a queue and a task of its own (a tenth of a phone call's CPU).

    LLMUsageMetricsData  -> input / output / cache-read / cache-write tokens
    STTUsageMetricsData  -> seconds of audio sent to the STT
    TTSUsageMetricsData  -> characters spoken
    a paid transport     -> minutes of call (twilio, daily), from the meter's own clock

Anthropic reports input tokens net of the prompt cache, with cache reads and writes beside them,
so each bucket is priced on its own. A provider with usage but no price in bot.yaml is listed as
`unpriced` and left out of the total rather than guessed.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from pipecat.frames.frames import MetricsFrame
from pipecat.metrics.metrics import LLMUsageMetricsData, MetricsData, STTUsageMetricsData, TTSUsageMetricsData
from pipecat.processors.frame_processor import FrameProcessor

from app.config.bot import LLMPrice, MinutePrice, Prices, STTPrice, TTSPrice

# Class names (anywhere in a service's MRO) -> the provider names of bot.yaml.
_PROVIDERS = (("Anthropic", "anthropic"), ("Deepgram", "deepgram"), ("Whisper", "whisper"), ("Cartesia", "cartesia"), ("Piper", "piper"))
PAID_TRANSPORTS = ("twilio", "daily")


@dataclass
class ProviderUsage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    stt_seconds: float = 0.0
    tts_characters: int = 0
    minutes: float = 0.0

    def as_json(self) -> dict[str, int | float]:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items() if v}


def provider_name(source: object, data: MetricsData) -> str:
    """The bot.yaml name of the service that reported `data` (its class name, lowercased, if unknown)."""
    names = [cls.__name__ for cls in type(source).__mro__] + [data.processor]
    for marker, provider in _PROVIDERS:
        if any(marker in name for name in names):
            return provider
    return type(source).__name__.lower()


def _llm(usage: ProviderUsage, data: LLMUsageMetricsData) -> None:
    tokens = data.value
    usage.input_tokens += tokens.prompt_tokens
    usage.output_tokens += tokens.completion_tokens
    usage.cache_read_tokens += tokens.cache_read_input_tokens or 0
    usage.cache_write_tokens += tokens.cache_creation_input_tokens or 0


def _stt(usage: ProviderUsage, data: STTUsageMetricsData) -> None:
    usage.stt_seconds += data.value.audio_seconds


def _tts(usage: ProviderUsage, data: TTSUsageMetricsData) -> None:
    usage.tts_characters += data.value


_ADDERS: dict[type, Callable] = {LLMUsageMetricsData: _llm, STTUsageMetricsData: _stt, TTSUsageMetricsData: _tts}


class UsageMeter:
    """Adds up one call's usage, per provider: `watch` the services, `finish()` at the end."""

    def __init__(self, transport: str, clock: Callable[[], float] = time.monotonic):
        self.transport = transport
        self.usage: defaultdict[str, ProviderUsage] = defaultdict(ProviderUsage)
        self._clock = clock
        self._started = clock()

    def watch(self, services: list[FrameProcessor]) -> None:
        """Count the usage metrics each of `services` pushes (`Pipeline.processors_with_metrics()`)."""
        for service in services:
            service.add_event_handler("on_before_push_frame", self.pushed)

    def pushed(self, source: object, frame: object) -> None:
        """`source` pushed `frame` (a service's `on_before_push_frame`)."""
        if not isinstance(frame, MetricsFrame):
            return
        for item in frame.data:
            add = _ADDERS.get(type(item))
            if add is not None:
                add(self.usage[provider_name(source, item)], item)

    def finish(self) -> dict[str, ProviderUsage]:
        """The usage so far, with the call's minutes on a paid transport."""
        if self.transport in PAID_TRANSPORTS:
            self.usage[self.transport].minutes = (self._clock() - self._started) / 60
        return {name: usage for name, usage in self.usage.items() if usage.as_json()}


def _cost(price: object, usage: ProviderUsage) -> float:
    if isinstance(price, LLMPrice):
        return (
            usage.input_tokens * price.input_per_mtok + usage.output_tokens * price.output_per_mtok
            + usage.cache_read_tokens * price.cache_read_per_mtok + usage.cache_write_tokens * price.cache_write_per_mtok
        ) / 1e6  # fmt: skip
    if isinstance(price, STTPrice):
        return usage.stt_seconds / 60 * price.per_minute
    if isinstance(price, TTSPrice):
        return usage.tts_characters / 1000 * price.per_1k_characters
    if isinstance(price, MinutePrice):
        return usage.minutes * price.per_minute
    raise TypeError(f"no pricing for {type(price).__name__}")


@dataclass(frozen=True)
class CallCost:
    usage: dict[str, ProviderUsage]
    by_provider: dict[str, float] = field(default_factory=dict)
    unpriced: tuple[str, ...] = ()

    @property
    def total(self) -> float:
        return sum(self.by_provider.values())

    def as_metrics(self) -> dict:
        """What the call record's `metrics` JSON keeps."""
        body: dict = {
            "cost_usd": round(self.total, 6),
            "cost_by_provider": {name: round(cost, 6) for name, cost in self.by_provider.items()},
            "usage": {name: usage.as_json() for name, usage in self.usage.items()},
        }
        if self.unpriced:
            body["unpriced"] = list(self.unpriced)
        return body

    def summary(self) -> str:
        """One line for the log: `cost ~$0.0123 (anthropic $0.0121: 1200 input_tokens, ...; ...)`."""
        parts = []
        for name, usage in self.usage.items():
            cost = f"${self.by_provider[name]:.4f}" if name in self.by_provider else "no price set"
            amounts = ", ".join(f"{value} {unit}" for unit, value in usage.as_json().items())
            parts.append(f"{name} {cost}: {amounts}")
        return f"cost ~${self.total:.4f}" + (f" ({'; '.join(parts)})" if parts else " (no usage reported)")


def price_call(usage: dict[str, ProviderUsage], prices: Prices) -> CallCost:
    """The cost of `usage` at `prices`; providers without a price are listed, not counted."""
    by_provider: dict[str, float] = {}
    unpriced: list[str] = []
    for name, amounts in usage.items():
        price = getattr(prices, name) if name in Prices.model_fields else None
        if price is None:
            unpriced.append(name)
        else:
            by_provider[name] = _cost(price, amounts)
    return CallCost(usage, by_provider, tuple(unpriced))

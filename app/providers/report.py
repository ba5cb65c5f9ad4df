"""What each provider chain of bot.yaml will use here, said once at start-up.

A provider whose key is missing is reported by the variable's name (never its value), and the
chain falls through to the next provider; the embedded one ends every chain."""

from __future__ import annotations

import os

from loguru import logger

from app.config.bot import BotConfig, env_name

EMBEDDED = {"brain": "local", "stt": "whisper", "tts": "piper"}


def missing_key(provider) -> str | None:
    """`NAME is not set` for a provider whose `${NAME}` key is not in the environment, else None."""
    variable = env_name(getattr(provider, "api_key", None))
    return f"{variable} is not set" if variable and not os.environ.get(variable) else None


def tag(service, kind: str, provider) -> None:
    """Name the provider a service talks to (`provider_key`), so that every call's failover shares
    its circuit breaker (`processors.breaker.PROVIDERS`): down for one call, down for all."""
    service.provider_key = f"{kind} {provider.provider} {getattr(provider, 'base_url', None) or 'default endpoint'}"


_reported: set[tuple[str, str, str]] = set()


def skipped(kind: str, provider: str, reason: str) -> None:
    """Log that a provider of a chain is off: a warning the first time in this process (a server
    reports its chains at start-up too), then only at debug level, not on every call."""
    key = (kind, provider, reason)
    level = "DEBUG" if key in _reported else "WARNING"
    _reported.add(key)
    logger.log(level, f"{kind} '{provider}' skipped: {reason}")


def chain_report(config: BotConfig) -> list[str]:
    """One line per chain: `brain: anthropic (off: ANTHROPIC_API_KEY is not set) -> local`."""
    lines = []
    for kind, chain in (("brain", config.brain), ("stt", config.stt), ("tts", config.tts)):
        parts = []
        for provider in chain:
            reason = missing_key(provider)
            parts.append(f"{provider.provider} (off: {reason})" if reason else provider.provider)
        if chain[-1].provider != EMBEDDED[kind]:
            parts.append(EMBEDDED[kind])
        lines.append(f"{kind}: " + " -> ".join(parts))
    return lines

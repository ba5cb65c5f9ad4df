"""The brain chain: the first provider in bot.yaml's `brain:` list that can run here."""

from __future__ import annotations

import os

from loguru import logger
from pipecat.services.llm_service import LLMService

from app.brain.service import LocalBrainService
from app.config.bot import AnthropicBrain, BotConfig, env_name
from app.flows.session import CallSession


def unavailable_reason(provider) -> str | None:
    """Why a provider cannot be used now (a missing key, by variable name), or None."""
    if isinstance(provider, AnthropicBrain):
        variable = env_name(provider.api_key)
        if variable and not os.environ.get(variable):
            return f"{variable} is not set"
    return None


def build_brain(config: BotConfig, session: CallSession) -> LLMService:
    for provider in config.brain:
        reason = unavailable_reason(provider)
        if reason:
            logger.info(f"brain '{provider.provider}' skipped: {reason}")
            continue
        if isinstance(provider, AnthropicBrain):
            return _anthropic(provider, config)
        return LocalBrainService(session)
    logger.info("no brain in the chain is available; using the local brain")
    return LocalBrainService(session)


VOICE_RULES = (
    "You are speaking on a phone call: answer in plain spoken language, never markdown, lists or "
    "emoji, and in at most {n} short sentences."
)


def _anthropic(provider: AnthropicBrain, config: BotConfig) -> LLMService:
    from pipecat.services.anthropic.llm import AnthropicLLMService

    variable = env_name(provider.api_key)
    api_key = os.environ[variable] if variable else ""
    base_url = provider.base_url or os.environ.get("ANTHROPIC_BASE_URL")
    client = None
    if base_url:
        from anthropic import AsyncAnthropic

        client = AsyncAnthropic(api_key=api_key, base_url=base_url)
    return AnthropicLLMService(
        api_key=api_key,
        client=client,
        settings=AnthropicLLMService.Settings(
            model=provider.model,
            max_tokens=provider.max_tokens,
            system_instruction=f"{config.persona}\n\n{VOICE_RULES.format(n=config.voice.max_sentences)}",
        ),
    )

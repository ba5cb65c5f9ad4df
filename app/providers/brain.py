"""The brain chain: the first provider in bot.yaml's `brain:` list that can run here."""

from __future__ import annotations

import os
from collections.abc import Iterator

from pipecat.services.llm_service import LLMService

from app.brain.service import LocalBrainService
from app.config.bot import AnthropicBrain, BotConfig, BrainProvider, LocalBrain, env_name
from app.flows.session import CallSession
from app.providers.report import missing_key, skipped, tag


def build_llms(config: BotConfig, session: CallSession) -> list[LLMService]:
    """Every brain of the chain that can run here, in order, ending with the local brain.

    The local brain is always last: it is the turn router's fast path and the last resort of the
    failover, whether or not bot.yaml lists it."""
    llms: list[LLMService] = []
    for provider, reason in _chain(config):
        if reason:
            skipped("brain", provider.provider, reason)
        elif isinstance(provider, AnthropicBrain):
            llms.append(_anthropic(provider, config))
    llms.append(LocalBrainService(session))
    return llms


def lead_llm(config: BotConfig) -> AnthropicBrain | None:
    """The provider of the LLM `build_llms` puts first, if any (its `light_model` is the router's)."""
    return next((p for p, reason in _chain(config) if not reason and isinstance(p, AnthropicBrain)), None)


def _chain(config: BotConfig) -> Iterator[tuple[BrainProvider, str | None]]:
    """The providers ahead of the local brain, each with why it cannot run here (None: it can)."""
    for provider in config.brain:
        if isinstance(provider, LocalBrain):
            return  # nothing after the local brain is ever needed
        yield provider, missing_key(provider)


VOICE_RULES = (
    "You are speaking on a phone call: answer in plain spoken language, never markdown, lists or "
    "emoji, and in at most {n} short sentences."
)


def _anthropic(provider: AnthropicBrain, config: BotConfig) -> LLMService:
    from app.providers.claude import ClaudeLLMService

    variable = env_name(provider.api_key)
    base_url = provider.base_url or os.environ.get("ANTHROPIC_BASE_URL") or None
    service = ClaudeLLMService(
        api_key=os.environ[variable] if variable else "",
        base_url=base_url,
        voice_rules=VOICE_RULES.format(n=config.voice.max_sentences),  # kept when a node's role_message replaces the persona
        settings=ClaudeLLMService.Settings(
            model=provider.model,
            max_tokens=provider.max_tokens,
            enable_prompt_caching=True,  # the persona, rules and tools repeat on every turn
            system_instruction=config.persona,
        ),
    )
    tag(service, "brain", provider.model_copy(update={"base_url": base_url}))
    return service

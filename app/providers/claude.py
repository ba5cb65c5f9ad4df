"""Claude through Pipecat's AnthropicLLMService, on a client this call owns and closes."""

from __future__ import annotations

from anthropic import AsyncAnthropic
from pipecat.services.anthropic.llm import AnthropicLLMService


class ClaudeLLMService(AnthropicLLMService):
    """`AnthropicLLMService` that closes its HTTP client when the call ends.

    The client is made here with no SDK retries (a refused, failed or late request is the
    failover's to handle, at once) and the base URL of bot.yaml or `ANTHROPIC_BASE_URL`. Pipecat
    never closes a client it was given, so a request left hanging would keep its socket open."""

    def __init__(self, *, api_key: str, base_url: str | None = None, **kwargs):
        client = AsyncAnthropic(api_key=api_key, base_url=base_url, max_retries=0)
        super().__init__(api_key=api_key, client=client, **kwargs)
        self._own_client = client

    async def cleanup(self):
        await super().cleanup()
        await self._own_client.close()

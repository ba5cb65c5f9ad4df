"""ClaudeLLMService (Pipecat's AnthropicLLMService on a client of its own per call)."""

from __future__ import annotations

from app.providers.claude import ClaudeLLMService
from app.providers.tls import shared_tls_context
from app.standins.anthropic import API_KEY, AnthropicStandIn, Reply


def service(base_url: str) -> ClaudeLLMService:
    return ClaudeLLMService(api_key=API_KEY, base_url=base_url, settings=ClaudeLLMService.Settings(model="claude-sonnet-4-6"))


def test_calls_share_one_tls_context():
    # The SDK's own HTTP client would read the CA bundle again for each call (~55 ms of the event loop).
    def tls(s: ClaudeLLMService):
        return s._own_client._client._transport._pool._ssl_context  # noqa: SLF001

    one, two = service("http://127.0.0.1:9"), service("http://127.0.0.1:9")
    assert tls(one) is tls(two) is shared_tls_context()
    assert one._own_client._client is not two._own_client._client  # noqa: SLF001 - each call closes its own


async def test_the_client_on_the_shared_context_answers_and_closes_with_the_call():
    async with AnthropicStandIn(responder=lambda body: Reply(text="Hello there.")) as claude:
        s = service(claude.base_url)
        message = await s._own_client.messages.create(  # noqa: SLF001
            model="claude-sonnet-4-6", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
        )
        await s.cleanup()
    assert message.content[0].text == "Hello there." and claude.received[0].took_s is not None
    assert s._own_client._client.is_closed  # noqa: SLF001

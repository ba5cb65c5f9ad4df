"""ClaudeLLMService (Pipecat's AnthropicLLMService on a client of its own per call)."""

from __future__ import annotations

from pipecat.frames.frames import LLMContextFrame, LLMUpdateSettingsFrame
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.services.settings import LLMSettings
from pipecat.tests.utils import run_test

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


RULES = "You are speaking on a phone call: never markdown."


async def test_a_nodes_role_message_replaces_the_persona_and_keeps_the_voice_rules():
    """Pipecat Flows sends a node's `role_message` as the LLM's new system instruction: the voice
    rules stay in the system prompt Claude gets (once, however often the node is entered)."""
    def system_of(body: dict) -> str:
        system = body["system"]
        return system if isinstance(system, str) else " ".join(block["text"] for block in system)

    role = LLMUpdateSettingsFrame(delta=LLMSettings(system_instruction="You take pizza orders."))
    ask = LLMContextFrame(LLMContext(messages=[{"role": "user", "content": "a large pizza"}]))
    async with AnthropicStandIn(responder=lambda body: Reply(text="Sure.")) as claude:
        s = ClaudeLLMService(
            api_key=API_KEY, base_url=claude.base_url, voice_rules=RULES,
            settings=ClaudeLLMService.Settings(model="claude-sonnet-4-6", system_instruction="You are the salon's front desk."),
        )  # fmt: skip
        await run_test(s, frames_to_send=[ask, role, ask, role, ask])
    first, *after = [system_of(r.body) for r in claude.received]
    assert first == f"You are the salon's front desk.\n\n{RULES}"
    assert after == [f"You take pizza orders.\n\n{RULES}"] * 2

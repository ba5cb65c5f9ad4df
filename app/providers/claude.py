"""Claude through Pipecat's AnthropicLLMService, on a client this call owns and closes."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from anthropic import AsyncAnthropic, DefaultAsyncHttpxClient
from pipecat.frames.frames import (
    EagerEndOfTurnCancelFrame,
    Frame,
    FunctionCallFromLLM,
    InterruptionFrame,
    LLMContextFrame,
    UserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.anthropic.llm import AnthropicLLMService

from app.providers.tls import shared_tls_context
from processors.llm_failover import WITHDRAWN


class ClaudeLLMService(AnthropicLLMService):
    """`AnthropicLLMService` that closes its HTTP client when the call ends.

    The client is made here with no SDK retries (a refused, failed or late request is the
    failover's to handle, at once) and the base URL of bot.yaml or `ANTHROPIC_BASE_URL`, on the
    SDK's default HTTP client with the process's one TLS context (`app.providers.tls`: made per
    call, the SDK's own read the CA bundle again, ~55 ms of the event loop per call here). Pipecat
    never closes a client it was given, so a request left hanging would keep its socket open.

    Early starts (a speculative context, see `processors.early_llm`): Pipecat withdraws a
    speculative run that reaches a tool call, and the turn then starts over once confirmed, a
    whole round trip later; most turns of a flow are tool calls. Here the calls wait instead: they
    run when the caller's final words confirm the turn (the `UserStoppedSpeakingFrame` that
    releases the held reply) and never if it is withdrawn (its cancellation ends this run). A
    speculative context withdrawn while it still waited in this service's queue is dropped
    unanswered: Pipecat stops a speculative run only once it has begun.

    `voice_rules` (spoken language, no markdown, 1-3 sentences) are appended to the system prompt
    through Pipecat's own composition (`append_system_instruction`), so they stay when a flow node
    replaces the prompt: Pipecat Flows sends a node's `role_message` as the new system
    instruction, which would otherwise drop them with the persona.

    Pipecat's "ASYNC TOOLS" guidance is left out of the system prompt. Flows registers every node
    function with `cancel_on_interruption=False` (so a barge-in never cancels a transition half
    way), which Pipecat takes to mean tools whose results arrive on later turns, and it appended
    ~170 tokens telling Claude so to every request. A flow's functions settle within the turn
    (the handler, then the transition), so that text only told the model about results that
    never come late."""

    def __init__(self, *, api_key: str, base_url: str | None = None, voice_rules: str | None = None, **kwargs):
        http = DefaultAsyncHttpxClient(verify=shared_tls_context())
        client = AsyncAnthropic(api_key=api_key, base_url=base_url, max_retries=0, http_client=http)
        super().__init__(api_key=api_key, client=client, **kwargs)
        self._own_client = client
        if voice_rules:
            self.append_system_instruction(voice_rules)
        self._verdict: asyncio.Future[bool] | None = None  # set while tool calls wait for it

    def _has_async_tools(self) -> bool:
        return False  # see the class docstring: no tool result of a flow arrives on a later turn

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        if isinstance(frame, LLMContextFrame) and frame.speculation and frame.metadata.get(WITHDRAWN):
            return
        await super().process_frame(frame, direction)

    async def run_function_calls(self, function_calls: Sequence[FunctionCallFromLLM]):
        if function_calls and self._speculation_gate.is_speculating:
            self._verdict = asyncio.get_running_loop().create_future()
            try:
                confirmed = await self._verdict
            finally:
                self._verdict = None
            if not confirmed:
                return
        await super().run_function_calls(function_calls)

    async def push_frame(self, frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM):
        await super().push_frame(frame, direction)
        # The turn's verdict passes through here on its way past the speculation gate.
        verdict = self._verdict
        if verdict is not None and not verdict.done() and direction == FrameDirection.DOWNSTREAM:
            if isinstance(frame, UserStoppedSpeakingFrame):
                verdict.set_result(True)
            elif isinstance(frame, (EagerEndOfTurnCancelFrame, InterruptionFrame)):
                verdict.set_result(False)

    async def cleanup(self):
        await super().cleanup()
        await self._own_client.close()

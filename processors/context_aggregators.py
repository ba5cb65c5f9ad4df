"""The call's LLM context aggregators: Pipecat's pair, with the assistant half taking a function
call's frames at once (`processors.prompt_entry`).

A function call's result goes down from the LLM through the TTS and the output transport to the
assistant aggregator, which writes it into the context and sends the context up to run the LLM
again. Pipecat's aggregator handles it one or two turns of the event loop after it arrives; for
these frames it only records and routes, so it takes them in the pusher's task when nothing is
queued ahead of them. Everything else keeps to its queues.
"""

from __future__ import annotations

from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMAssistantAggregator,
    LLMAssistantAggregatorParams,
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)

from processors.prompt_entry import FUNCTION_CALL_FRAMES, PromptEntry


class PromptAssistantAggregator(PromptEntry, LLMAssistantAggregator):
    """Pipecat's assistant aggregator, taking a function call's frames at once when it is idle."""

    prompt_frame_types = FUNCTION_CALL_FRAMES
    prompt_system_frames = False


class CallAggregators(LLMContextAggregatorPair):
    """`LLMContextAggregatorPair` with `PromptAssistantAggregator` as its assistant half, wired to
    the user half as Pipecat wires its own."""

    def __init__(self, context: LLMContext, *, user_params: LLMUserAggregatorParams | None = None, assistant_params: LLMAssistantAggregatorParams | None = None):
        super().__init__(context, user_params=user_params, assistant_params=assistant_params)
        self._assistant = PromptAssistantAggregator(
            context,
            params=self._assistant._params,  # noqa: SLF001 (the params as Pipecat settled them)
            _paired_user_aggregator=self._user,
        )

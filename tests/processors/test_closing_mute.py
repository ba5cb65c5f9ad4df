"""The caller is muted during the closing words (processors/closing_mute.py), on Pipecat's real user
aggregator with the voice call's own turn settings (app/voice.py)."""

from __future__ import annotations

from pipecat.frames.frames import (
    InterruptionFrame,
    LLMContextFrame,
    TranscriptionFrame,
    UserMuteStartedFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from pipecat.tests.utils import SleepFrame, run_test

from app.config.load import load_bot
from app.voice import voice_user_params
from processors.closing_mute import ClosingWordsMute
from tests.conftest import ROOT


def caller_says(text: str) -> list:
    return [
        VADUserStartedSpeakingFrame(), SleepFrame(0.3),
        TranscriptionFrame(text, "caller", "2026-11-23T10:00:00"),
        VADUserStoppedSpeakingFrame(stop_secs=0.2), SleepFrame(1.0),
    ]  # fmt: skip


async def run_turn(closing: bool) -> tuple[list, list]:
    bot = load_bot(ROOT / "bot.yaml")
    pair = LLMContextAggregatorPair(LLMContext(), user_params=voice_user_params(bot.config, closing=lambda: closing))
    return await run_test(pair.user(), frames_to_send=[SleepFrame(0.05), *caller_says("Thank you, bye.")])


async def test_the_caller_can_barge_in_and_be_answered_before_the_call_ends():
    down, up = await run_turn(closing=False)
    assert any(isinstance(f, InterruptionFrame) for f in down + up)
    assert [f for f in down if isinstance(f, LLMContextFrame)], "the caller's turn was not answered"


async def test_at_a_node_that_ends_the_call_the_caller_neither_interrupts_nor_starts_a_turn():
    down, up = await run_turn(closing=True)
    assert not any(isinstance(f, InterruptionFrame) for f in down + up), "the closing words were cut"
    assert not any(isinstance(f, LLMContextFrame) for f in down), "a reply was asked for that can never be spoken"
    assert any(isinstance(f, UserMuteStartedFrame) for f in down)


async def test_the_mute_holds_once_the_flow_is_at_a_closing_node():
    at_closing = [False]
    mute = ClosingWordsMute(lambda: at_closing[0])
    assert not await mute.process_frame(SleepFrame(0))
    at_closing[0] = True
    assert await mute.process_frame(SleepFrame(0))
    at_closing[0] = False  # a closing node has no way out; nothing unmutes the caller
    assert await mute.process_frame(SleepFrame(0)) and mute.closed

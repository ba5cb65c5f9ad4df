"""EarlyLLMTurnStop on Pipecat's real user aggregator: the LLM starts on the interim transcript at
the VAD stop, and the final transcript confirms (no second run) or restarts it (withdrawn first);
the context only ever holds the final words."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from pipecat.frames.frames import (
    EagerEndOfTurnCancelFrame,
    InterimTranscriptionFrame,
    LLMContextFrame,
    TranscriptionFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair, LLMUserAggregatorParams
from pipecat.tests.utils import SleepFrame, run_test
from pipecat.turns.user_start import TranscriptionUserTurnStartStrategy, VADUserTurnStartStrategy
from pipecat.turns.user_turn_strategies import UserTurnStrategies
from pipecat.utils.asyncio.task_manager import TaskManager

from processors.early_llm import EarlyLLMTurnStop
from processors.flow_turn import FlowAwareTurnStop

HISTORY = [{"role": "assistant", "content": "What's the best phone number to reach you?"}]


def half_a_number(text: str) -> bool:
    digits = sum(c.isdigit() for c in text)
    return 0 < digits < 10


def aggregator(speculate, events: list[str]):
    """Pipecat's user aggregator ending turns on silence (held mid-number), early runs on."""
    early = EarlyLLMTurnStop(FlowAwareTurnStop(half_a_number, hold_s=0.3, user_speech_timeout=0.05), speculate=speculate, on_event=events.append)
    start = [VADUserTurnStartStrategy(), TranscriptionUserTurnStartStrategy()]
    context = LLMContext(messages=list(HISTORY))
    params = LLMUserAggregatorParams(user_turn_strategies=UserTurnStrategies(start=start, stop=[early]))
    return LLMContextAggregatorPair(context, user_params=params).user(), context


async def turn(interim: str, final: str, *, speculate=lambda text: not half_a_number(text)):
    """One caller turn: speech, an interim, the VAD stop, the final 0.3 s later. Returns the frames
    sent downstream, the context and the strategy's events."""
    events: list[str] = []
    user, context = aggregator(speculate, events)
    frames = [
        VADUserStartedSpeakingFrame(), SleepFrame(0.05), InterimTranscriptionFrame(interim, "caller", ""), SleepFrame(0.05),
        VADUserStoppedSpeakingFrame(stop_secs=0.2), SleepFrame(0.3), TranscriptionFrame(final, "caller", "", finalized=True),
        SleepFrame(0.5),
    ]  # fmt: skip
    down, _ = await run_test(user, frames_to_send=frames)
    return down, context, events


def runs(down) -> list[tuple[bool, str]]:
    """Each LLM run sent downstream: (speculative, the caller's words it answers)."""
    return [(f.speculation, f.context.get_messages()[-1]["content"]) for f in down if isinstance(f, LLMContextFrame)]


def kinds(down) -> list[str]:
    wanted = (LLMContextFrame, EagerEndOfTurnCancelFrame, UserStoppedSpeakingFrame)
    return [type(f).__name__ for f in down if isinstance(f, wanted)]


async def test_a_final_that_says_the_same_words_confirms_the_early_run():
    down, context, events = await turn("yes that's right", "Yes, that's right.")
    assert runs(down) == [(True, "yes that's right")]  # one run, started before the final
    assert kinds(down) == ["LLMContextFrame", "UserStoppedSpeakingFrame"]  # the stop releases it
    assert context.get_messages() == [*HISTORY, {"role": "user", "content": "Yes, that's right."}]
    assert events == ["started", "confirmed"]


async def test_a_final_that_says_otherwise_withdraws_the_early_run_and_runs_again():
    down, context, events = await turn("yes that's right", "No, that's wrong.")
    assert runs(down) == [(True, "yes that's right"), (False, "No, that's wrong.")]
    # Withdrawn ahead of the turn end, so the gate drops the early reply instead of releasing it.
    order = kinds(down)
    assert order.index("EagerEndOfTurnCancelFrame") < order.index("UserStoppedSpeakingFrame")
    assert context.get_messages() == [*HISTORY, {"role": "user", "content": "No, that's wrong."}]
    assert events == ["started", "restarted"]


async def test_no_early_run_while_the_flow_expects_more():
    down, context, events = await turn("555 222", "555 222 3333")
    assert runs(down) == [(False, "555 222 3333")] and events == []


async def test_no_early_run_when_the_turn_would_not_go_to_the_llm():
    down, context, events = await turn("yes", "yes", speculate=lambda text: False)
    assert runs(down) == [(False, "yes")] and events == []


async def test_the_caller_speaking_again_withdraws_the_early_run():
    events: list[str] = []
    user, context = aggregator(lambda text: True, events)
    pause = SleepFrame(0.02)  # VAD frames are system frames: they would overtake the interims
    frames = [
        VADUserStartedSpeakingFrame(), InterimTranscriptionFrame("I'd like", "caller", ""), pause, VADUserStoppedSpeakingFrame(stop_secs=0.2),
        SleepFrame(0.05), VADUserStartedSpeakingFrame(), InterimTranscriptionFrame("I'd like a haircut", "caller", ""), pause,
        VADUserStoppedSpeakingFrame(stop_secs=0.2), SleepFrame(0.1), TranscriptionFrame("I'd like a haircut.", "caller", "", finalized=True),
        SleepFrame(0.3),
    ]  # fmt: skip
    down, _ = await run_test(user, frames_to_send=frames)
    assert runs(down) == [(True, "I'd like"), (True, "I'd like a haircut")]
    assert kinds(down).count("EagerEndOfTurnCancelFrame") == 1
    assert events == ["started", "withdrawn", "started", "confirmed"]
    assert context.get_messages()[-1] == {"role": "user", "content": "I'd like a haircut."}


async def test_an_early_run_declined_downstream_leaves_the_turn_to_run_as_usual():
    # LLMFailover declines an early run (the turn would start on the local brain) by sending an
    # EagerEndOfTurnCancelFrame upstream: the strategy forgets it, and the turn ends as usual.
    early = EarlyLLMTurnStop(FlowAwareTurnStop(half_a_number, user_speech_timeout=0.05), speculate=lambda text: True)
    await early.setup(SimpleNamespace(task_manager=TaskManager(loop=asyncio.get_running_loop())))
    heard: list[tuple] = []

    @early.event_handler("on_user_turn_inference_triggered")
    async def inference(_strategy, speculation=None):
        heard.append(("inference", speculation and speculation.text))

    @early.event_handler("on_user_turn_stopped")
    async def stopped(_strategy, params):
        heard.append(("stopped", params.confirms_speculation))

    await early.handle_user_turn_started()
    for frame in [VADUserStartedSpeakingFrame(), InterimTranscriptionFrame("yes", "caller", ""), VADUserStoppedSpeakingFrame(stop_secs=0.2)]:
        await early.process_frame(frame)
    await early.process_frame(EagerEndOfTurnCancelFrame())
    await early.process_frame(TranscriptionFrame("yes", "caller", "", finalized=True))
    await asyncio.sleep(0.2)
    assert heard == [("inference", "yes"), ("inference", None), ("stopped", False)]
    await early.cleanup()

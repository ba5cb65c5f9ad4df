"""FlowAwareTurnStop: a turn that ends mid-value (half a phone number) is held; one that ends on a
whole value, or a hold that runs out, ends as Pipecat's silence strategy would."""

from __future__ import annotations

import asyncio
import re
from types import SimpleNamespace

from pipecat.frames.frames import STTMetadataFrame, TranscriptionFrame, VADUserStartedSpeakingFrame, VADUserStoppedSpeakingFrame
from pipecat.utils.asyncio.task_manager import TaskManager

from processors.flow_turn import FlowAwareTurnStop, STTFinalizedFrame

TIMEOUT_S = 0.1
HOLD_S = 0.4


def half_a_number(text: str) -> bool:
    """Digits said, but fewer than a phone number's ten (what `CallSession.expects_more` answers
    while the flow asks for a phone number)."""
    digits = len(re.sub(r"\D", "", text))
    return 0 < digits < 10


async def strategy() -> tuple[FlowAwareTurnStop, list[float]]:
    stop = FlowAwareTurnStop(half_a_number, hold_s=HOLD_S, user_speech_timeout=TIMEOUT_S)
    await stop.setup(SimpleNamespace(task_manager=TaskManager(loop=asyncio.get_running_loop())))
    loop = asyncio.get_running_loop()
    ended: list[float] = []

    @stop.event_handler("on_user_turn_stopped")
    async def on_stopped(_strategy, *_args):
        ended.append(loop.time())

    return stop, ended


async def say(stop: FlowAwareTurnStop, text: str) -> float:
    """One stretch of speech: VAD start, its transcript, VAD stop. Returns when it stopped."""
    await stop.process_frame(VADUserStartedSpeakingFrame())
    await stop.process_frame(TranscriptionFrame(text, "caller", "", finalized=True))
    await stop.process_frame(VADUserStoppedSpeakingFrame(stop_secs=0.2))
    return asyncio.get_running_loop().time()


async def test_a_whole_value_ends_the_turn_on_the_silence_timeout():
    stop, ended = await strategy()
    stopped = await say(stop, "555 123 4567")
    await asyncio.sleep(TIMEOUT_S + 0.1)
    assert len(ended) == 1 and ended[0] - stopped < TIMEOUT_S + 0.05
    assert stop.holds == 0
    await stop.cleanup()


async def test_a_pause_inside_a_number_is_held_and_the_rest_continues_the_turn():
    stop, ended = await strategy()
    await say(stop, "555")
    await asyncio.sleep(TIMEOUT_S + 0.1)  # past the silence timeout: a plain strategy ends here
    assert ended == [] and stop.holds == 1
    await say(stop, " 123")
    await asyncio.sleep(TIMEOUT_S + 0.1)
    assert ended == [] and stop.holds == 2  # each pause inside the number is held afresh
    stopped = await say(stop, " 4567")
    await asyncio.sleep(TIMEOUT_S + 0.1)
    assert len(ended) == 1 and ended[0] - stopped < TIMEOUT_S + 0.05  # one turn, ended when whole
    assert stop._text == "555 123 4567"
    await stop.cleanup()


async def test_a_hold_that_runs_out_ends_the_turn_with_what_was_said():
    stop, ended = await strategy()
    stopped = await say(stop, "555 12")
    await asyncio.sleep(TIMEOUT_S + HOLD_S + 0.15)
    assert len(ended) == 1 and TIMEOUT_S + HOLD_S - 0.02 < ended[0] - stopped < TIMEOUT_S + HOLD_S + 0.1
    await stop.cleanup()


async def test_an_stt_that_says_it_is_done_ends_the_turn_without_the_safety_net_wait():
    """Deepgram's final came before the VAD stop (its own endpointing); the answer to the
    finalize at the VAD stop has no new words. Without `STTFinalizedFrame` the turn would wait
    out the STT safety net (ttfs_p99 0.35 s less the 0.2 s VAD stop = 0.15 s)."""
    stop, ended = await strategy()
    await stop.process_frame(STTMetadataFrame(service_name="deepgram", ttfs_p99_latency=0.35))
    await stop.process_frame(VADUserStartedSpeakingFrame())
    await stop.process_frame(TranscriptionFrame("a haircut please", "caller", ""))  # not finalized
    await stop.process_frame(VADUserStoppedSpeakingFrame(stop_secs=0.2))
    stopped = asyncio.get_running_loop().time()
    await asyncio.sleep(0.02)
    await stop.process_frame(STTFinalizedFrame())
    await asyncio.sleep(0.3)
    assert len(ended) == 1 and ended[0] - stopped < TIMEOUT_S + 0.03  # not TIMEOUT_S + 0.15 - ...
    await stop.cleanup()


async def test_without_word_from_the_stt_the_safety_net_still_waits():
    stop, ended = await strategy()
    await stop.process_frame(STTMetadataFrame(service_name="deepgram", ttfs_p99_latency=0.45))
    await stop.process_frame(VADUserStartedSpeakingFrame())
    await stop.process_frame(TranscriptionFrame("a haircut please", "caller", ""))
    await stop.process_frame(VADUserStoppedSpeakingFrame(stop_secs=0.2))
    stopped = asyncio.get_running_loop().time()
    await asyncio.sleep(0.4)
    assert len(ended) == 1 and ended[0] - stopped >= 0.25 - 0.01
    await stop.cleanup()

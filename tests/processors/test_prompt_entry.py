"""PromptEntry: a frame that finds a routing processor idle is routed at once; a frame that finds
work ahead of it waits in Pipecat's queues, so none overtakes another. And the failover switchers
built on it pass the LLM's context frames on without handing them to their STTs and TTSs."""

from __future__ import annotations

from pipecat.frames.frames import (
    EndFrame,
    Frame,
    InterruptionFrame,
    LLMContextFrame,
    LLMMessagesAppendFrame,
    LLMRunFrame,
    StartFrame,
    TextFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.tests.utils import SleepFrame, run_test

from processors.prompt_entry import PromptEntry
from processors.stt_failover import STTFailover
from processors.tts_failover import TTSFailover
from tests.processors.fakes import FakeSTT, FakeTTS


class Router(PromptEntry, FrameProcessor):
    """Routes every frame on, noting the texts in the order it routed them."""

    def __init__(self):
        super().__init__()
        self.texts: list[str] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, TextFrame):
            self.texts.append(frame.text)
        await self.push_frame(frame, direction)


class Hold(FrameProcessor):
    """Ahead of the router: "pause" pauses the router's queue of data frames, "resume" resumes it."""

    def __init__(self, router: Router):
        super().__init__(enable_direct_mode=True)
        self.router = router

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, TextFrame) and frame.text == "pause":
            await self.router.pause_processing_frames()
        elif isinstance(frame, TextFrame) and frame.text == "resume":
            await self.router.resume_processing_frames()
        else:
            await self.push_frame(frame, direction)


def texts(frames: list[Frame]) -> list[str]:
    return [f.text for f in frames if isinstance(f, TextFrame)]


async def test_frames_that_find_the_processor_idle_are_routed_at_once_in_order():
    router = Router()
    frames = [TextFrame("a"), TextFrame("b"), InterruptionFrame(), TextFrame("c")]
    down, _ = await run_test(router, frames_to_send=frames)
    assert texts(down) == ["a", "b", "c"]
    # Every frame but the start and the end skipped the two queues (the interruption too).
    assert router.entered_at_once == 4


async def test_a_frame_behind_queued_work_waits_its_turn():
    router = Router()
    frames = [TextFrame("pause"), TextFrame("a"), TextFrame("b"), TextFrame("resume"), SleepFrame(0.05), TextFrame("c")]
    down, _ = await run_test(Pipeline([Hold(router), router]), frames_to_send=frames)
    assert texts(down) == ["a", "b", "c"]
    # "a" found the queue paused and "b" found "a" ahead of it: both went through the queues.
    assert router.texts == ["a", "b", "c"] and router.entered_at_once == 1


async def test_nothing_is_routed_at_once_before_the_start_or_after_the_end():
    router = Router()
    assert not router._idle_for(TextFrame("early"))  # noqa: SLF001
    await run_test(router, frames_to_send=[TextFrame("a")])
    assert router.entered_at_once == 1
    assert not router._idle_for(TextFrame("late"))  # noqa: SLF001 - the EndFrame has passed
    assert not router._idle_for(StartFrame()) and not router._idle_for(EndFrame())  # noqa: SLF001


def recorded(service: FrameProcessor) -> list[Frame]:
    """What `service` is handed, in order."""
    seen: list[Frame] = []
    process = service.process_frame

    async def recording(frame: Frame, direction: FrameDirection):
        seen.append(frame)
        await process(frame, direction)

    service.process_frame = recording  # type: ignore[method-assign]
    return seen


async def test_tts_failover_passes_the_context_back_up_to_the_llm_past_its_voices():
    primary, backup = FakeTTS("A"), FakeTTS("B")
    failover = TTSFailover([primary, backup], first_audio_s=0.25, stall_s=0.25)
    seen_a, seen_b = recorded(primary), recorded(backup)
    context = LLMContextFrame(LLMContext())
    _, up = await run_test(failover, frames_to_send=[context, SleepFrame(0.05)], frames_to_send_direction=FrameDirection.UPSTREAM)
    assert context in up
    assert not [f for f in seen_a + seen_b if isinstance(f, LLMContextFrame)]


async def test_stt_failover_passes_the_llms_frames_on_past_its_stts():
    primary, backup = FakeSTT("A"), FakeSTT("B")
    failover = STTFailover([primary, backup], final_s=0.25, stall_s=0.25)
    seen_a, seen_b = recorded(primary), recorded(backup)
    frames = [LLMMessagesAppendFrame(messages=[{"role": "system", "content": "Ask for the date."}]), LLMRunFrame()]
    down, _ = await run_test(failover, frames_to_send=frames)
    assert [type(f) for f in down if isinstance(f, (LLMMessagesAppendFrame, LLMRunFrame))] == [LLMMessagesAppendFrame, LLMRunFrame]
    assert not [f for f in seen_a + seen_b if isinstance(f, (LLMMessagesAppendFrame, LLMRunFrame))]

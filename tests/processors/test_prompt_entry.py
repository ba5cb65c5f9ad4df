"""PromptEntry: a frame that finds a routing processor idle is routed at once; a frame that finds
work ahead of it waits in Pipecat's queues, so none overtakes another. The failover switchers
built on it pass the LLM's context frames on without handing them to their STTs and TTSs. With
`prompt_frame_types`, only the frame types named enter at once (a TTS taking a function call's
frames: they still come out behind the audio of the words before them)."""

from __future__ import annotations

from pipecat.frames.frames import (
    EndFrame,
    Frame,
    FunctionCallInProgressFrame,
    FunctionCallResultFrame,
    InterruptionFrame,
    LLMContextFrame,
    LLMMessagesAppendFrame,
    LLMRunFrame,
    StartFrame,
    TextFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.tests.utils import SleepFrame, run_test

from processors.prompt_entry import FUNCTION_CALL_FRAMES, PromptEntry
from processors.stt_failover import STTFailover
from processors.tts_failover import TTSFailover
from tests.processors.fakes import FakeSTT, FakeTTS, Step


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


class PromptFakeTTS(PromptEntry, FakeTTS):
    """A TTS service that takes a function call's frames at once."""

    prompt_frame_types = FUNCTION_CALL_FRAMES
    prompt_system_frames = False


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


class TextsOnly(Router):
    prompt_frame_types = (TextFrame,)


async def test_only_the_frame_types_named_enter_at_once():
    router = TextsOnly()
    frames = [TextFrame("a"), LLMRunFrame(), SleepFrame(0.02), TextFrame("b"), InterruptionFrame()]
    down, _ = await run_test(router, frames_to_send=frames)
    assert texts(down) == ["a", "b"] and [type(f) for f in down if isinstance(f, LLMRunFrame)] == [LLMRunFrame]
    assert router.entered_at_once == 2  # the two texts; the run frame and the interruption kept to the queues


def _call(tool_call_id: str = "t1") -> tuple[FunctionCallInProgressFrame, FunctionCallResultFrame]:
    arguments = {"date": "2026-12-03"}
    return (
        FunctionCallInProgressFrame(function_name="set_date", tool_call_id=tool_call_id, arguments=arguments),
        FunctionCallResultFrame(function_name="set_date", tool_call_id=tool_call_id, arguments=arguments, result={"ok": True}),
    )


async def test_a_tts_passes_a_function_calls_frames_on_at_once_and_keeps_text_to_its_queues():
    tts = PromptFakeTTS("A")
    in_progress, result = _call()
    down, _ = await run_test(tts, frames_to_send=[TTSSpeakFrame("Let me check."), SleepFrame(0.1), in_progress, SleepFrame(0.02), result, SleepFrame(0.1)])
    assert tts.entered_at_once == 2
    order = [type(f).__name__ for f in down if isinstance(f, (TTSAudioRawFrame, FunctionCallInProgressFrame, FunctionCallResultFrame))]
    # The frames still come out behind the audio of the words before them.
    assert order[-2:] == ["FunctionCallInProgressFrame", "FunctionCallResultFrame"] and "TTSAudioRawFrame" in order


async def test_a_function_calls_frames_sent_while_the_words_before_them_play_come_out_after_their_audio():
    tts = PromptFakeTTS("A", default=Step(chunks=("a", "b", "c"), gap=0.03))
    in_progress, result = _call()
    down, _ = await run_test(tts, frames_to_send=[TTSSpeakFrame("Let me check."), SleepFrame(0.01), in_progress, result, SleepFrame(0.3)])
    order = [type(f).__name__ for f in down if isinstance(f, (TTSAudioRawFrame, FunctionCallInProgressFrame, FunctionCallResultFrame))]
    assert order == ["TTSAudioRawFrame"] * 3 + ["FunctionCallInProgressFrame", "FunctionCallResultFrame"]

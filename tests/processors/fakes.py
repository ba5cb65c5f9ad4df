"""Fake LLM and TTS services driven by a scripted timeline, one step per request.

A step says what the service does with the next request: answer (after a delay, chunk by chunk),
fail with an HTTP status (an ErrorFrame, as Anthropic and Cartesia push them), hang before the
first byte, or stall after some chunks. Requests past the end of the script get `default`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass, field

from pipecat.frames.frames import (
    Frame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    TTSAudioRawFrame,
)
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.llm_service import LLMService
from pipecat.services.settings import LLMSettings, TTSSettings
from pipecat.services.tts_service import TTSService

FOREVER = 3600.0


class FakeStatusError(Exception):
    """Shaped like an SDK's API status error: Pipecat reads `status_code` to classify it."""

    def __init__(self, status_code: int):
        super().__init__(f"Error code: {status_code}")
        self.status_code = status_code


@dataclass
class Step:
    """One request's fate. `chunks` are LLM text chunks or TTS audio chunks."""

    chunks: Sequence[str] = ()
    first_delay: float = 0.0  # before the first chunk (or the error)
    gap: float = 0.0  # between chunks
    status: int | None = None  # push an ErrorFrame with this HTTP status instead of answering
    hang: bool = False  # never produce a first byte
    stall_after: int | None = None  # go silent after this many chunks
    started_at: list[float] = field(default_factory=list)  # loop times the requests began


def answer(*chunks: str, first_delay: float = 0.0, gap: float = 0.0) -> Step:
    return Step(chunks=chunks, first_delay=first_delay, gap=gap)


def error(status: int, first_delay: float = 0.0) -> Step:
    return Step(status=status, first_delay=first_delay)


def hang() -> Step:
    return Step(hang=True)


def stall(*chunks: str, after: int, gap: float = 0.0) -> Step:
    return Step(chunks=chunks, stall_after=after, gap=gap)


class _Script:
    def __init__(self, steps: Sequence[Step], default: Step):
        self.steps = list(steps)
        self.default = default
        self.requests = 0
        self.begun: list[float] = []  # loop time of each request
        self.faults: list[float] = []  # loop time each scripted fault began
        self.on_request: Callable[[int], None] | None = None  # e.g. to move a test clock

    def next(self) -> Step:
        self.requests += 1
        self.begun.append(asyncio.get_running_loop().time())
        if self.on_request:
            self.on_request(self.requests)
        return self.steps.pop(0) if self.steps else self.default

    async def play(self, step: Step, emit, fail) -> None:
        loop = asyncio.get_running_loop()
        if step.hang:
            self.faults.append(loop.time())
            await asyncio.sleep(FOREVER)
        await asyncio.sleep(step.first_delay)
        if step.status is not None:
            self.faults.append(loop.time())
            await fail(step.status)
            return
        for i, chunk in enumerate(step.chunks):
            if step.stall_after is not None and i == step.stall_after:
                self.faults.append(loop.time())
                await asyncio.sleep(FOREVER)
            if i:
                await asyncio.sleep(step.gap)
            await emit(chunk)


class FakeLLM(LLMService):
    """Answers each LLMContextFrame as scripted, framed like AnthropicLLMService (end frame in `finally`)."""

    def __init__(self, name: str, steps: Sequence[Step] = (), default: Step | None = None):
        settings = LLMSettings(
            model=name, system_instruction=None, temperature=None, max_tokens=None, top_p=None, top_k=None,
            frequency_penalty=None, presence_penalty=None, seed=None, filter_incomplete_user_turns=False,
            user_turn_completion_config=None,
        )  # fmt: skip
        super().__init__(settings=settings, name=name)
        self.script = _Script(steps, default or answer(f"{name} says hi."))

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if not isinstance(frame, LLMContextFrame):
            await self.push_frame(frame, direction)
            return
        step = self.script.next()
        try:
            await self.push_frame(LLMFullResponseStartFrame())
            await self.script.play(step, self._push_llm_text, self._fail)
        finally:
            await self.push_frame(LLMFullResponseEndFrame())

    async def _fail(self, status: int) -> None:
        await self.push_error(f"Unknown error occurred: Error code: {status}", exception=FakeStatusError(status))


class FakeTTS(TTSService):
    """Speaks each sentence as scripted: audio chunks tagged with the service's name."""

    def __init__(self, name: str, steps: Sequence[Step] = (), default: Step | None = None, sample_rate: int = 16000):
        super().__init__(
            name=name, push_start_frame=True, push_stop_frames=True, sample_rate=sample_rate,
            settings=TTSSettings(model=name, voice=name, language=None),
        )  # fmt: skip
        self.script = _Script(steps, default or Step(chunks=("a", "b"), gap=0.01))
        self.spoken: list[str] = []  # the text of every request, in order

    def can_generate_metrics(self) -> bool:
        return False

    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame | None, None]:
        self.spoken.append(text)
        step = self.script.next()
        queue: asyncio.Queue[Frame | None] = asyncio.Queue()

        async def emit(_: str) -> None:
            audio = self.name.encode()[:1] * 320
            await queue.put(TTSAudioRawFrame(audio, self.sample_rate, 1, context_id=context_id))

        async def fail(status: int) -> None:
            await self.push_error(f"Error: {status}", exception=FakeStatusError(status))

        async def play() -> None:
            try:
                await self.script.play(step, emit, fail)
            finally:
                await queue.put(None)

        task = self.create_task(play())
        try:
            while (item := await queue.get()) is not None:
                yield item
        finally:
            await self.cancel_task(task)

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


# -- STT ---------------------------------------------------------------------------------------
# Imports for the STT fakes below (appended to this module, so they sit here).
from pipecat.frames.frames import (  # noqa: E402
    InputAudioRawFrame,
    InterimTranscriptionFrame,
    SystemFrame,
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameProcessor  # noqa: E402
from pipecat.services.settings import STTSettings  # noqa: E402
from pipecat.services.stt_service import SegmentedSTTService, STTService  # noqa: E402
from pipecat.utils.time import time_now_iso8601  # noqa: E402

STT_RATE = 16000
FRAME_BYTES = 640  # 20 ms of 16 kHz mono 16-bit PCM


def said(*words: str) -> list[InputAudioRawFrame]:
    """The caller's audio, one 20 ms frame per word, carrying the word: fake STTs read it back."""
    return [InputAudioRawFrame(w.encode().ljust(FRAME_BYTES, b"\0"), STT_RATE, 1) for w in words]


def quiet(n: int) -> list[InputAudioRawFrame]:
    """`n` frames (20 ms each) of silence."""
    return [InputAudioRawFrame(bytes(FRAME_BYTES), STT_RATE, 1) for _ in range(n)]


def words_in(pcm: bytes) -> list[str]:
    """The words `said()` put in this audio, in order."""
    chunks = (pcm[i : i + FRAME_BYTES].rstrip(b"\0") for i in range(0, len(pcm), FRAME_BYTES))
    return [c.decode() for c in chunks if c]


@dataclass
class VADMark(SystemFrame):
    """Where the caller's speech starts or stops; `AggregatorVAD` turns it into a VAD frame."""

    speaking: bool = True
    start_secs: float = 0.0


class AggregatorVAD(FrameProcessor):
    """Stands after the STT where 1.14's user aggregator runs the VAD: VAD frames go UPSTREAM.

    A `VADMark` travels down through the STT behind the audio before it, as the audio would reach
    the aggregator's VAD, and turns into a `VADUserStarted/StoppedSpeakingFrame` sent back up.
    """

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, VADMark):
            vad = VADUserStartedSpeakingFrame(start_secs=frame.start_secs) if frame.speaking else VADUserStoppedSpeakingFrame()
            await self.push_frame(vad, FrameDirection.UPSTREAM)
        else:
            await self.push_frame(frame, direction)


class FakeSTT(STTService):
    """A streaming STT on a script, one step per utterance (from its first word or VAD start to its final).

    It hears the words `said()` put in the audio, sends an interim per word as it arrives, and the
    final (every word since its last final) `first_delay` after the end of speech (a
    `VADUserStoppedSpeakingFrame` from either direction), as a streaming STT finalises. `error(s)`
    pushes an ErrorFrame then instead; with `stall_after=n` as well, mid-speech after n interims
    (a dropped connection). `hang()` hears but never answers; `stall(after=n)` sends n interims,
    then nothing. `faults` gets the loop time each fault began (for a hang: the end of speech).
    """

    def __init__(self, name: str, steps: Sequence[Step] = (), default: Step | None = None):
        super().__init__(name=name, sample_rate=STT_RATE, ttfs_p99_latency=0.3, settings=STTSettings(model=name, language=None))
        self.script = _Script(steps, default or answer())
        self.audio_bytes = 0  # all the audio it was given
        self.finals: list[float] = []  # loop time of each final it sent
        self.ends: list[float] = []  # loop time of each end of speech it saw
        self._step: Step | None = None
        self._words: list[str] = []
        self._interims = 0
        self._dead = False
        self._finish_task: asyncio.Task | None = None

    def can_generate_metrics(self) -> bool:
        return False

    def _begin(self) -> Step:
        if self._step is None:
            self._step = self.script.next()
        return self._step

    async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame | None, None]:
        self.audio_bytes += len(audio)
        heard = words_in(audio)
        if heard:
            step = self._begin()
            self._words += heard
            if not self._dead and not step.hang:
                if step.stall_after is not None and self._interims >= step.stall_after:
                    self._dead = True
                    self.script.faults.append(asyncio.get_running_loop().time())
                    if step.status is not None:
                        await self._fail(step.status)
                else:
                    self._interims += 1
                    yield InterimTranscriptionFrame(" ".join(self._words), "", time_now_iso8601())
        yield None

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, VADUserStartedSpeakingFrame):
            self._begin()
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            self.ends.append(asyncio.get_running_loop().time())
            if self._step is not None and self._finish_task is None:
                self._finish_task = self.create_task(self._finish(self._step))

    async def _finish(self, step: Step) -> None:
        loop = asyncio.get_running_loop()
        try:
            if step.hang and not self._dead:
                self.script.faults.append(loop.time())
            if step.hang or self._dead:
                return
            await asyncio.sleep(step.first_delay)
            if step.status is not None:
                self.script.faults.append(loop.time())
                await self._fail(step.status)
                return
            text = " ".join(self._words)
            self._words = []
            self.finals.append(loop.time())
            await self.push_frame(TranscriptionFrame(text, "", time_now_iso8601()))
        finally:
            self._step, self._words, self._interims, self._dead, self._finish_task = None, [], 0, False, None

    async def _fail(self, status: int) -> None:
        await self.push_error(f"STT error: {status}", exception=FakeStatusError(status))

    async def cleanup(self):
        if self._finish_task is not None:
            await self.cancel_task(self._finish_task)
        await super().cleanup()


class FakeSegmentedSTT(SegmentedSTTService):
    """A Whisper-like segmented STT: transcribes the audio between VAD start and stop, all at once."""

    def __init__(self, name: str):
        super().__init__(name=name, sample_rate=STT_RATE, ttfs_p99_latency=0.3, settings=STTSettings(model=name, language=None))
        self.segments: list[list[str]] = []  # the words of each segment it transcribed

    def can_generate_metrics(self) -> bool:
        return False

    @property
    def wants_wav_segments(self) -> bool:
        return False

    async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame | None, None]:
        words = words_in(audio)
        self.segments.append(words)
        if words:  # like Whisper: nothing at all for a segment without words
            yield TranscriptionFrame(" ".join(words), "", time_now_iso8601())

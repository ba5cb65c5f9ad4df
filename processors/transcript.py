"""Bot transcript: collects what the bot says, one entry per response, and tells when it settles.

Sits after the brain. Passes every frame through unchanged; it only watches LLM responses,
function calls (a turn is not over while one runs), spoken actions (`TTSSpeakFrame`) and the
end of the call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    FunctionCallInProgressFrame,
    FunctionCallResultFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TranscriptionFrame,
    TTSSpeakFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.processors.frameworks.rtvi.frames import RTVISendTextFrame


class BotTranscript(FrameProcessor):
    def __init__(self, on_line: Callable[[str], None] | None = None, **kwargs):
        super().__init__(**{"enable_direct_mode": True, **kwargs})  # a look at each frame: no queue, no task of its own
        self._on_line = on_line
        self._parts: list[str] = []
        self._open = 0
        self._calls: set[str] = set()
        self._responses = 0
        self._last_activity = time.monotonic()
        self._changed = asyncio.Event()
        self.ended = False
        self.lines: list[str] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if direction is FrameDirection.DOWNSTREAM:
            self._observe(frame)
        await self.push_frame(frame, direction)

    def _observe(self, frame: Frame) -> None:
        if isinstance(frame, LLMFullResponseStartFrame):
            self._open += 1
        elif isinstance(frame, LLMTextFrame):
            self._parts.append(frame.text)
        elif isinstance(frame, LLMFullResponseEndFrame):
            self._open = max(0, self._open - 1)
            self._responses += 1
            self._emit("".join(self._parts))
            self._parts.clear()
        elif isinstance(frame, TTSSpeakFrame):
            self._emit(frame.text)
        elif isinstance(frame, FunctionCallInProgressFrame):
            self._calls.add(frame.tool_call_id)
        elif isinstance(frame, FunctionCallResultFrame):
            self._calls.discard(frame.tool_call_id)
        elif isinstance(frame, (EndFrame, CancelFrame)):
            self.ended = True
        else:
            return
        self._last_activity = time.monotonic()
        self._changed.set()

    def _emit(self, text: str) -> None:
        text = text.strip()
        if not text:
            return
        self.lines.append(text)
        if self._on_line:
            self._on_line(text)

    @property
    def responses(self) -> int:
        return self._responses

    async def settled(self, *, after: int, settle_s: float = 0.12, timeout_s: float = 60.0) -> None:
        """Wait until a response numbered above `after` has ended and nothing moved for `settle_s`."""
        deadline = time.monotonic() + timeout_s
        while not self.ended and time.monotonic() < deadline:
            quiet = time.monotonic() - self._last_activity
            if self._responses > after and not self._open and not self._calls and quiet >= settle_s:
                return
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), timeout=max(0.01, settle_s - quiet) if self._responses > after else 0.5)
            except TimeoutError:
                pass


class CallerTranscript(FrameProcessor):
    """Records what the caller says: each final transcription, and text typed in an RTVI client
    (`send-text`, as Pipecat's eval harness and chat widgets send it). Passes every frame through."""

    def __init__(self, on_line: Callable[[str], None] | None = None, **kwargs):
        super().__init__(**{"enable_direct_mode": True, **kwargs})  # a look at each frame: no queue, no task of its own
        self._on_line = on_line

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, (TranscriptionFrame, RTVISendTextFrame)) and frame.text.strip() and self._on_line:
            self._on_line(frame.text.strip())
        await self.push_frame(frame, direction)

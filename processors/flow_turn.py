"""End of turn on silence, held open while the caller is in the middle of a value.

A thin layer on Pipecat's `SpeechTimeoutUserTurnStopStrategy` (a user-turn stop strategy, not a
frame processor). Callers pause inside phone numbers ("555 ... 222 ... 3333"): a plain silence
timeout answers the fragment. The flow knows what it is waiting for, so when the words so far are
an incomplete value for the slot being asked (`incomplete(text)` is true), the end of the turn is
held up to `hold_s` longer; speech resuming within it continues the same turn.

It also takes `STTFinalizedFrame`: an STT that has answered the VAD stop's finalize request with
nothing new (its final came earlier, on its own endpointing) says so, and the strategy stops
waiting for more text (Pipecat's only signal is a finalized transcript, which never comes then).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from dataclasses import dataclass

from pipecat.frames.frames import DataFrame, Frame
from pipecat.turns.types import ProcessFrameResult
from pipecat.turns.user_stop import SpeechTimeoutUserTurnStopStrategy


@dataclass
class STTFinalizedFrame(DataFrame):
    """The STT has sent every transcript of the speech so far (pushed after its last final)."""


class FlowAwareTurnStop(SpeechTimeoutUserTurnStopStrategy):
    def __init__(self, incomplete: Callable[[str], bool], *, hold_s: float = 1.2, **kwargs):
        super().__init__(**kwargs)
        self._incomplete = incomplete
        self._hold_s = hold_s
        self._hold_task: asyncio.Task | None = None
        self._held = False
        self.holds = 0  # how many turn ends were held (for logs and tests)

    async def process_frame(self, frame: Frame) -> ProcessFrameResult:
        if isinstance(frame, STTFinalizedFrame):
            await self._stt_finalized()
            return ProcessFrameResult.CONTINUE
        return await super().process_frame(frame)

    async def _stt_finalized(self) -> None:
        if self._vad_user_speaking or not self._vad_stopped:
            return  # late: the caller speaks again, and the STT owes the new words
        self._transcript_finalized = True
        if self._stt_wait_done:
            return
        self._stt_wait_done = True
        if self._stt_timeout_task:
            await self.task_manager.cancel_task(self._stt_timeout_task)
            self._stt_timeout_task = None
        await self._maybe_trigger_user_turn_stopped()

    async def _maybe_trigger_user_turn_stopped(self):
        ready = not self._vad_user_speaking and self._text and self._user_speech_wait_done and self._stt_wait_done
        if ready and not self._held and self._incomplete(self._text):
            if self._hold_task is None:
                self.holds += 1
                self._hold_task = self.task_manager.create_task(self._release_after_hold(), f"{self}::hold")
            return
        await super()._maybe_trigger_user_turn_stopped()

    async def _release_after_hold(self) -> None:
        try:
            await asyncio.sleep(self._hold_s)
        except asyncio.CancelledError:
            return
        self._hold_task = None
        self._held = True
        await super()._maybe_trigger_user_turn_stopped()

    async def _cancel_hold(self) -> None:
        if self._hold_task is not None:
            await self.task_manager.cancel_task(self._hold_task)
            self._hold_task = None

    async def _discard_pending_end_of_turn(self):
        await self._cancel_hold()
        await super()._discard_pending_end_of_turn()

    async def _reset(self, *, clear_vad_user_speaking: bool):
        await self._cancel_hold()
        self._held = False
        await super()._reset(clear_vad_user_speaking=clear_vad_user_speaking)

    async def cleanup(self):
        await self._cancel_hold()
        await super().cleanup()

"""A frame that finds a routing processor idle is routed at once, not after two trips through the loop.

Pipecat gives every processor that is not in direct mode an input queue and task (system frames
are processed there) and a process queue and task (every other frame). A frame pushed to such a
processor is handled one event-loop turn later, and a data or control frame a second turn after
that, whatever the processor does with it. Under load every turn waits for whatever else the loop
has ready (at 50 phone calls on two workers: 25 calls' audio), and a caller's turn crosses the
failover switchers many times: the function call's result down through `TTSFailover`, the context
back up to the LLM, the reply down again.

Pipecat's `ParallelPipeline`, on which the failover switchers are built (`ServiceSwitcher`), stays
out of direct mode only to pause its queues while a `StartFrame`, `EndFrame` or `CancelFrame`
crosses its branches; its `process_frame` otherwise just hands the frame to each branch (whose
services have queues of their own). `PromptEntry` keeps the queues for exactly the cases where
order needs them, and otherwise processes the frame in the pusher's task, as direct mode does:

- the processor has processed its `StartFrame` and no `EndFrame` or `CancelFrame` has arrived;
- nothing is paused and no lifecycle frame is being synchronized across the branches;
- no frame is being processed at once already, nothing is waiting in the input queue or being
  processed from it; and, for a frame that is not a system frame, nothing is waiting in the
  process queue or being processed from it.

So a frame never overtakes one that arrived before it, which is all the queues guarantee. Only for
processors whose `process_frame` routes and returns (it must not wait on the call's other frames):
the failover switchers (`processors.failover.FailoverMixin`) and the Twilio output transport, whose
handling of a data frame only queues it for its media sender (`prompt_system_frames = False`
there: its interruption waits for its tasks to be cancelled, and keeps to the input queue).
Written against pipecat-ai 1.14 (pinned): where Pipecat's `FrameProcessor` lacks the internals this
reads, every frame takes Pipecat's way.
"""

from __future__ import annotations

from pipecat.frames.frames import CancelFrame, EndFrame, Frame, StartFrame, SystemFrame
from pipecat.processors.frame_processor import FrameCallback, FrameDirection, FrameProcessor

from processors.frame_path import input_queue_clear

LIFECYCLE = (StartFrame, EndFrame, CancelFrame)


class PromptEntry:
    """Mixin in front of a `FrameProcessor` subclass that only routes frames; see the module docstring."""

    # False for a processor whose handling of a system frame can wait (an output transport's
    # interruption cancels and restarts its tasks): those keep to the input queue.
    prompt_system_frames = True
    _prompt_live = False
    _prompt_depth = 0  # frames being processed at once right now
    entered_at_once = 0  # frames processed at once (for tests and benchmarks)

    async def queue_frame(
        self, frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM, callback: FrameCallback | None = None
    ) -> None:
        if self._idle_for(frame):
            self.entered_at_once += 1
            self._prompt_depth += 1
            try:
                await self._FrameProcessor__process_frame(frame, direction, callback)  # type: ignore[attr-defined]
            finally:
                self._prompt_depth -= 1
            return
        await super().queue_frame(frame, direction, callback)  # type: ignore[misc]

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, (EndFrame, CancelFrame)):
            self._prompt_live = False
        await super().process_frame(frame, direction)  # type: ignore[misc]
        if isinstance(frame, StartFrame):
            self._prompt_live = True

    def _idle_for(self, frame: Frame) -> bool:
        if not self._prompt_live or self._prompt_depth or isinstance(frame, LIFECYCLE) or getattr(self, "_synchronizing", False):
            return False
        me: FrameProcessor = self  # type: ignore[assignment]
        try:
            if not input_queue_clear(me):
                return False
            if isinstance(frame, SystemFrame):
                return self.prompt_system_frames
            return (
                not me._FrameProcessor__should_block_frames  # type: ignore[attr-defined]
                and me._FrameProcessor__process_current_frame is None  # type: ignore[attr-defined]
                and me._FrameProcessor__process_queue.empty()  # type: ignore[attr-defined]
            )
        except AttributeError:  # another Pipecat: its queues decide
            return False

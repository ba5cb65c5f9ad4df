"""A frame's way through a Pipecat processor, without the work Pipecat does when nobody listens.

Every processor, for every frame it processes and every frame it pushes (a phone call makes
thousands a second at 50 calls), does besides the work itself:

- four event calls (`on_before/after_process_frame`, `on_before/after_push_frame`), each a
  coroutine created and awaited, whether or not a handler is registered (here only the services
  have one, the usage meter's `on_before_push_frame`);
- per push, a `logger.trace(f"Pushing {frame} ... from {self} to {self._next}")`, whose f-string
  (three `__str__`s) is built before loguru drops it, trace being off;
- per push, a `FramePushed` record and an awaited call to the worker's observer, which returns at
  once when the worker has no observers (a phone call has none: see `app/pipeline.py`);
- per frame processed, in the base `FrameProcessor.process_frame` every processor calls, the same
  for a `FrameProcessed` record (with a clock reading), before the few frames it acts on
  (`StartFrame`, interruptions, `CancelFrame`, pause and resume).

And one thing Pipecat does that nobody hears: it passes on, through every processor of the
pipeline, frames that exist for observers only. No processor of a call acts on them (in Pipecat
1.14 only the wake-phrase turn strategy and the debugging `FrameLogger`, neither used here, read
the first two), and a worker with no observer has nobody else to give them to:

- `BotSpeakingFrame`, broadcast by the output transport both ways, upstream through the whole
  pipeline, every 200 ms while the bot talks; `UserSpeakingFrame`, by the user aggregator, likewise
  while the caller talks;
- `MetricsFrame`, each service's TTFB, processing time and usage (the usage meter reads them as
  the service pushes them: `app/cost.py`);
- `AggregatedTextProgressFrame`, with each word the TTS speaks, for the RTVI observer's
  word-by-word highlighting.

Counted in a phone call of four turns, a third of all the frames' hops from processor to processor.
When no observer would see the push, such a frame goes no further than the push by the processor
that made it (its push event handlers still run). With observers, the speaking pings and the
metrics still go no further than their first push when every observer takes them from that push
alone: RTVI's (the browser and Daily calls'), which handles a frame at its first push (the
aggregated text, which it takes from the output transport, travels on), and those that observe
first pushes only (Pipecat's idle watch, turn tracker, eval observer). With any other observer
(a test's), they travel as in Pipecat. Counted between the caller's stop and the bot's first
audio, with them travelling for an observer: metrics made 207 of a turn's 663 pushes, against
15 of 394 with no observer.

And one loop turn per processor for nothing: a data or control frame queued at a processor goes
into its input queue, whose task wakes a loop turn later only to move it to the process queue,
whose task wakes a turn after that to process it. When the input task is running and has nothing
queued or in hand (and is not paused), the frame goes straight to the process queue: it cannot
overtake anything (whatever came before it has been moved on already), and system frames still
go through the input queue, overtaking it as before. On a caller's turn the answer crosses the
TTS, the assistant aggregator and the LLM's queues once per function call and again for the
reply: traced on one call, 21 loop turns from the user's turn at the brain to the reply's text at
the TTS (two function calls) became 13, and 10 became 6 for one.

Measured with py-spy on `frontdesk run` at 50 calls: ~10% of the event loop. `install()` replaces
`FrameProcessor.queue_frame`, `push_frame`, `process_frame` and the private `__internal_push_frame` and
`__process_frame` with versions that skip each of these exactly when it would do nothing, and otherwise run Pipecat's
own code: what the next processor (but for the frames above), the handlers and the observers get
is unchanged (tests/processors/test_frame_path.py). Written against pipecat-ai 1.14 (pinned in pyproject.toml):
if Pipecat's code for these is not the one this was written for, `install()` leaves Pipecat's in
place and logs a warning.
"""

from __future__ import annotations

import hashlib
import inspect
import typing

from loguru import logger
from pipecat.frames.frames import (
    AggregatedTextProgressFrame,
    BotSpeakingFrame,
    CancelFrame,
    Frame,
    FrameProcessorPauseFrame,
    FrameProcessorPauseUrgentFrame,
    FrameProcessorResumeFrame,
    FrameProcessorResumeUrgentFrame,
    InterruptionFrame,
    MetricsFrame,
    StartFrame,
    SystemFrame,
    UserSpeakingFrame,
)
from pipecat.observers.base_observer import FramePushed
from pipecat.pipeline.worker_observer import WorkerObserver
from pipecat.processors.frame_processor import FrameCallback, FrameDirection, FrameProcessor
from pipecat.processors.frameworks.rtvi.observer import RTVIObserver
from pipecat.utils.errors import ErrorCategory

TRACE = 5  # loguru's level number for TRACE
# sha256 of the source of the methods of Pipecat's FrameProcessor this replaces or relies on, in pipecat-ai 1.14.
PIPECAT_SHA256 = "408bc458fd9b677fc7863ed259718390d080c767cdccc6f50adfef2a96038fea"

PIPECAT = {
    "queue_frame": FrameProcessor.queue_frame,
    "push_frame": FrameProcessor.push_frame,
    "_FrameProcessor__internal_push_frame": FrameProcessor._FrameProcessor__internal_push_frame,  # type: ignore[attr-defined]
    "_FrameProcessor__process_frame": FrameProcessor._FrameProcessor__process_frame,  # type: ignore[attr-defined]
    "process_frame": FrameProcessor.process_frame,
}
# What the base `process_frame` acts on; for any other frame it only tells the observers.
BASE_HANDLES = (
    StartFrame, InterruptionFrame, CancelFrame,
    FrameProcessorPauseFrame, FrameProcessorPauseUrgentFrame, FrameProcessorResumeFrame, FrameProcessorResumeUrgentFrame,
)  # fmt: skip

# Frames made for observers only (see the module docstring): not passed on when no observer would see them.
FOR_OBSERVERS = (BotSpeakingFrame, UserSpeakingFrame, MetricsFrame, AggregatedTextProgressFrame)
# Of those, the ones RTVI's observer (a browser or Daily call's) acts on at their first push only,
# if at all: it handles a frame the first time it is pushed, except the aggregated text, which it
# takes from the output transport's push. With no other observer that sees every push, these go no
# further than their first push either, the observers told of it.
FIRST_PUSH_ENOUGH = (BotSpeakingFrame, UserSpeakingFrame, MetricsFrame)


# Not replaced, but what `queue_frame` below relies on: it moves a data or control frame to the process queue, and nothing else.
RELIED_ON = (FrameProcessor._FrameProcessor__input_frame_task_handler,)  # type: ignore[attr-defined]


def pipecat_source_hash() -> str:
    source = "".join(inspect.getsource(method) for method in (*PIPECAT.values(), *RELIED_ON))
    return hashlib.sha256(source.encode()).hexdigest()


def _tracing() -> bool:
    """Whether loguru would emit a trace message (its lowest handler level is TRACE or below)."""
    return getattr(logger._core, "min_level", 0) <= TRACE  # type: ignore[attr-defined]


def _has_handlers(processor: FrameProcessor, event: str) -> bool:
    handler = processor._event_handlers.get(event)
    return handler is not None and bool(handler.handlers)


async def queue_frame(
    self: FrameProcessor, frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM, callback: FrameCallback | None = None
) -> None:
    if not isinstance(frame, SystemFrame) and _input_idle(self):
        await self._FrameProcessor__process_queue.put((frame, direction, callback))  # type: ignore[attr-defined]
        return
    await PIPECAT["queue_frame"](self, frame, direction, callback)


def _input_idle(processor: FrameProcessor) -> bool:
    """Whether the input task would do nothing with a data or control frame but move it to the
    process queue: it is running, has nothing queued or in hand, and is not paused."""
    p: typing.Any = processor
    return (
        not p._enable_direct_mode
        and p._FrameProcessor__input_frame_task is not None
        and p._FrameProcessor__process_frame_task is not None
        and input_queue_clear(processor)
    )


def input_queue_clear(processor: FrameProcessor) -> bool:
    """Nothing waits in the processor's input queue or is in its task's hand, system frames are
    not paused, and the processor is not cancelling (`processors.prompt_entry` asks this too)."""
    p: typing.Any = processor
    return not p._cancelling and not p._FrameProcessor__should_block_system_frames and not p._FrameProcessor__input_queue._unfinished_tasks


async def push_frame(self: FrameProcessor, frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM) -> None:
    if _has_handlers(self, "on_before_push_frame"):
        await self._call_event_handler("on_before_push_frame", frame)
    await self._FrameProcessor__internal_push_frame(frame, direction)  # type: ignore[attr-defined]
    if _has_handlers(self, "on_after_push_frame"):
        await self._call_event_handler("on_after_push_frame", frame)


def _observed(processor: FrameProcessor) -> bool:
    """Whether the worker has an observer that would see this push (a `WorkerObserver` with no
    observers behind it returns at once)."""
    observer = processor._setup.observer if processor._setup else None
    return observer is not None and not (isinstance(observer, WorkerObserver) and not observer._proxies)


def _first_push_enough(processor: FrameProcessor) -> bool:
    """Whether every observer of the worker takes a `FIRST_PUSH_ENOUGH` frame from its first push
    alone: RTVI's, and those that observe first pushes only."""
    observer = processor._setup.observer if processor._setup else None
    if not isinstance(observer, WorkerObserver) or not observer._proxies:
        return False
    return all(not proxy.observer.observe_every_push or type(proxy.observer) is RTVIObserver for proxy in observer._proxies.values())


async def _tell_observers_only(self: FrameProcessor, frame: Frame, direction: FrameDirection) -> None:
    """The observers hear of the push as in Pipecat's; the frame goes no further."""
    target = _target(self, direction)
    if target is None:
        return
    try:
        data = FramePushed(source=self, destination=target, frame=frame, direction=direction, timestamp=self.get_clock().get_time())
        await self._setup.observer.on_push_frame(data)  # type: ignore[union-attr]
    except Exception as e:  # as Pipecat's
        await self.push_error(error_msg=f"Uncaught exception: {e}", exception=e, category=ErrorCategory.UNKNOWN)


def _target(processor: FrameProcessor, direction: FrameDirection) -> FrameProcessor | None:
    return processor._next if direction == FrameDirection.DOWNSTREAM else processor._prev if direction == FrameDirection.UPSTREAM else None


async def _internal_push(self: FrameProcessor, frame: Frame, direction: FrameDirection) -> None:
    tracing = _tracing()
    if tracing or _observed(self):
        if not tracing and isinstance(frame, FIRST_PUSH_ENOUGH) and _first_push_enough(self):
            await _tell_observers_only(self, frame, direction)
            return
        await PIPECAT["_FrameProcessor__internal_push_frame"](self, frame, direction)
        return
    if isinstance(frame, FOR_OBSERVERS):  # and there is no observer: nobody to take it
        return
    target = _target(self, direction)
    if target is None:
        return
    try:
        await target.queue_frame(frame, direction)
    except Exception as e:  # as Pipecat's: the error goes upstream, the call goes on
        await self.push_error(error_msg=f"Uncaught exception: {e}", exception=e, category=ErrorCategory.UNKNOWN)


async def _process(self: FrameProcessor, frame: Frame, direction: FrameDirection, callback: FrameCallback | None) -> None:
    try:
        if _has_handlers(self, "on_before_process_frame"):
            await self._call_event_handler("on_before_process_frame", frame)
        await self.process_frame(frame, direction)
        if callback:
            await callback(self, frame, direction)
        if _has_handlers(self, "on_after_process_frame"):
            await self._call_event_handler("on_after_process_frame", frame)
    except Exception as e:  # as Pipecat's
        await self.push_error(error_msg=f"Error processing frame: {e}", exception=e, category=ErrorCategory.UNKNOWN)


async def process_frame(self: FrameProcessor, frame: Frame, direction: FrameDirection) -> None:
    if isinstance(frame, BASE_HANDLES) or _observed(self):
        await PIPECAT["process_frame"](self, frame, direction)


LEAN = {
    "queue_frame": queue_frame, "push_frame": push_frame, "_FrameProcessor__internal_push_frame": _internal_push, "_FrameProcessor__process_frame": _process,
    "process_frame": process_frame,
}  # fmt: skip


def install() -> bool:
    """Put the lean versions in place (idempotent); False if Pipecat's are not the expected ones."""
    if FrameProcessor.push_frame is push_frame:
        return True
    if pipecat_source_hash() != PIPECAT_SHA256:
        logger.warning("Pipecat's FrameProcessor push/process code is not the one processors/frame_path.py was written for: left as it is")
        return False
    for name, method in LEAN.items():
        setattr(FrameProcessor, name, method)
    return True

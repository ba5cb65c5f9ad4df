"""Pipecat's frame push, without the work it does when nobody is listening.

Every `push_frame` of every processor (a phone call makes thousands a second at 50 calls) does,
besides handing the frame to the next processor:

- two event calls (`on_before_push_frame`, `on_after_push_frame`), each a coroutine created and
  awaited, whether or not a handler is registered (here only the services have one, the usage
  meter's);
- a `logger.trace(f"Pushing {frame} ... from {self} to {self._next}")`, whose f-string (three
  `__str__`s) is built before loguru drops it, trace being off;
- a `FramePushed` record and an awaited call to the worker's observer, which returns at once
  when the worker has no observers (a phone call has none: see `app/pipeline.py`).

Measured with py-spy on `frontdesk run` at 50 calls: ~10% of the event loop. `install()` replaces
`FrameProcessor.push_frame` and its private `__internal_push_frame` with versions that skip each
of these exactly when it would do nothing, and otherwise run Pipecat's own code; what reaches the
next processor, the handlers and the observers is unchanged (tests/processors/test_push_path.py).
Written against pipecat-ai 1.14 (pinned in pyproject.toml): if Pipecat's push code is not the one
this was written for, `install()` leaves Pipecat's in place and logs a warning.
"""

from __future__ import annotations

import hashlib
import inspect

from loguru import logger
from pipecat.frames.frames import Frame
from pipecat.pipeline.worker_observer import WorkerObserver
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.utils.errors import ErrorCategory

TRACE = 5  # loguru's level number for TRACE
# sha256 of the source of Pipecat's two methods this replaces, in pipecat-ai 1.14.
PIPECAT_PUSH_SHA256 = "241c99013460bc4138b801d6b8efe0c0005541571286baa3186b0c52f4c9ecf5"

_pipecat_push_frame = FrameProcessor.push_frame
_pipecat_internal_push = FrameProcessor._FrameProcessor__internal_push_frame  # type: ignore[attr-defined]


def pipecat_push_source_hash() -> str:
    source = inspect.getsource(_pipecat_push_frame) + inspect.getsource(_pipecat_internal_push)
    return hashlib.sha256(source.encode()).hexdigest()


def _tracing() -> bool:
    """Whether loguru would emit a trace message (its lowest handler level is TRACE or below)."""
    return getattr(logger._core, "min_level", 0) <= TRACE  # type: ignore[attr-defined]


def _has_handlers(processor: FrameProcessor, event: str) -> bool:
    handler = processor._event_handlers.get(event)
    return handler is not None and bool(handler.handlers)


async def push_frame(self: FrameProcessor, frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM) -> None:
    if _has_handlers(self, "on_before_push_frame"):
        await self._call_event_handler("on_before_push_frame", frame)
    await _internal_push(self, frame, direction)
    if _has_handlers(self, "on_after_push_frame"):
        await self._call_event_handler("on_after_push_frame", frame)


async def _internal_push(self: FrameProcessor, frame: Frame, direction: FrameDirection) -> None:
    setup = self._setup
    observer = setup.observer if setup else None
    if (observer is None or (isinstance(observer, WorkerObserver) and not observer._proxies)) and not _tracing():
        target = self._next if direction == FrameDirection.DOWNSTREAM else self._prev if direction == FrameDirection.UPSTREAM else None
        if target is None:
            return
        try:
            await target.queue_frame(frame, direction)
        except Exception as e:  # as Pipecat's: the error goes upstream, the call goes on
            await self.push_error(error_msg=f"Uncaught exception: {e}", exception=e, category=ErrorCategory.UNKNOWN)
        return
    await _pipecat_internal_push(self, frame, direction)


def install() -> bool:
    """Put the lean push in place (idempotent); False if Pipecat's push is not the expected one."""
    if FrameProcessor.push_frame is push_frame:
        return True
    if pipecat_push_source_hash() != PIPECAT_PUSH_SHA256:
        logger.warning("Pipecat's FrameProcessor.push_frame is not the one processors/push_path.py was written for: left as it is")
        return False
    FrameProcessor.push_frame = push_frame  # type: ignore[method-assign]
    FrameProcessor._FrameProcessor__internal_push_frame = _internal_push  # type: ignore[attr-defined]
    return True

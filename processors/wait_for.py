"""`asyncio.wait_for` as Python 3.12 has it, on Python 3.11: one turn of the event loop, not three.

Pipecat waits on its queues with `asyncio.wait_for(queue.get(), timeout)`: the input transport for
each frame of the caller's audio, the output transport for each chunk of the bot's, the TTS for
each piece of audio it plays. On Python < 3.12 Pipecat puts the `wait_for2` package's version in
place of asyncio's (`pipecat/__init__.py`), which, as asyncio's own on 3.11, wraps the coroutine
in a new task: an item put on the queue wakes that task, whose end wakes the waiter, which wakes
the waiting task, three turns of the loop, each behind everything else ready (at 25 phone calls
per process, every call's audio). Measured with every turn of the loop made 3 ms long: a piece of
TTS audio took 10 ms from Cartesia's reader to the audio task, 3.7 ms with this.

Python 3.12 rewrote `wait_for` on `asyncio.timeout` (python/cpython#98518, the change Pipecat's
comment points to): the coroutine runs in the waiting task itself, and a timeout cancels that
task and is turned into `TimeoutError` when the `timeout` block exits. `asyncio.timeout` is in
3.11; `wait_for` here is 3.12's, with `timeout <= 0` left to the version it replaces.
`install()` puts it in place only on Python < 3.12 and only over Pipecat's `wait_for2`
(tests/processors/test_wait_for.py).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")

_replaced: Any = None  # the wait_for this one stands in for


async def wait_for(aw: Awaitable[T], timeout: float | None) -> T:
    """Wait for `aw`, at most `timeout` seconds (None: no limit); TimeoutError when it runs out,
    and `aw` is cancelled."""
    if timeout is None:
        return await aw
    if timeout <= 0:  # no wait at all: as the version replaced does it
        return await _replaced(aw, timeout)
    async with asyncio.timeout(timeout):
        return await aw


def install() -> bool:
    """Put `wait_for` in place of Pipecat's `wait_for2` (idempotent); False where it does not apply."""
    global _replaced
    if asyncio.wait_for is wait_for:
        return True
    if sys.version_info >= (3, 12) or getattr(asyncio.wait_for, "__module__", "") != "wait_for2.impl":
        return False
    _replaced = asyncio.wait_for
    asyncio.wait_for = wait_for
    return True

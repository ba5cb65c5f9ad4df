"""processors.wait_for: Python 3.12's asyncio.wait_for on 3.11, in place of Pipecat's wait_for2."""

from __future__ import annotations

import asyncio
import sys

import pipecat  # noqa: F401  (puts wait_for2 in asyncio's place on Python < 3.12)
import pytest

import app.pipeline  # noqa: F401  (installs it, as every call does)
from processors import wait_for as module
from processors.wait_for import wait_for


async def _turns_until(queue: asyncio.Queue, waiter: asyncio.Task) -> int:
    """Put an item on the queue and count the loop's turns until the waiting task has it."""
    await asyncio.sleep(0.01)  # the waiter is waiting
    queue.put_nowait("item")
    turns = 0
    while not waiter.done():
        turns += 1
        await asyncio.sleep(0)
    return turns


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="Python 3.12's own wait_for is used there")
def test_pipecats_queue_waits_use_it():
    assert asyncio.wait_for is wait_for
    assert module._replaced.__module__ == "wait_for2.impl"
    assert module.install() is True  # idempotent


async def test_an_item_put_reaches_the_waiter_in_one_turn_of_the_loop():
    queue: asyncio.Queue = asyncio.Queue()
    waiter = asyncio.create_task(wait_for(queue.get(), timeout=5))
    assert await _turns_until(queue, waiter) == 1
    assert waiter.result() == "item"


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="compares with the wait_for2 of Python < 3.12")
async def test_wait_for2_took_three():
    queue: asyncio.Queue = asyncio.Queue()
    waiter = asyncio.create_task(module._replaced(queue.get(), timeout=5))
    assert await _turns_until(queue, waiter) == 3


async def test_a_timeout_raises_timeout_error_and_leaves_the_queue_as_it_was():
    queue: asyncio.Queue = asyncio.Queue()
    with pytest.raises(TimeoutError):
        await wait_for(queue.get(), timeout=0.02)
    queue.put_nowait("next")  # the cancelled get took nothing and left no getter behind
    assert await wait_for(queue.get(), timeout=1) == "next"
    assert not queue._getters


async def test_no_timeout_waits_and_a_result_already_there_returns_at_once():
    assert await wait_for(asyncio.sleep(0.01, result="slept"), timeout=None) == "slept"
    done = asyncio.get_running_loop().create_future()
    done.set_result(7)
    assert await wait_for(done, timeout=0) == 7
    with pytest.raises(TimeoutError):
        await wait_for(asyncio.sleep(1), timeout=0)


async def test_cancelling_the_waiter_cancels_it_and_not_as_a_timeout():
    queue: asyncio.Queue = asyncio.Queue()
    waiter = asyncio.create_task(wait_for(queue.get(), timeout=5))
    await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert not queue._getters


async def test_an_error_inside_comes_out_as_it_is():
    async def fail():
        await asyncio.sleep(0)
        raise ValueError("inner")

    with pytest.raises(ValueError, match="inner"):
        await wait_for(fail(), timeout=1)

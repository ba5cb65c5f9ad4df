"""LoopClock: deadline time that stands still while the event loop is stalled."""

from __future__ import annotations

import asyncio
import time

from processors.loop_clock import LoopClock, TICK_S


async def test_a_stalled_loop_is_not_counted_and_a_free_one_is():
    clock = LoopClock.of()
    clock.acquire()
    try:
        loop = asyncio.get_running_loop()
        real0, lag_free0 = loop.time(), clock.now()
        await asyncio.sleep(0.2)  # the loop free: the clock keeps loop time
        assert clock.now() - lag_free0 > 0.18
        time.sleep(0.4)  # the loop stalled (a busy call, a model loading)
        # Before the late tick has run, the stall is already discounted.
        assert clock.now() - lag_free0 < 0.3
        await asyncio.sleep(0.1)
        assert loop.time() - real0 > 0.69
        assert 0.25 < clock.now() - lag_free0 < 0.38
        assert 0.35 < clock.max_lag_s < 0.42 and clock.lag_s >= clock.max_lag_s
    finally:
        clock.release()


async def test_one_clock_per_loop_ticking_only_while_held():
    clock = LoopClock.of()
    assert LoopClock.of() is clock
    clock.acquire()
    clock.acquire()
    clock.release()
    assert clock.ticking
    clock.release()
    assert not clock.ticking
    stalled_from = clock.now()
    time.sleep(0.1)  # nobody holds it: plain loop time
    assert clock.now() - stalled_from >= 0.1 - TICK_S / 10

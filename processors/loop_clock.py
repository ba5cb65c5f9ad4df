"""A clock for provider deadlines that does not run while the event loop is stalled.

A failover deadline ("no audio within 1.5 s") is a claim about the provider. But when the event
loop is busy (many calls in one process, a model loading, a GC pause), the provider's bytes wait
in the socket unread, and loop time still runs: a busy server would blame its providers for its
own lag and fail over to the embedded models, which cost more CPU and make the lag worse.

`LoopClock` ticks every `TICK_S` on the loop (a `call_later` callback, not a task: nothing to
cancel when the loop closes). The time a tick comes later than `TICK_S + TOLERANCE_S` is lag;
`now()` is loop time minus all the lag so far, including a tick that is overdue right now (so a
deadline check that runs before the late tick does sees the stall too). The clock only ticks while
someone holds it (`acquire` / `release`), so an idle server does not wake 50 times a second.

One clock per event loop: `LoopClock.of(loop)`. `lag_s` (total) and `max_lag_s` are kept for
the health endpoint and the benchmarks.
"""

from __future__ import annotations

import asyncio
import weakref

TICK_S = 0.02
TOLERANCE_S = 0.01  # a late tick within this is scheduling noise, not lag


class LoopClock:
    _clocks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopClock] = weakref.WeakKeyDictionary()

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self._loop = loop
        self._users = 0
        self._handle: asyncio.TimerHandle | None = None
        self._last_tick = loop.time()
        self.lag_s = 0.0  # all lag counted while ticking
        self.max_lag_s = 0.0  # the longest single stall seen

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop | None = None) -> LoopClock:
        loop = loop or asyncio.get_running_loop()
        clock = cls._clocks.get(loop)
        if clock is None:
            clock = cls._clocks[loop] = cls(loop)
        return clock

    def acquire(self) -> None:
        self._users += 1
        if self._handle is None:
            self._last_tick = self._loop.time()
            self._handle = self._loop.call_later(TICK_S, self._tick)

    def release(self) -> None:
        self._users = max(0, self._users - 1)
        if self._users == 0 and self._handle is not None:
            self._handle.cancel()
            self._handle = None

    @property
    def ticking(self) -> bool:
        return self._handle is not None

    def _overdue(self, now: float) -> float:
        if self._handle is None:
            return 0.0
        return max(0.0, now - self._last_tick - TICK_S - TOLERANCE_S)

    def _tick(self) -> None:
        now = self._loop.time()
        lag = self._overdue(now)
        self.lag_s += lag
        self.max_lag_s = max(self.max_lag_s, lag)
        self._last_tick = now
        self._handle = self._loop.call_later(TICK_S, self._tick)

    def now(self) -> float:
        """Loop time less the loop's lag: what a deadline on a provider should be measured in."""
        real = self._loop.time()
        return real - self.lag_s - self._overdue(real)

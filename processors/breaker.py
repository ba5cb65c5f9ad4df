"""A circuit breaker per provider: after a failure, leave it alone for a while, then try it again.

closed (in use) --failure--> open (skipped until `retry_at`) --time passes--> half-open (the next
turn tries it once) --success--> closed, or --failure--> open again with the back-off doubled, up
to `max_backoff_s`. Time comes from `clock` so tests can drive it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

State = Literal["closed", "open", "half_open"]


@dataclass
class CircuitBreaker:
    name: str
    backoff_s: float = 5.0
    max_backoff_s: float = 60.0
    clock: Callable[[], float] = time.monotonic
    failures: int = 0  # consecutive
    retry_at: float = 0.0
    trips: int = 0  # how many times it opened (for counters)
    last_reason: str = ""
    _probing: bool = field(default=False, repr=False)

    @property
    def state(self) -> State:
        if self.failures == 0:
            return "closed"
        return "half_open" if self.clock() >= self.retry_at else "open"

    def available(self) -> bool:
        """Whether this provider may be given the next turn (closed, or due for a probe)."""
        return self.state != "open"

    def record_failure(self, reason: str) -> None:
        self.failures += 1
        self.trips += 1
        self.last_reason = reason
        backoff = min(self.backoff_s * 2 ** (self.failures - 1), self.max_backoff_s)
        self.retry_at = self.clock() + backoff

    def record_success(self) -> None:
        self.failures = 0
        self.retry_at = 0.0
        self.last_reason = ""


class BreakerBoard:
    """The circuit breakers of the providers this process talks to, shared by all its calls.

    A provider that is down is down for every call: the call that finds out opens its breaker,
    and calls that start meanwhile go straight to the next provider (no connect attempt, no wait
    at the call's start) until the back-off is over and one of them probes it. A failover uses
    the board for a service that names its provider (`provider_key`: provider, endpoint, model,
    set where the service is built); other services get a breaker of their own.
    """

    def __init__(self) -> None:
        self._breakers: dict[str, CircuitBreaker] = {}

    def breaker(self, key: str, *, backoff_s: float, max_backoff_s: float, clock: Callable[[], float] = time.monotonic) -> CircuitBreaker:
        found = self._breakers.get(key)
        if found is None:
            found = self._breakers[key] = CircuitBreaker(key, backoff_s=backoff_s, max_backoff_s=max_backoff_s, clock=clock)
        else:  # bot.yaml may have been edited since (hot reload): the latest back-off applies
            found.backoff_s, found.max_backoff_s = backoff_s, max_backoff_s
        return found

    def clear(self) -> None:
        self._breakers.clear()


PROVIDERS = BreakerBoard()

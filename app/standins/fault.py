"""How a stand-in answers its next request: normally, or with one kind of fault.

A stand-in holds a `Script`: a list of `Fault`s consumed one per request (a request is an HTTP
call, or one utterance / one context on a websocket), then `default` for every request after.

    Fault()                       answer normally
    Fault(latency_s=0.3)          answer normally, first byte after 0.3 s
    Fault("refuse")               401 / auth error
    Fault("fail", status=529)     an HTTP error status (500, 529, 429, ...)
    Fault("hang")                 accept the request, never send a first byte
    Fault("stall", after=2)       send `after` chunks, then go silent (connection kept open)
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["ok", "refuse", "fail", "hang", "stall"]
KINDS: tuple[Kind, ...] = ("ok", "refuse", "fail", "hang", "stall")
FOREVER_S = 3600.0


@dataclass(frozen=True)
class Fault:
    kind: Kind = "ok"
    status: int = 500  # for "fail" (and 401 for "refuse")
    latency_s: float = 0.0  # wait before the first byte of a normal answer
    after: int = 1  # for "stall": chunks sent before going silent

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r} (one of {', '.join(KINDS)})")

    @property
    def http_status(self) -> int:
        return 401 if self.kind == "refuse" else self.status


@dataclass
class Script:
    """Faults for the next requests, in order, then `default`. Records what was asked."""

    faults: list[Fault] = field(default_factory=list)
    default: Fault = field(default_factory=Fault)
    requests: list[dict] = field(default_factory=list)

    def next(self, request: dict | None = None) -> Fault:
        self.requests.append(request or {})
        return self.faults.pop(0) if self.faults else self.default

    def then(self, *faults: Fault) -> Script:
        self.faults.extend(faults)
        return self

    def set(self, default: Fault, faults: Iterable[Fault] = ()) -> None:
        self.default = default
        self.faults = list(faults)


async def hang_forever() -> None:
    """What a hung or stalled provider does: nothing, until the client gives up."""
    await asyncio.sleep(FOREVER_S)

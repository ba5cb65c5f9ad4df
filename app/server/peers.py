"""One worker of a `frontdesk run --workers N` server, as its app sees the others.

Every worker serves the whole app on the public socket the parent bound (each new connection goes
to one of them: app/server/worker.py), and also on a private loopback port of its own. What a worker
creates for a browser carries its index: a /start session id and a WebRTC pc_id are `w<i>-<id>`.
A follow-up request (`/sessions/{id}/api/offer`, `PATCH /api/offer` with a pc_id, a renegotiating
offer) that lands on another worker is forwarded to the owner's private port, and the owner's
answer is returned as is. Only these small signalling requests travel; media never does.

A Twilio call's webhook and its Media Stream may land on different workers too: the webhook's
TwiML carries a ticket signed with the group's key (`Peers.key`, app/server/twilio.py).

The workers' call counts live in a `Board`, a small array in shared memory the parent made, so
/health on any worker reports the whole server.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse, Response
from loguru import logger

if TYPE_CHECKING:
    from app.server.app import Calls

PEER_HOST = "127.0.0.1"
FORWARDED = "x-frontdesk-forwarded"  # set on a request one worker forwards to another: never forwarded twice
FORWARD_TIMEOUT_S = 15.0  # an offer's answer waits for ICE gathering on the owner
_OWNED = re.compile(r"^w(\d+)-(.+)$", re.DOTALL)
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "upgrade", "te", "trailer", "proxy-authorization", "host", "content-length"}

# The Board's fields per worker, in this order.
_FIELDS = ("pid", "up", "active_calls", "calls", "draining", "connections")


class Board:
    """Per-worker counters in shared memory (a `multiprocessing` RawArray of int64, made by the
    parent): each worker writes its own row; anyone reads all of them."""

    def __init__(self, cells: Any, count: int):
        self.cells = cells
        self.count = count

    @staticmethod
    def size(count: int) -> int:
        return count * len(_FIELDS)

    def set(self, index: int, **values: int) -> None:
        for name, value in values.items():
            self.cells[index * len(_FIELDS) + _FIELDS.index(name)] = int(value)

    def get(self, index: int, name: str) -> int:
        return int(self.cells[index * len(_FIELDS) + _FIELDS.index(name)])

    def rows(self) -> list[dict[str, int | bool]]:
        rows = []
        for i in range(self.count):
            row: dict[str, int | bool] = {"worker": i}
            for name in _FIELDS:
                value = self.get(i, name)
                row[name] = bool(value) if name in ("up", "draining") else value
            rows.append(row)
        return rows


@dataclass(frozen=True)
class PeerSettings:
    """What the parent tells worker `index` about the group (picklable)."""

    index: int
    ports: tuple[int, ...]  # each worker's private loopback port, by index
    secret: str

    @property
    def count(self) -> int:
        return len(self.ports)


class Peers:
    """This worker's place in the group: owned ids, forwarding, the shared board."""

    def __init__(self, settings: PeerSettings, board: Board):
        self.index = settings.index
        self.ports = settings.ports
        self.secret = settings.secret
        self.board = board
        self._http: aiohttp.ClientSession | None = None

    @property
    def count(self) -> int:
        return len(self.ports)

    @property
    def key(self) -> bytes:
        """A secret every worker of this server knows (made by the parent at start-up)."""
        return self.secret.encode()

    # --- ids --------------------------------------------------------------------------------------

    def own(self, local_id: str) -> str:
        """An id made here, as the outside sees it."""
        return f"w{self.index}-{local_id}"

    def owner(self, some_id: str) -> tuple[int, str]:
        """The worker that made `some_id`, and the id as that worker knows it. An id without a
        worker prefix (or with one out of range) is taken as this worker's own."""
        match = _OWNED.match(some_id)
        if match and int(match.group(1)) < self.count:
            return int(match.group(1)), match.group(2)
        return self.index, some_id

    # --- forwarding -------------------------------------------------------------------------------

    async def forward(self, request: Request, owner: int) -> Response:
        """Send this HTTP request to the worker that owns what it is about, and return its answer."""
        if request.headers.get(FORWARDED) is not None:  # ids that disagree about their owner: no loop
            raise HTTPException(status_code=404, detail="unknown or finished session")
        url = f"http://{PEER_HOST}:{self.ports[owner]}{request.url.path}"
        if request.url.query:
            url += f"?{request.url.query}"
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        headers[FORWARDED] = str(self.index)
        body = await request.body()
        try:
            async with self._session().request(request.method, url, data=body, headers=headers) as answer:
                content = await answer.read()
                logger.debug(f"{request.method} {request.url.path}: answered by worker {owner} ({answer.status})")
                media_type = answer.headers.get("content-type")
                return Response(content, status_code=answer.status, media_type=media_type)
        except (aiohttp.ClientError, TimeoutError) as e:
            logger.warning(f"{request.method} {request.url.path}: worker {owner}, which holds this session, did not answer ({type(e).__name__})")
            return JSONResponse({"detail": f"the server's worker {owner}, which holds this session, is unavailable"}, status_code=503)

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_S))
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    # --- the board --------------------------------------------------------------------------------

    def watch(self, calls: Calls) -> None:
        """Keep this worker's row of the board in step with its calls."""
        self.board.set(self.index, pid=os.getpid())
        calls.on_change = lambda: self.board.set(self.index, active_calls=calls.active, calls=calls.started, draining=calls.draining)

    def mark_up(self) -> None:
        self.board.set(self.index, pid=os.getpid(), up=1)

    def set_connections(self, open_connections: int) -> None:
        self.board.set(self.index, connections=open_connections)

    def _busy(self, index: int) -> int:
        return self.board.get(index, "active_calls") + self.board.get(index, "connections")

    def others_less_busy(self) -> bool:
        """Whether another serving worker has fewer calls and open connections than this one."""
        mine = self._busy(self.index)
        return any(
            i != self.index and self.board.get(i, "up") and not self.board.get(i, "draining") and self._busy(i) < mine
            for i in range(self.count)
        )

    def health(self) -> dict[str, Any]:
        """What /health adds on a server of several workers."""
        rows = [row | {"private_port": self.ports[i]} for i, row in enumerate(self.board.rows())]
        return {
            "active_calls": sum(int(row["active_calls"]) for row in rows),
            "workers": self.count,
            "worker": self.index,
            "worker_calls": rows,
        }

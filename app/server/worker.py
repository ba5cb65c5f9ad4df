"""Inside one worker process of `frontdesk run --workers N` (started by app/server/workers.py):
the whole app on the shared public socket and this worker's private loopback socket.

uvicorn serves the private socket; the public one is accepted here, one connection at a time, so
the workers share a burst of connections (asyncio's own accept takes the whole queue at once).
A worker busier than another (calls + open connections, from the shared board) waits a few
milliseconds before it accepts, which lets the less busy one take the connection first.
"""

from __future__ import annotations

import asyncio
import copy
import os
import signal
import socket
import sys
from types import FrameType

import uvicorn
from loguru import logger

from app.errors import ConfigError
from app.server.app import UVICORN_OPTIONS, Calls, DrainingServer, create_app
from app.server.peers import Board, PeerSettings, Peers
from app.server.reload import BotSource
from app.server.workers import RunSettings
from app.store import Store


def serve(settings: RunSettings, peer: PeerSettings, public: socket.socket, private: socket.socket, cells: object) -> None:
    """Serve until the parent says stop (SIGTERM: drain; SIGINT: hurry) or disappears."""
    try:
        source = BotSource(settings.bot)
    except ConfigError as e:  # edited since the server started, and broken: this worker cannot start
        logger.error(f"{settings.bot} does not load, so this worker cannot start:\n{e}")
        sys.exit(1)
    peers = Peers(peer, Board(cells, peer.count))
    with Store(settings.db) as store:
        app = create_app(source, store, drain_timeout_s=settings.drain_timeout_s, peers=peers)
        config = uvicorn.Config(app, **UVICORN_OPTIONS, log_config=_uvicorn_logging(peer.index))  # type: ignore[arg-type]
        server = WorkerServer(config, app.state.frontdesk.calls, settings.drain_timeout_s, peers, public)
        # uvicorn re-raises the signals it caught once it has shut down: end quietly instead.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: None)
        loop = (config.get_loop_factory() or asyncio.new_event_loop)()
        loop.run_until_complete(server.serve(sockets=[private]))
        loop.run_until_complete(loop.shutdown_asyncgens())
    # The server has shut down and the store is closed. Warm-up threads (loading models, synthesizing
    # the bot's lines) may still be running; nothing needs them now, and waiting for them (as
    # asyncio.run and the interpreter's exit do) can hold the worker for many seconds.
    logger.complete()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _uvicorn_logging(index: int) -> dict:
    """uvicorn's own (stdlib) log lines, tagged with the worker like ours."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    for formatter in config["formatters"].values():
        formatter["fmt"] = formatter["fmt"].replace("%(levelprefix)s ", f"%(levelprefix)s w{index} | ", 1)
    return config


HEAD_START_S = 0.02  # how long a busier worker lets a less busy one take a new connection first


class WorkerServer(DrainingServer):
    """DrainingServer for one worker: SIGTERM (from the parent) drains, once; SIGINT hurries it as
    a second Ctrl-C does. It accepts on the public socket itself (see above), marks itself up on
    the board, and drains if its parent is gone."""

    def __init__(self, config: uvicorn.Config, calls: Calls, drain_timeout_s: float, peers: Peers, public: socket.socket):
        super().__init__(config, calls, drain_timeout_s)
        self._peers = peers
        self._public = public
        self._parent = os.getppid()
        self._acceptor: asyncio.Task | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig == signal.SIGTERM and self._draining:
            return
        super().handle_exit(sig, frame)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if not self.should_exit:
            self._acceptor = asyncio.create_task(self._accept_public(), name="accept public")
            self._peers.mark_up()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self._acceptor is not None:
            self._acceptor.cancel()
            await asyncio.gather(self._acceptor, return_exceptions=True)
        self._public.close()  # this process's copy: the parent's keeps the port
        await super().shutdown(sockets)

    async def on_tick(self, counter: int) -> bool:
        self._peers.set_connections(len(self.server_state.connections))
        if counter % 10 == 0 and not self._draining and os.getppid() != self._parent:
            logger.error("the parent process is gone: draining, then exiting")
            self.handle_exit(signal.SIGTERM, None)
        return await super().on_tick(counter)

    async def _accept_public(self) -> None:
        loop = asyncio.get_running_loop()
        sock = self._public
        sock.setblocking(False)

        def protocol() -> asyncio.Protocol:  # what uvicorn's own servers make for a connection
            return self.config.http_protocol_class(config=self.config, server_state=self.server_state, app_state=self.lifespan.state, _loop=loop)

        while True:
            await _readable(loop, sock)
            if self._peers.others_less_busy():
                await asyncio.sleep(HEAD_START_S)
            try:
                connection, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                continue  # another worker took it
            except OSError as e:  # out of file descriptors, say: let the other workers take it
                logger.warning(f"accept failed: {e}")
                await asyncio.sleep(0.1)
                continue
            connection.setblocking(False)
            try:
                await loop.connect_accepted_socket(protocol, connection)
            except OSError as e:
                logger.warning(f"connection dropped as it was accepted: {e}")
                connection.close()
            self._peers.set_connections(len(self.server_state.connections))


async def _readable(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
    ready = loop.create_future()
    loop.add_reader(sock.fileno(), lambda: ready.done() or ready.set_result(None))
    try:
        await ready
    finally:
        loop.remove_reader(sock.fileno())

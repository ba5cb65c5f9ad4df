"""`frontdesk run --workers N`: N worker processes serving one listening socket.

    parent   binds the public socket once (uvicorn's `Config.bind_socket`) and one private loopback
             socket per worker, spawns the workers, restarts one that dies, and on Ctrl-C/SIGTERM
             tells every worker to drain (SIGTERM); a second Ctrl-C is passed on as SIGINT (stop now)
    worker   the whole app (`create_app`) on its own Store connection and BotSource (hot reload per
             worker), served by uvicorn on [public socket, its private socket]; the kernel gives
             each new connection to one worker. Sessions stay with the worker that made them
             (app/server/peers.py).

Workers are spawned, not forked: the parent has loaded nothing heavy, and each worker loads the
speech models once for its own calls (forking a process that runs onnxruntime or CTranslate2
thread pools is unsafe). Workers run in process groups of their own, so a Ctrl-C in the terminal
reaches only the parent, which passes it on once; a worker whose parent is gone drains and exits.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import secrets
import signal
import socket
import time
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from types import FrameType

from loguru import logger

from app.server.peers import Board, PeerSettings

READY_CHECK_S = 0.5
STOP_GRACE_S = 15.0  # beyond the drain timeout, how long the parent waits before killing workers
QUICK_DEATH_S = 10.0  # a worker dying sooner than this after its start is restarted after a back-off
MAX_BACKOFF_S = 30.0
BACKLOG = 2048


@dataclass(frozen=True)
class RunSettings:
    """What every worker needs to build the app (picklable)."""

    bot: str
    db: str
    drain_timeout_s: float
    log_level: str


@dataclass
class WorkerSlot:
    index: int
    private: socket.socket
    process: BaseProcess | None = None
    started_at: float = 0.0
    quick_deaths: int = 0
    restart_at: float | None = None


class Supervisor:
    """The parent: keeps N workers running on the shared socket until told to stop."""

    def __init__(self, settings: RunSettings, count: int, public: socket.socket):
        self.settings = settings
        self.count = count
        self.public = public
        self.context = multiprocessing.get_context("spawn")
        self.board = Board(self.context.RawArray("q", Board.size(count)), count)
        self.secret = secrets.token_hex(16)
        self.slots = [WorkerSlot(i, _private_socket()) for i in range(count)]
        self.ports = tuple(slot.private.getsockname()[1] for slot in self.slots)
        self.stopping = False
        self.all_up_once = False
        self.failed = False
        self._signals: list[int] = []
        self._deadline: float | None = None
        self._wake_r, self._wake_w = os.pipe()

    def run(self) -> int:
        """Serve until stopped; 0 after a clean stop, 1 when the workers could not start."""
        os.set_blocking(self._wake_w, False)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            for slot in self.slots:
                self._start(slot)
            while any(slot.process is not None for slot in self.slots) or (not self.stopping and not self.failed):
                self._wait()
                self._handle_signals()
                self._check_ready()
                self._reap()
                self._restart_due()
                self._check_deadline()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            for slot in self.slots:
                slot.private.close()
            os.close(self._wake_r)
            os.close(self._wake_w)
        return 1 if self.failed else 0

    # --- signals ----------------------------------------------------------------------------------

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        # Only note it here (logging from a signal handler can deadlock): the loop acts on it.
        self._signals.append(sig)
        try:
            os.write(self._wake_w, b"!")
        except OSError:
            pass

    def _handle_signals(self) -> None:
        while self._signals:
            self._signals.pop(0)
            if not self.stopping:
                self.stopping = True
                self._deadline = time.monotonic() + self.settings.drain_timeout_s + STOP_GRACE_S
                live = sum(slot.process is not None for slot in self.slots)
                logger.warning(f"shutting down: no new calls; waiting for active calls in {live} worker(s) (Ctrl-C again to stop now)")
                self._send_all(signal.SIGTERM)
            else:
                logger.warning("stopping now")
                self._send_all(signal.SIGINT)

    def _send_all(self, sig: int) -> None:
        for slot in self.slots:
            if slot.process is not None and slot.process.pid is not None:
                try:
                    os.kill(slot.process.pid, sig)
                except ProcessLookupError:
                    pass

    # --- the workers --------------------------------------------------------------------------------

    def _start(self, slot: WorkerSlot) -> None:
        self.board.set(slot.index, pid=0, up=0, active_calls=0, calls=0, draining=0, connections=0)
        peer = PeerSettings(slot.index, self.ports, self.secret)
        process = self.context.Process(
            target=run_worker, name=f"frontdesk-w{slot.index}",
            args=(self.settings, peer, self.public, slot.private, self.board.cells),
        )  # fmt: skip
        process.start()
        slot.process, slot.started_at, slot.restart_at = process, time.monotonic(), None
        logger.info(f"worker {slot.index} started (pid {process.pid}, private port {self.ports[slot.index]})")

    def _wait(self) -> None:
        waitables: list = [self._wake_r] + [slot.process.sentinel for slot in self.slots if slot.process is not None]
        ready = multiprocessing.connection.wait(waitables, timeout=READY_CHECK_S)
        if self._wake_r in ready:
            os.read(self._wake_r, 512)

    def _reap(self) -> None:
        for slot in self.slots:
            process = slot.process
            if process is None or process.is_alive():
                continue
            process.join()
            lost, was_up = self.board.get(slot.index, "active_calls"), self.board.get(slot.index, "up")
            self.board.set(slot.index, pid=0, up=0, active_calls=0, draining=0, connections=0)
            slot.process = None
            if self.stopping:
                logger.info(f"worker {slot.index} (pid {process.pid}) stopped")
                continue
            how = f"signal {-process.exitcode}" if (process.exitcode or 0) < 0 else f"exit status {process.exitcode}"
            lost_calls = f"; {lost} call(s) on it were lost" if lost else ""
            if not was_up and not self.all_up_once:  # it could not start: the others will not either
                logger.error(f"worker {slot.index} (pid {process.pid}) ended ({how}) before the server was up: stopping")
                self.failed = True
                self._stop_all()
                continue
            uptime = time.monotonic() - slot.started_at
            slot.quick_deaths = slot.quick_deaths + 1 if uptime < QUICK_DEATH_S else 0
            delay = min(MAX_BACKOFF_S, 2.0 ** (slot.quick_deaths - 1)) if slot.quick_deaths else 0.0
            slot.restart_at = time.monotonic() + delay
            logger.error(f"worker {slot.index} (pid {process.pid}) died ({how}){lost_calls}; restarting it" + (f" in {delay:.0f} s" if delay else ""))

    def _restart_due(self) -> None:
        if self.stopping or self.failed:
            return
        for slot in self.slots:
            if slot.process is None and slot.restart_at is not None and time.monotonic() >= slot.restart_at:
                self._start(slot)

    def _check_ready(self) -> None:
        if not self.all_up_once and all(self.board.get(i, "up") for i in range(self.count)):
            self.all_up_once = True
            logger.info(f"{self.count} workers serving (pids {', '.join(str(self.board.get(i, 'pid')) for i in range(self.count))})")

    def _stop_all(self) -> None:
        if not self.stopping:
            self.stopping = True
            self._deadline = time.monotonic() + self.settings.drain_timeout_s + STOP_GRACE_S
            self._send_all(signal.SIGTERM)

    def _check_deadline(self) -> None:
        if self._deadline is not None and time.monotonic() > self._deadline:
            late = [slot for slot in self.slots if slot.process is not None]
            if late:
                logger.error(f"worker(s) {', '.join(str(s.index) for s in late)} still running {STOP_GRACE_S:.0f} s past the drain timeout: killing")
                self._send_all(signal.SIGKILL)
            self._deadline = None


def _private_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(BACKLOG)
    sock.set_inheritable(True)
    return sock


def bind_public(host: str, port: int) -> socket.socket:
    """The listening socket every worker accepts on, bound as uvicorn binds it; it listens at once,
    so connections wait in its backlog while workers start or restart."""
    import uvicorn

    sock = uvicorn.Config("app.server.app:create_app", host=host, port=port, log_level="warning").bind_socket()
    sock.listen(BACKLOG)
    return sock


def serve_workers(settings: RunSettings, count: int, host: str, port: int) -> int:
    """Run `count` workers on host:port until Ctrl-C/SIGTERM; the exit status."""
    public = bind_public(host, port)
    try:
        return Supervisor(settings, count, public).run()
    finally:
        public.close()


def run_worker(settings: RunSettings, peer: PeerSettings, public: socket.socket, private: socket.socket, cells: object) -> None:
    """A worker process's main (app/server/worker.py), after the process is set apart and its logs
    are tagged: the speech stack's imports log too."""
    os.setpgrp()  # the terminal's Ctrl-C goes to the parent, which passes it on once
    from app.server.cli import log_to_stderr

    log_to_stderr(settings.log_level, tag=f"w{peer.index}")
    from app.server.worker import serve

    serve(settings, peer, public, private, cells)

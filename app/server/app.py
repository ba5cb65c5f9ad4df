"""The HTTP/WebSocket app `frontdesk run` serves, on Pipecat's runner conventions.

    GET  /            -> redirect to /client/
    GET  /client/     the Pipecat prebuilt browser UI (SmallWebRTC)
    POST /start       a session for the prebuilt UI, whose offer goes to /sessions/{id}/api/offer;
                      with {"createDailyRoom": true} a Daily room the bot joins (app/server/daily.py)
    GET  /daily       a Daily room with the bot in it, the browser redirected there
    POST/PATCH /api/offer   WebRTC offer / ICE candidates (SmallWebRTCRequestHandler)
    POST /            Twilio's voice webhook -> TwiML streaming the call to /ws (app.server.twilio)
    WS   /ws          Pipecat's eval harness (`pipecat eval run --bot-url ws://host:port/ws`) and
                      Twilio Media Streams, told apart by their first messages
    GET  /health      status, active calls, bot, flow, config generation, last reload error

Each new call takes the bot from `BotSource.current()` (hot reload) and runs on one shared Store.
With `frontdesk run --workers N` every worker process serves this same app; `Peers`
(app/server/peers.py) routes a session's follow-up requests to the worker that holds it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any, Protocol

import uvicorn
from fastapi import FastAPI, HTTPException, Request, WebSocket
from fastapi.responses import JSONResponse, RedirectResponse
from loguru import logger
from pipecat.transports.base_transport import BaseTransport, TransportParams
from pipecat.transports.smallwebrtc.connection import SmallWebRTCConnection
from pipecat.transports.smallwebrtc.request_handler import (
    SmallWebRTCPatchRequest,
    SmallWebRTCRequest,
    SmallWebRTCRequestHandler,
)
from pipecat.transports.smallwebrtc.transport import SmallWebRTCTransport
from starlette.websockets import WebSocketState

from app.config.load import LoadedBot
from app.server.daily import add_daily_routes, wants_daily
from app.server.peers import Peers
from app.server.reload import BotSource
from app.server.twilio import TwilioDialIn
from app.store import Store

DEFAULT_DRAIN_TIMEOUT_S = 30.0
WS_TRY_AGAIN_LATER = 1013  # RFC 6455 close code: the server is going away for a while
WS_UNSUPPORTED = 1003
# uvicorn's websockets accept permessage-deflate when a client offers it: every 20 ms media message
# of a phone call inflated, and the bot's audio deflated, for base64 that hardly shrinks.
UVICORN_OPTIONS: dict[str, object] = {"log_level": "warning", "lifespan": "on", "ws_per_message_deflate": False}


class CallRunner(Protocol):
    """Runs one call to its end (`app.voice.run_voice_call` by default; tests pass a fake)."""

    def __call__(self, bot: LoadedBot, store: Store, transport: BaseTransport, *, transport_name: str) -> Awaitable[Any]: ...


async def _run_voice_call(bot: LoadedBot, store: Store, transport: BaseTransport, *, transport_name: str) -> Any:
    from app.voice import run_voice_call  # the speech stack is heavy: import it on the first call

    return await run_voice_call(bot, store, transport, transport_name=transport_name)


async def _warm_up(bot: LoadedBot) -> None:
    from app.voice import warm_up

    await warm_up(bot)


class Calls:
    """The calls in progress, as tasks; draining refuses new ones and waits for these to end."""

    def __init__(self) -> None:
        self.draining = False
        self.started = 0  # calls started since the server did
        self.on_change: Callable[[], None] | None = None  # a call started or ended, or draining began
        self._deadline: float | None = None
        self._tasks: dict[asyncio.Task, str] = {}

    @property
    def active(self) -> int:
        return len(self._tasks)

    def start(self, call: Coroutine[Any, Any, Any], name: str) -> asyncio.Task:
        task = asyncio.create_task(call, name=f"call {name}")
        self._tasks[task] = name
        self.started += 1
        task.add_done_callback(self._finished)
        self._changed()
        return task

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def _finished(self, task: asyncio.Task) -> None:
        name = self._tasks.pop(task, "?")
        self._changed()
        if task.cancelled():
            logger.warning(f"call {name}: cancelled")
        elif task.exception() is not None:
            error = task.exception()
            logger.opt(exception=error).error(f"call {name} failed: {error}")

    async def drain(self, timeout_s: float) -> bool:
        """Refuse new calls and wait for the active ones; True when none is left.

        The timeout runs from the first call to `drain` (a signal, then the app's shutdown, wait
        for the same deadline, not twice as long).
        """
        self.draining = True
        self._changed()
        loop = asyncio.get_running_loop()
        if self._deadline is None:
            self._deadline = loop.time() + timeout_s
        if self._tasks:
            remaining = max(0.0, self._deadline - loop.time())
            logger.info(f"draining: waiting up to {remaining:.0f} s for {len(self._tasks)} active call(s)")
            await asyncio.wait(list(self._tasks), timeout=remaining)
        return not self._tasks

    async def cancel_all(self) -> None:
        tasks = list(self._tasks)
        if tasks:
            logger.warning(f"drain timeout: cancelling {len(tasks)} call(s) still active")
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@dataclass
class ServerState:
    source: BotSource
    store: Store
    calls: Calls
    drain_timeout_s: float
    run_call: CallRunner


def create_app(
    source: BotSource,
    store: Store,
    *,
    drain_timeout_s: float = DEFAULT_DRAIN_TIMEOUT_S,
    run_call: CallRunner = _run_voice_call,
    warm_up: Callable[[LoadedBot], Awaitable[None]] | None = _warm_up,
    peers: Peers | None = None,
) -> FastAPI:
    """The server for one bot definition; `app.state.frontdesk` holds its ServerState.

    `peers`: this process is one worker of several (`frontdesk run --workers N`)."""
    state = ServerState(source, store, Calls(), drain_timeout_s, run_call)
    webrtc = SmallWebRTCRequestHandler()
    sessions: dict[str, dict] = {}  # /start sessions waiting for (or in) their call
    if peers is not None:
        peers.watch(state.calls)

    def owner(some_id: str) -> tuple[int | None, str]:
        """The worker holding a session or peer connection (None: this one), and its local id."""
        if peers is None:
            return None, some_id
        index, local_id = peers.owner(some_id)
        return (None if index == peers.index else index), local_id

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Models and the bot's fixed lines load in the background: the first call need not wait.
        warming = asyncio.create_task(warm_up(source.current())) if warm_up else None
        yield
        if warming is not None and not warming.done():
            warming.cancel()
        if not await state.calls.drain(state.drain_timeout_s):
            await state.calls.cancel_all()
        await webrtc.close()
        if peers is not None:
            await peers.close()

    app = FastAPI(title="frontdesk", lifespan=lifespan)
    app.state.frontdesk = state
    _frontend_routes(app)
    twilio = TwilioDialIn(source.current, lambda: state.calls.draining, ticket_key=peers.key if peers else None)
    twilio.add_routes(app)
    daily = add_daily_routes(app, state)

    @app.get("/health")
    async def health() -> JSONResponse:
        bot = source.current()
        body = {
            "status": "draining" if state.calls.draining else "ok",
            "active_calls": state.calls.active,
            "bot": bot.config.name,
            "flow": bot.flow.file,
            "config_generation": source.generation,
            "last_reload_error": source.last_error,
        }
        if peers is not None:
            body |= peers.health()
        return JSONResponse(body, status_code=503 if state.calls.draining else 200)

    def refuse_when_draining() -> None:
        if state.calls.draining:
            raise HTTPException(status_code=503, detail="the server is shutting down and takes no new calls")

    @app.get("/status")
    async def status() -> dict[str, Any]:
        return {"status": "draining" if state.calls.draining else "ready", "transports": ["webrtc"]}

    @app.post("/start")
    async def start(request: Request) -> dict[str, str]:
        """The prebuilt UI's first step: register a session; the call starts with its WebRTC offer."""
        refuse_when_draining()
        try:
            body = await request.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        if wants_daily(body):
            return await daily.start()
        transport = body.get("transport") or "webrtc"
        if transport != "webrtc":
            raise HTTPException(status_code=400, detail=f"transport '{transport}' is not served here; use 'webrtc' (or /ws for Pipecat evals)")
        session_id = str(uuid.uuid4())
        if peers is not None:
            session_id = peers.own(session_id)
        sessions[session_id] = body.get("body") or {}
        return {"sessionId": session_id}

    @app.post("/api/offer")
    async def offer(request: SmallWebRTCRequest, http: Request, session_id: str | None = None) -> Any:
        """A browser's WebRTC offer: a new call, or a renegotiation of one in progress."""
        if request.pc_id:
            elsewhere, request.pc_id = owner(request.pc_id)
            if elsewhere is not None:
                return await peers.forward(http, elsewhere)
        else:
            refuse_when_draining()
        call_name = session_id or str(uuid.uuid4())

        async def on_new_connection(connection: SmallWebRTCConnection) -> None:
            transport = SmallWebRTCTransport(
                webrtc_connection=connection,
                params=TransportParams(audio_in_enabled=True, audio_out_enabled=True),
            )
            task = state.calls.start(state.run_call(source.current(), store, transport, transport_name="webrtc"), call_name)
            if session_id:
                task.add_done_callback(lambda _: sessions.pop(session_id, None))

        answer = await webrtc.handle_web_request(request=request, webrtc_connection_callback=on_new_connection)
        if answer is not None and peers is not None:
            answer = {**answer, "pc_id": peers.own(answer["pc_id"])}
        return answer

    @app.patch("/api/offer")
    async def ice_candidate(request: SmallWebRTCPatchRequest, http: Request) -> Any:
        elsewhere, request.pc_id = owner(request.pc_id)
        if elsewhere is not None:
            return await peers.forward(http, elsewhere)
        await webrtc.handle_patch_request(request)
        return {"status": "success"}

    @app.post("/sessions/{session_id}/api/offer")
    async def session_offer(session_id: str, request: SmallWebRTCRequest, http: Request) -> Any:
        """The offer of a session made by /start (Pipecat Cloud's route, which the prebuilt UI uses)."""
        elsewhere, _ = owner(session_id)
        if elsewhere is not None:
            return await peers.forward(http, elsewhere)
        if session_id not in sessions:
            raise HTTPException(status_code=404, detail="unknown or finished session")
        return await offer(request, http, session_id=session_id)

    @app.patch("/sessions/{session_id}/api/offer")
    async def session_ice_candidate(session_id: str, request: SmallWebRTCPatchRequest, http: Request) -> Any:
        elsewhere, _ = owner(session_id)
        if elsewhere is not None:
            return await peers.forward(http, elsewhere)
        if session_id not in sessions:
            raise HTTPException(status_code=404, detail="unknown or finished session")
        return await ice_candidate(request, http)

    @app.websocket("/ws")
    async def websocket_call(websocket: WebSocket) -> None:
        """A call over a WebSocket: Pipecat's eval harness (RTVI + EvalSerializer) or Twilio."""
        if state.calls.draining:
            await websocket.close(code=WS_TRY_AGAIN_LATER, reason="shutting down")
            return
        await websocket.accept()
        bot = source.current()
        transport, kind = await _websocket_transport(websocket, bot, twilio)
        if transport is None:
            await websocket.close(code=WS_UNSUPPORTED, reason="only Pipecat's eval harness and Twilio Media Streams are served on /ws")
            return
        task = state.calls.start(state.run_call(bot, store, transport, transport_name=kind), f"{kind}-{id(websocket):x}")
        await asyncio.wait([task])
        if websocket.client_state is WebSocketState.CONNECTED and websocket.application_state is WebSocketState.CONNECTED:
            await websocket.close()

    return app


def _frontend_routes(app: FastAPI) -> None:
    from pipecat_ai_prebuilt.frontend import PipecatPrebuiltUI

    app.mount("/client", PipecatPrebuiltUI)

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse(url="/client/")


async def _websocket_transport(websocket: WebSocket, bot: LoadedBot, twilio: TwilioDialIn) -> tuple[BaseTransport | None, str]:
    """The transport for an accepted WebSocket and its kind, from its first messages, as Pipecat's runner does."""
    from pipecat.evals.fastapi_transport import EvalFastAPIWebsocketTransport
    from pipecat.evals.serializer import EvalConnectionFlags, EvalSerializer
    from pipecat.evals.transport import EvalTransportParams
    from pipecat.runner.utils import parse_telephony_websocket

    try:
        kind, call_data = await parse_telephony_websocket(websocket)
    except ValueError as e:
        logger.warning(f"/ws: {e}")
        return None, "?"
    if kind == "twilio":
        return twilio.transport(websocket, call_data, bot), kind
    if kind != "eval":
        logger.warning(f"/ws: a '{kind}' connection; only Pipecat's eval harness and Twilio are served here")
        return None, kind
    params = EvalTransportParams(audio_in_enabled=True, audio_out_enabled=True, serializer=EvalSerializer())
    return EvalFastAPIWebsocketTransport(websocket, params, EvalConnectionFlags.model_validate(call_data.body)), kind


class DrainingServer(uvicorn.Server):
    """uvicorn, except that the first Ctrl-C/SIGTERM drains calls before the server stops.

    While draining, /api/offer answers 503 and /health reports "draining"; once the calls end
    (or the timeout passes) uvicorn shuts down as usual. A second Ctrl-C stops at once.
    """

    def __init__(self, config: uvicorn.Config, calls: Calls, drain_timeout_s: float):
        super().__init__(config)
        self._calls = calls
        self._drain_timeout_s = drain_timeout_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._draining = False
        self._drain_task: asyncio.Task | None = None

    async def serve(self, sockets=None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if not self._draining and self._loop is not None and not self.should_exit:
            logger.warning("shutting down: no new calls; waiting for active calls (Ctrl-C again to stop now)")
            self._draining = True
            self._loop.call_soon_threadsafe(self._start_drain)
            return
        super().handle_exit(sig, frame)

    def _start_drain(self) -> None:
        self._drain_task = self._loop.create_task(self._drain())

    async def _drain(self) -> None:
        await self._calls.drain(self._drain_timeout_s)
        self.should_exit = True

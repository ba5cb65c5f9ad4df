"""Browser calls through Daily: a private room and two meeting tokens from Daily's REST API (through
Pipecat's `DailyRESTHelper`), the bot joining the room with Pipecat's `DailyTransport`.

    GET  /daily    a room, the bot started in it, the browser redirected there with its token
    POST /start    {"createDailyRoom": true} or {"transport": "daily"} (Pipecat's runner convention;
                   `app.server.app` hands these here) -> {"dailyRoom", "dailyToken", "sessionId"}

The key comes from bot.yaml's `daily.api_key` (default `${DAILY_API_KEY}`), the REST base URL from
`daily.api_url`, else DAILY_API_URL, else https://api.daily.co/v1. Without a key both routes answer
400 naming the variable (as Pipecat's runner does for a transport it does not serve). Daily's own
errors become a 502 (503 for its rate limit) whose detail says what Daily answered; no call starts.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
from fastapi import FastAPI, HTTPException
from fastapi.responses import RedirectResponse
from loguru import logger
from pipecat.transports.base_transport import BaseTransport
from pipecat.transports.daily.utils import (
    DailyMeetingTokenParams,
    DailyMeetingTokenProperties,
    DailyRESTHelper,
    DailyRoomParams,
    DailyRoomProperties,
)

from app.config.bot import BotConfig, env_name

if TYPE_CHECKING:
    from app.server.app import ServerState

DEFAULT_API_URL = "https://api.daily.co/v1"
KEYS_PAGE = "https://dashboard.daily.co/developers"
REQUEST_TIMEOUT_S = 10.0
_STATUS = re.compile(r"\(status: (\d{3})\)")  # how DailyRESTHelper reports Daily's answer


@dataclass(frozen=True)
class DailyAccess:
    """How to reach Daily's REST API, resolved from bot.yaml and the environment."""

    api_key: str | None
    api_url: str
    key_variable: str
    room_expiry_s: float

    @classmethod
    def of(cls, config: BotConfig, environ: Mapping[str, str] = os.environ) -> DailyAccess:
        daily = config.daily
        variable = env_name(daily.api_key) or "DAILY_API_KEY"
        api_url = daily.api_url or environ.get("DAILY_API_URL") or DEFAULT_API_URL
        return cls(environ.get(variable) or None, api_url.rstrip("/"), variable, daily.room_expiry_min * 60.0)

    @property
    def off_reason(self) -> str | None:
        return None if self.api_key else f"{self.key_variable} is not set"


def startup_note(config: BotConfig, base_url: str, environ: Mapping[str, str] = os.environ) -> str:
    """The line `frontdesk run` logs about Daily at start-up."""
    access = DailyAccess.of(config, environ)
    if access.off_reason:
        return f"Daily is off because {access.off_reason} (export it, from {KEYS_PAGE}, to call through Daily rooms)"
    return f"Daily: open {base_url}/daily (rooms from {access.api_url})"


@dataclass(frozen=True)
class DailyRoom:
    url: str
    bot_token: str
    caller_token: str


class DailyError(Exception):
    """Daily could not give us a room; `status` is what our route answers, the message says why."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _daily_failure(error: Exception, access: DailyAccess) -> DailyError:
    match = _STATUS.search(str(error))
    status = int(match.group(1)) if match else None
    if status in (401, 403):
        return DailyError(502, f"Daily refused the API key in {access.key_variable} (HTTP {status}); check it at {KEYS_PAGE}")
    if status == 429:
        return DailyError(503, "Daily is rate-limiting room creation (HTTP 429); try again in a moment")
    if status is not None:
        return DailyError(502, f"Daily could not create the room (HTTP {status}); try again")
    return DailyError(502, f"Daily gave an unexpected answer: {error}")


async def create_room(access: DailyAccess, bot_name: str) -> DailyRoom:
    """A private room expiring after `access.room_expiry_s`, with an owner token for the bot and a
    plain one for the caller."""
    if access.off_reason:
        # 400, as Pipecat's runner answers for a transport it does not serve
        raise DailyError(400, f"Daily is off: {access.off_reason} (get a key at {KEYS_PAGE})")
    expiry = access.room_expiry_s
    properties = DailyRoomProperties(exp=time.time() + expiry, eject_at_room_exp=True, start_video_off=True)
    params = DailyRoomParams(name=f"frontdesk-{uuid.uuid4().hex[:10]}", privacy="private", properties=properties)

    def named(name: str) -> DailyMeetingTokenParams:
        return DailyMeetingTokenParams(properties=DailyMeetingTokenProperties(user_name=name))

    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            helper = DailyRESTHelper(daily_api_key=access.api_key, daily_api_url=access.api_url, aiohttp_session=session)
            room = await helper.create_room(params)
            bot_token = await helper.get_token(room.url, expiry, eject_at_token_exp=True, owner=True, params=named(bot_name))
            caller_token = await helper.get_token(room.url, expiry, eject_at_token_exp=True, owner=False, params=named("caller"))
    except (aiohttp.ClientError, asyncio.TimeoutError) as e:
        raise DailyError(502, f"could not reach Daily at {access.api_url}: {e or type(e).__name__}") from e
    except Exception as e:  # DailyRESTHelper raises bare Exceptions carrying Daily's status
        raise _daily_failure(e, access) from e
    return DailyRoom(room.url, bot_token, caller_token)


TransportFactory = Callable[[str, str, str, DailyAccess], BaseTransport]


def daily_transport(room_url: str, token: str, bot_name: str, access: DailyAccess) -> BaseTransport:
    """Pipecat's DailyTransport joining `room_url` as the bot (audio only)."""
    from pipecat.transports.daily.transport import DailyParams, DailyTransport

    params = DailyParams(audio_in_enabled=True, audio_out_enabled=True, api_url=access.api_url, api_key=access.api_key or "")
    return DailyTransport(room_url, token, bot_name, params=params)


class DailyCalls:
    """The server's Daily part, kept as `app.state.daily`; tests replace `transport_factory` (the
    real join needs Daily's servers) and `environ`."""

    def __init__(self, state: ServerState, transport_factory: TransportFactory = daily_transport):
        self.state = state
        self.transport_factory = transport_factory
        self.environ: Mapping[str, str] = os.environ

    async def start(self) -> dict[str, str]:
        """A room and tokens, and the bot started in the room; what Pipecat's /start returns."""
        bot = self.state.source.current()
        access = DailyAccess.of(bot.config, self.environ)
        try:
            room = await create_room(access, bot.config.name)
        except DailyError as e:
            logger.warning(f"Daily: {e.detail}")
            raise HTTPException(status_code=e.status, detail=e.detail) from e
        session_id = str(uuid.uuid4())
        transport = self.transport_factory(room.url, room.bot_token, bot.config.name, access)
        call = self.state.run_call(bot, self.state.store, transport, transport_name="daily")
        self.state.calls.start(call, f"daily-{session_id}")
        logger.info(f"Daily: the bot is joining {room.url} (session {session_id})")
        return {"dailyRoom": room.url, "dailyToken": room.caller_token, "sessionId": session_id}


def add_daily_routes(app: FastAPI, state: ServerState) -> DailyCalls:
    """`GET /daily`; returns the handler `/start` uses for Daily sessions."""
    daily = DailyCalls(state)
    app.state.daily = daily

    @app.get("/daily")
    async def daily_room() -> RedirectResponse:
        """Make a room, start the bot in it and send the browser there."""
        if state.calls.draining:
            raise HTTPException(status_code=503, detail="the server is shutting down and takes no new calls")
        started = await daily.start()
        # The caller's token in the URL: the browser joins the private room at once.
        return RedirectResponse(f"{started['dailyRoom']}?t={started['dailyToken']}")

    return daily


def wants_daily(body: dict[str, Any]) -> bool:
    """Whether a /start body asks for a Daily session, as Pipecat's runner reads it."""
    return body.get("transport") == "daily" or (body.get("transport") is None and bool(body.get("createDailyRoom")))

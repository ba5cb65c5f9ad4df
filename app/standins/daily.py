"""A loopback stand-in for Daily's REST API: rooms and meeting tokens.

    POST /rooms              {name?, privacy?, properties: {exp, ...}} -> the room object
    GET  /rooms/{name}       the room object (404 when unknown)
    DELETE /rooms/{name}     {"deleted": true, "name": ...}
    POST /meeting-tokens     {properties: {room_name, exp, is_owner, ...}} -> {"token": ...}

Pipecat's `DailyRESTHelper` runs against it unchanged:

    async with DailyStandIn() as daily:
        helper = DailyRESTHelper(daily_api_key=API_KEY, daily_api_url=daily.api_url, aiohttp_session=s)
        daily.script.then(Fault("fail", status=500))   # the next request fails

Every request needs `Authorization: Bearer <api_key>` (else 401). Each authorized request takes
the next `Fault` of its `Script`: "refuse" answers 401, "fail" the fault's status, "hang" never
answers. Rooms and tokens made are kept in `rooms` and `tokens` for tests to check.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import datetime, timezone

from aiohttp import web

from app.standins.fault import Script, hang_forever

API_KEY = "daily-standin-key"
DOMAIN = "https://frontdesk-standin.daily.co"
_BODY = web.RequestKey("body", dict)


class DailyStandIn:
    """Daily's REST API on 127.0.0.1; `api_url` is the base URL to configure (`.../v1`)."""

    def __init__(self, *, api_key: str | None = API_KEY, script: Script | None = None, port: int = 0) -> None:
        self.api_key = api_key
        self.script = script if script is not None else Script()
        self.port = port
        self.rooms: dict[str, dict] = {}
        self.tokens: dict[str, dict] = {}  # token -> its properties
        self._runner: web.AppRunner | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def start(self) -> None:
        app = web.Application(middlewares=[self._gate])
        app.router.add_post("/v1/rooms", self._create_room)
        app.router.add_get("/v1/rooms/{name}", self._get_room)
        app.router.add_delete("/v1/rooms/{name}", self._delete_room)
        app.router.add_post("/v1/meeting-tokens", self._create_token)
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.1, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> DailyStandIn:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @web.middleware
    async def _gate(self, request: web.Request, handler) -> web.StreamResponse:
        """The bearer check, then the script's fault for this request."""
        if self.api_key is not None and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return error_response(401, "authentication-error", "Invalid API key")
        body = await _json(request)
        if body is None:
            return error_response(400, "invalid-request-error", "the request body is not valid JSON")
        fault = self.script.next({"method": request.method, "path": request.path, "body": body})
        if fault.kind == "refuse":
            return error_response(401, "authentication-error", "stand-in fault: refuse")
        if fault.kind == "fail":
            kind = "rate-limit-error" if fault.status == 429 else "server-error"
            return error_response(fault.status, kind, f"stand-in fault: {fault.status}")
        if fault.kind in ("hang", "stall"):
            await hang_forever()
        await asyncio.sleep(fault.latency_s)
        request[_BODY] = body
        return await handler(request)

    async def _create_room(self, request: web.Request) -> web.Response:
        body = request[_BODY]
        name = body.get("name") or uuid.uuid4().hex[:12]
        if name in self.rooms:
            return error_response(400, "invalid-request-error", f"a room named {name} already exists")
        room = {
            "id": str(uuid.uuid4()), "name": name, "api_created": True, "privacy": body.get("privacy", "public"),
            "url": f"{DOMAIN}/{name}", "created_at": _now(), "config": body.get("properties") or {},
        }  # fmt: skip
        self.rooms[name] = room
        return web.json_response(room)

    async def _get_room(self, request: web.Request) -> web.Response:
        room = self.rooms.get(request.match_info["name"])
        if room is None:
            return error_response(404, "not-found", f"room {request.match_info['name']} not found")
        return web.json_response(room)

    async def _delete_room(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if self.rooms.pop(name, None) is None:
            return error_response(404, "not-found", f"room {name} not found")
        return web.json_response({"deleted": True, "name": name})

    async def _create_token(self, request: web.Request) -> web.Response:
        properties = request[_BODY].get("properties") or {}
        room = properties.get("room_name")
        if room is not None and room not in self.rooms:
            return error_response(400, "invalid-request-error", f"room_name {room} does not exist")
        exp = properties.get("exp")
        if exp is not None and exp <= time.time():
            return error_response(400, "invalid-request-error", "exp is in the past")
        token = f"standin.{uuid.uuid4().hex}"
        self.tokens[token] = properties
        return web.json_response({"token": token})


def error_response(status: int, error: str, info: str) -> web.Response:
    """Daily's error body: `{"error": ..., "info": ...}`."""
    return web.json_response({"error": error, "info": info}, status=status)


async def _json(request: web.Request) -> dict | None:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


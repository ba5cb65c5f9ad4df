"""A loopback stand-in for the part of Twilio's REST API a call uses (`https://api.twilio.com`).

`telephony.twilio.base_url` in bot.yaml (or any client's base URL) points at it:

    async with TwilioStandIn() as twilio:
        twilio.add_call("CA...", from_="+15551234567", to="+15557654321")
        ... base_url=twilio.base_url ...
        update = await twilio.wait_for("update")    # the bot hung up or transferred

Routes (API version 2010-04-01, form-encoded bodies, JSON answers, HTTP Basic auth with the
account SID and auth token; a wrong pair gets Twilio's 401 error 20003):

    POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json
         `Status=completed|canceled` ends the call; `Twiml=<Response>...` (or `Url=`) gives it new
         instructions (a transfer is `<Dial>number</Dial>`). A call not known is 404 (20404); new
         instructions for a call that has ended are 400 (21220, "Call is not in-progress").
    POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}/Recordings.json      start a recording
    POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}/Recordings/{Sid}.json `Status=paused|
         in-progress|stopped`
    GET  /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}/Recordings.json      list them

Every request that passed authentication is kept in `requests`, in order. Error bodies are
Twilio's (`code`, `message`, `more_info`, `status`) and never repeat a credential.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
from dataclasses import dataclass, field
from email.utils import formatdate

from aiohttp import web

ACCOUNT_SID = "AC" + "0" * 31 + "1"
AUTH_TOKEN = "standin-twilio-auth-token"
API = "/2010-04-01/Accounts/{account}"
ERRORS = {
    20003: (401, "Authenticate"),
    20404: (404, "The requested resource {path} was not found"),
    21220: (400, "Call is not in-progress. Cannot redirect."),
    21218: (400, "Invalid recording status"),
}


@dataclass
class StandInCall:
    sid: str
    from_: str
    to: str
    status: str = "in-progress"
    twiml: list[str] = field(default_factory=list)  # instructions given by updates, in order
    recordings: list[dict] = field(default_factory=list)


@dataclass(frozen=True)
class ApiRequest:
    """One authenticated request: `kind` is update, start_recording, update_recording or list_recordings."""

    kind: str
    method: str
    path: str
    call_sid: str
    params: dict[str, str]
    at: float  # time.monotonic()


class TwilioStandIn:
    """Twilio's call-control REST API on 127.0.0.1; `async with TwilioStandIn() as t: t.base_url`."""

    def __init__(self, *, account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN, port: int = 0):
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.port = port
        self.calls: dict[str, StandInCall] = {}
        self.requests: list[ApiRequest] = []
        self.refused = 0  # requests refused for their credentials
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add_call(self, sid: str, *, from_: str, to: str) -> StandInCall:
        call = StandInCall(sid, from_, to)
        self.calls[sid] = call
        return call

    async def wait_for(self, kind: str, timeout_s: float = 10.0) -> ApiRequest:
        """The first request of `kind`, waiting for it to arrive."""
        async with asyncio.timeout(timeout_s):
            async with self._changed:
                await self._changed.wait_for(lambda: any(r.kind == kind for r in self.requests))
        return next(r for r in self.requests if r.kind == kind)

    async def start(self) -> None:
        app = web.Application()
        base = API.format(account="{account}")
        app.router.add_post(base + "/Calls/{call}.json", self._update_call)
        app.router.add_post(base + "/Calls/{call}/Recordings.json", self._start_recording)
        app.router.add_get(base + "/Calls/{call}/Recordings.json", self._list_recordings)
        app.router.add_post(base + "/Calls/{call}/Recordings/{recording}.json", self._update_recording)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> TwilioStandIn:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # --- requests ---------------------------------------------------------------------------------

    async def _accept(self, request: web.Request, kind: str) -> tuple[StandInCall | None, dict[str, str], web.Response | None]:
        if not self._authorized(request):
            self.refused += 1
            return None, {}, error(20003, request.path)
        params = {k: str(v) for k, v in (await request.post()).items()}
        call_sid = request.match_info["call"]
        async with self._changed:
            self.requests.append(ApiRequest(kind, request.method, request.path, call_sid, params, time.monotonic()))
            self._changed.notify_all()
        call = self.calls.get(call_sid)
        return call, params, (None if call else error(20404, request.path))

    def _authorized(self, request: web.Request) -> bool:
        if request.match_info["account"] != self.account_sid:
            return False
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return secrets.compare_digest(user, self.account_sid) and secrets.compare_digest(password, self.auth_token)

    async def _update_call(self, request: web.Request) -> web.Response:
        call, params, refusal = await self._accept(request, "update")
        if refusal is not None or call is None:
            return refusal or error(20404, request.path)
        status = params.get("Status")
        if status == "completed":
            call.status = "completed"
        elif status == "canceled":  # cancels a call that has not been answered; an answered one goes on
            call.status = "canceled" if call.status in ("queued", "ringing") else call.status
        elif "Twiml" in params or "Url" in params:
            if call.status != "in-progress":
                return error(21220, request.path)
            call.twiml.append(params.get("Twiml") or f"<Redirect>{params['Url']}</Redirect>")
        return web.json_response(self._call_json(call))

    async def _start_recording(self, request: web.Request) -> web.Response:
        call, params, refusal = await self._accept(request, "start_recording")
        if refusal is not None or call is None:
            return refusal or error(20404, request.path)
        recording = {
            "sid": "RE" + secrets.token_hex(16), "account_sid": self.account_sid, "call_sid": call.sid,
            "status": "in-progress", "channels": int(params.get("RecordingChannels") == "dual") + 1,
            "source": "StartCallRecordingAPI", "track": params.get("RecordingTrack", "both"),
            "date_created": formatdate(usegmt=True), "api_version": "2010-04-01",
        }  # fmt: skip
        call.recordings.append(recording)
        return web.json_response(recording, status=201)

    async def _update_recording(self, request: web.Request) -> web.Response:
        call, params, refusal = await self._accept(request, "update_recording")
        if refusal is not None or call is None:
            return refusal or error(20404, request.path)
        recording = next((r for r in call.recordings if r["sid"] == request.match_info["recording"]), None)
        if recording is None:
            return error(20404, request.path)
        status = params.get("Status")
        if status not in ("paused", "in-progress", "stopped"):
            return error(21218, request.path)
        recording["status"] = "completed" if status == "stopped" else status
        return web.json_response(recording)

    async def _list_recordings(self, request: web.Request) -> web.Response:
        call, _, refusal = await self._accept(request, "list_recordings")
        if refusal is not None or call is None:
            return refusal or error(20404, request.path)
        return web.json_response({"recordings": call.recordings, "page": 0, "page_size": 50})

    def _call_json(self, call: StandInCall) -> dict:
        return {
            "sid": call.sid, "account_sid": self.account_sid, "from": call.from_, "to": call.to,
            "status": call.status, "direction": "inbound", "api_version": "2010-04-01",
            "uri": f"{API.format(account=self.account_sid)}/Calls/{call.sid}.json",
        }  # fmt: skip


def error(code: int, path: str) -> web.Response:
    """Twilio's error body (https://www.twilio.com/docs/errors/<code>)."""
    status, message = ERRORS[code]
    body = {"code": code, "message": message.format(path=path), "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}
    return web.json_response(body, status=status)

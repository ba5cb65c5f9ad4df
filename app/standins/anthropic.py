"""A loopback stand-in for Anthropic's Messages API (`POST /v1/messages`), streaming and not.

The `anthropic` SDK and Pipecat's `AnthropicLLMService` run against it unchanged:

    async with AnthropicStandIn(responder=echo_responder) as claude:
        client = AsyncAnthropic(api_key=API_KEY, base_url=claude.base_url, max_retries=0)
        claude.script.then(Fault("fail", status=529))   # the next request is overloaded

What it answers comes from a `Responder` (text, tool calls, or both); how it answers from its
`Script` of `Fault`s. `received` keeps each request with when it arrived and whether the client
went away before the answer was complete (a cancelled request). Usage is estimated (about four characters a token) and prompt caching is
simulated: a `cache_control` prefix is written the first time it is seen and read after that.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web
from loguru import logger

from app.brain.service import answer
from app.brain.understand import Say
from app.flows.session import CallSession
from app.standins.fault import Fault, Script, hang_forever

API_KEY = "sk-ant-standin"
NO_TOOL_TEXT = "Sorry, I can't do that right now."
ERROR_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
    404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
    500: "api_error", 529: "overloaded_error",
}  # fmt: skip
_WORD = re.compile(r"\S+\s*")
_JSON_CHUNK = 16  # characters of tool input per input_json_delta


@dataclass(frozen=True)
class ToolCall:
    name: str
    input: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Reply:
    """What "Claude" says: text, then tool calls (either may be empty)."""

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()

    @property
    def stop_reason(self) -> str:
        return "tool_use" if self.tool_calls else "end_turn"


@dataclass
class Received:
    """One request as the stand-in saw it (times are `time.monotonic()`)."""

    at: float
    body: dict
    cancelled: bool = False  # the client went away before the answer was complete
    answered_at: float | None = None  # the answer's first byte
    reply: Reply | None = None

    @property
    def took_s(self) -> float | None:
        """From the request to the answer's first byte: the latency played plus the stand-in's own
        work (composing the reply, counting usage), as a real model's first-token time holds both."""
        return None if self.answered_at is None else self.answered_at - self.at


class Responder(Protocol):
    def __call__(self, body: dict) -> Reply: ...


def echo_responder(body: dict) -> Reply:
    """Repeats the last user text back."""
    said = _text(_last_user(body.get("messages") or []))
    return Reply(text=f"You said: {said}" if said else "Hello! How can I help you today?")


def local_brain_responder(
    get_session: Callable[[], CallSession], get_messages: Callable[[], list]
) -> Responder:
    """Answers what frontdesk's local brain would: `app.brain.service.answer` on the live call.

    The live context (`get_messages()`, Pipecat's universal format) is used rather than the wire
    body, which is in Anthropic's format, with the caller's words the request ends with when the
    live context does not hold them yet (an early start on an interim transcript runs on a copy of
    the context, written only once the final transcript confirms it). A function the request does
    not offer as a tool is answered with `NO_TOOL_TEXT` and a warning."""

    def respond(body: dict) -> Reply:
        messages = get_messages()
        if (said := _ahead(body, messages)) is not None:
            messages = [*messages, {"role": "user", "content": said}]
        decision = answer(get_session(), messages)
        if isinstance(decision, Say):
            return Reply(text=decision.text)
        offered = [tool.get("name") for tool in body.get("tools") or [] if isinstance(tool, dict)]
        if decision.function not in offered:
            logger.warning(f"anthropic stand-in: the brain calls {decision.function!r}, not among the tools {offered}")
            return Reply(text=NO_TOOL_TEXT)
        return Reply(tool_calls=(ToolCall(decision.function, dict(decision.arguments)),))

    return respond


class AnthropicStandIn:
    """`POST /v1/messages` on 127.0.0.1; use as `async with AnthropicStandIn(...) as s: s.base_url`.

    Args:
        responder: what to answer each request with.
        api_key: the `x-api-key` expected (None accepts any); a wrong one gets a 401.
        latency_s: wait before the first byte of a normal answer (the script's default fault);
            not allowed together with `script`.
        words_per_chunk: words per text delta when streaming.
        chunk_gap_s: wait between streamed deltas.
        script: the faults to play; default answers normally after `latency_s`.
        port: 0 picks a free port.

    A request with a wrong key or a malformed body is rejected before it reaches the script.
    """

    def __init__(
        self,
        responder: Responder = echo_responder,
        *,
        api_key: str | None = API_KEY,
        latency_s: float = 0.0,
        words_per_chunk: int = 3,
        chunk_gap_s: float = 0.0,
        script: Script | None = None,
        port: int = 0,
    ) -> None:
        if script is not None and latency_s:
            raise ValueError("give latency_s or script, not both (set the latency in the script's faults)")
        self.responder = responder
        self.api_key = api_key
        self.words_per_chunk = max(1, words_per_chunk)
        self.chunk_gap_s = chunk_gap_s
        self.script = script if script is not None else Script(default=Fault(latency_s=latency_s))
        self.port = port
        self.received: list[Received] = []
        self._cached: set[str] = set()
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/messages", self._messages)
        # handler_cancellation ends a hung handler when its client goes away; the short shutdown
        # timeout cancels the ones still hanging at stop() instead of waiting a minute for them.
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.1, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> AnthropicStandIn:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        arrived = time.monotonic()
        if self.api_key is not None and request.headers.get("x-api-key") != self.api_key:
            return error_response(401, "invalid x-api-key")
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return error_response(400, "the request body is not valid JSON")
        problem = _invalid(body)
        if problem:
            return error_response(400, problem)
        received = Received(at=arrived, body=body)
        self.received.append(received)
        try:
            return await self._answer(request, body, received)
        except (asyncio.CancelledError, ConnectionResetError):
            received.cancelled = True
            raise

    async def _answer(self, request: web.Request, body: dict, received: Received) -> web.StreamResponse:
        fault = self.script.next(body)
        if fault.kind in ("refuse", "fail"):
            return error_response(fault.http_status, f"stand-in fault: {fault.kind}")
        if fault.kind == "hang":
            await hang_forever()
        await asyncio.sleep(fault.latency_s)
        reply = received.reply = self.responder(body)
        usage = self._usage(body, reply)
        if not body.get("stream"):
            if fault.kind == "stall":  # headers, then nothing
                response = web.StreamResponse(headers={"content-type": "application/json"})
                await response.prepare(request)
                received.answered_at = time.monotonic()
                await hang_forever()
            answer = web.json_response(message_json(body, reply, usage), headers=_request_id())
            received.answered_at = time.monotonic()
            return answer
        return await self._stream(request, body, reply, usage, fault, received)

    async def _stream(self, request: web.Request, body: dict, reply: Reply, usage: dict, fault: Fault, received: Received) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream", "cache-control": "no-cache", **_request_id()})
        await response.prepare(request)
        received.answered_at = time.monotonic()
        events = stream_events(body, reply, usage, self.words_per_chunk)
        if fault.kind == "stall":
            events = _until_chunk(events, fault.after)
        first = True
        for name, data, is_chunk in events:
            if is_chunk and not first and self.chunk_gap_s:
                await asyncio.sleep(self.chunk_gap_s)
            first = first and not is_chunk
            await response.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
        if fault.kind == "stall":
            await hang_forever()
        await response.write_eof()
        return response

    def _usage(self, body: dict, reply: Reply) -> dict:
        total = _tokens([body.get("tools"), body.get("system"), body.get("messages")])
        prefix = _cache_prefix(body)
        cached = _tokens(prefix) if prefix else 0
        key = json.dumps(prefix, sort_keys=True)
        read = bool(prefix) and key in self._cached
        if prefix:
            self._cached.add(key)
        output = _tokens([reply.text, [(c.name, c.input) for c in reply.tool_calls]])
        return {
            "input_tokens": max(1, total - cached),
            "cache_creation_input_tokens": 0 if read else cached,
            "cache_read_input_tokens": cached if read else 0,
            "output_tokens": output,
        }


def error_response(status: int, message: str) -> web.Response:
    """Anthropic's error body for an HTTP status."""
    kind = ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    data = {"type": "error", "error": {"type": kind, "message": message}}
    return web.json_response(data, status=status, headers=_request_id())


def message_json(body: dict, reply: Reply, usage: dict) -> dict:
    """The non-streaming answer: a complete Message."""
    content: list[dict] = [{"type": "text", "text": reply.text}] if reply.text else []
    content += [{"type": "tool_use", "id": _id("toolu_"), "name": c.name, "input": c.input} for c in reply.tool_calls]
    return {
        "id": _id("msg_"), "type": "message", "role": "assistant", "model": body.get("model"),
        "content": content, "stop_reason": reply.stop_reason, "stop_sequence": None, "usage": usage,
    }  # fmt: skip


def stream_events(body: dict, reply: Reply, usage: dict, words_per_chunk: int = 3) -> list[tuple[str, dict, bool]]:
    """The SSE events of a streamed answer, as (event, data, is_chunk) with deltas as chunks."""
    start = {**message_json(body, Reply(), usage), "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
    events: list[tuple[str, dict, bool]] = [("message_start", {"type": "message_start", "message": start}, False)]
    blocks: list[tuple[dict, list[dict]]] = []
    if reply.text:
        words = _WORD.findall(reply.text) or [reply.text]
        pieces = ["".join(words[i : i + words_per_chunk]) for i in range(0, len(words), words_per_chunk)]
        blocks.append(({"type": "text", "text": ""}, [{"type": "text_delta", "text": p} for p in pieces]))
    for call in reply.tool_calls:
        raw = json.dumps(call.input)
        pieces = [raw[i : i + _JSON_CHUNK] for i in range(0, len(raw), _JSON_CHUNK)]
        block = {"type": "tool_use", "id": _id("toolu_"), "name": call.name, "input": {}}
        blocks.append((block, [{"type": "input_json_delta", "partial_json": p} for p in pieces]))
    for index, (block, deltas) in enumerate(blocks):
        events.append(("content_block_start", {"type": "content_block_start", "index": index, "content_block": block}, False))
        if index == 0:
            events.append(("ping", {"type": "ping"}, False))
        events += [("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d}, True) for d in deltas]
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}, False))
    delta = {"stop_reason": reply.stop_reason, "stop_sequence": None}
    events.append(("message_delta", {"type": "message_delta", "delta": delta, "usage": usage}, False))
    events.append(("message_stop", {"type": "message_stop"}, False))
    return events


def _until_chunk(events: list[tuple[str, dict, bool]], after: int) -> list[tuple[str, dict, bool]]:
    """The events up to the `after`-th chunk (or the last chunk, if there are fewer)."""
    chunks = [i for i, (_, _, is_chunk) in enumerate(events) if is_chunk]
    if not chunks:
        return events[:1]
    if after <= 0:
        return events[: chunks[0]]
    return events[: chunks[min(after, len(chunks)) - 1] + 1]


def _invalid(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "the request body must be a JSON object"
    if not isinstance(body.get("model"), str):
        return "model: field required"
    if not isinstance(body.get("max_tokens"), int):
        return "max_tokens: field required"
    if not isinstance(body.get("messages"), list):
        return "messages: field required"
    return None


def _cache_prefix(body: dict) -> list | None:
    """Tools, system and messages blocks up to the last one marked `cache_control`, in order."""
    parts: list = list(body.get("tools") or [])
    system = body.get("system")
    parts += system if isinstance(system, list) else [system] if system else []
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        parts += content if isinstance(content, list) else [content]
    marked = [i for i, part in enumerate(parts) if isinstance(part, dict) and "cache_control" in part]
    return parts[: marked[-1] + 1] if marked else None


def _tokens(value: Any) -> int:
    return max(1, len(json.dumps(value)) // 4)


def _ahead(body: dict, messages: list) -> str | None:
    """The caller's words the request ends with, if the live context does not end with them."""
    last = (body.get("messages") or [{}])[-1]
    if not isinstance(last, dict) or last.get("role") != "user":
        return None
    content = last.get("content")
    blocks = content if isinstance(content, list) else [{"type": "text", "text": content}]
    texts = [b.get("text", "") for b in blocks if isinstance(b, dict) and b.get("type") == "text"]
    if not texts or not texts[-1].strip():
        return None
    live = messages[-1] if messages and isinstance(messages[-1], dict) else {}
    return None if _words(_text(live)) == _words(texts[-1]) else texts[-1]


def _words(text: str) -> list[str]:
    return re.sub(r"[^\w\s]", " ", text.casefold()).split()


def _last_user(messages: list) -> dict:
    return next((m for m in reversed(messages) if isinstance(m, dict) and m.get("role") == "user"), {})


def _text(message: dict) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def _id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:24]


def _request_id() -> dict[str, str]:
    return {"request-id": _id("req_")}

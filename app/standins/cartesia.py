"""A loopback stand-in for Cartesia's TTS websocket (`wss://api.cartesia.ai/tts/websocket`).

Pipecat's `CartesiaTTSService` runs against it unchanged when given `url=standin.url`:

    async with CartesiaStandIn(synthesizer=tone) as cartesia:
        tts = CartesiaTTSService(api_key=cartesia.api_key, url=cartesia.url, ...)

Protocol (Cartesia-Version 2026-03-01). The client authenticates with `X-API-Key` /
`Cartesia-Version` headers or `?api_key=&cartesia_version=` query parameters; a wrong key is
answered 401 at the handshake. It then sends JSON generation requests

    {"transcript", "continue", "context_id", "model_id", "voice", "output_format": {"container":
     "raw", "encoding": "pcm_s16le", "sample_rate"}, "add_timestamps", ...}

and `{"context_id", "cancel": true}`. A context (one response) is answered with `chunk`
messages (base64 PCM), `timestamps` messages when asked for, and `done` once its input is
finished (`continue: false`) and all its audio has been sent; or with one `error` message
(`done: true`, `status_code`, `title`, `message`, ...), after which nothing more comes for it.

Faults (`app.standins.fault`) are drawn one per context, at the context's first message. A
connection-level refuse is decided at the handshake: if the next scripted fault is "refuse"
(or the default is), the handshake is answered 401 and that fault is used up. A "refuse" drawn
for a context of an open connection is answered with a 401 error message.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any, ClassVar, Protocol
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from app.standins.fault import Fault, Script, hang_forever

API_KEY = "standin-cartesia-key"
PATH = "/tts/websocket"
STRUCTURED_ERRORS_SINCE = "2026-03-01"  # older API versions get {"error": "Title: Message"}
PUBLISHED_FIRST_AUDIO_S = 0.09  # Cartesia's published time to first audio (Sonic)

# status -> (error_code, title, message). Only the 429 code is Cartesia's documented one.
ERRORS: dict[int, tuple[str | None, str, str]] = {
    400: ("invalid_request", "Invalid request", "The request could not be processed."),
    401: ("invalid_api_key", "Unauthorized", "The API key is missing or invalid."),
    429: ("concurrency_limited", "Too many concurrent requests", "You have exceeded your plan's concurrency limit."),
    500: (None, "Internal server error", "An internal error occurred while generating audio."),
    529: (None, "Service overloaded", "The service is temporarily overloaded, please retry."),
}


class Synthesizer(Protocol):
    """Text -> mono 16-bit little-endian PCM at `sample_rate`. Called off the event loop, unless
    it says it is cheap enough to run on it (`inline = True`)."""

    def __call__(self, text: str, sample_rate: int) -> bytes: ...


@dataclass(frozen=True)
class ToneSynthesizer:
    """A quiet sine tone, `seconds_per_char` per character of text: cheap audio for fast tests."""

    inline: ClassVar[bool] = True  # cheap (~0.1 ms a sentence): made on the event loop, not in a thread
    seconds_per_char: float = 0.06
    frequency_hz: float = 440.0
    amplitude: float = 0.1

    def __call__(self, text: str, sample_rate: int) -> bytes:
        import numpy as np

        samples = int(len(text.strip()) * self.seconds_per_char * sample_rate)
        t = np.arange(samples) / sample_rate
        wave = self.amplitude * 32767 * np.sin(2 * math.pi * self.frequency_hz * t)
        return wave.astype("<i2").tobytes()


tone = ToneSynthesizer()


def resample_pcm16(pcm: bytes, from_rate: int, to_rate: int) -> bytes:
    if from_rate == to_rate or not pcm:
        return pcm
    import numpy as np
    import soxr

    samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2")
    return soxr.resample(samples, from_rate, to_rate).astype("<i2").tobytes()


class PiperSynthesizer:
    """frontdesk's embedded Piper voice (one per process, shared with the Piper provider)."""

    def __init__(self, model_path: str | Path | None = None):
        self.model_path = Path(model_path) if model_path else None

    def __call__(self, text: str, sample_rate: int) -> bytes:
        from app.providers.piper import shared_piper_voice, synthesize

        if self.model_path is None:
            from app.providers.speech import piper_voice_dir

            self.model_path = piper_voice_dir() / "en_US-joe-medium.onnx"
        voice = shared_piper_voice(self.model_path)
        pcm = b"".join(synthesize(voice, text)) if text.strip() else b""
        return resample_pcm16(pcm, voice.config.sample_rate, sample_rate)


@dataclass
class ContextLog:
    """What the client asked for in one context, and what the stand-in did with it."""

    context_id: str
    fault: Fault
    model_id: str | None = None
    voice: dict | None = None
    output_format: dict = field(default_factory=dict)
    add_timestamps: bool = False
    transcripts: list[str] = field(default_factory=list)
    finished: bool = False  # a `continue: false` message arrived
    cancelled: bool = False
    chunks_sent: int = 0
    audio_bytes_sent: int = 0
    done_sent: bool = False
    error_sent: int | None = None  # status of the error message sent, if any
    first_audio_s: float | None = None  # from the context's first message to its first chunk
    started_at: float = field(default_factory=time.monotonic)

    @property
    def text(self) -> str:
        return "".join(self.transcripts)

    @property
    def sample_rate(self) -> int:
        return int(self.output_format.get("sample_rate") or 0)


@dataclass
class _Context:
    log: ContextLog
    pending: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    task: asyncio.Task | None = None


class _Connection:
    """One client websocket: its contexts and the tasks that speak them."""

    def __init__(self, standin: CartesiaStandIn, ws: ServerConnection, version: str):
        self.standin = standin
        self.ws = ws
        self.version = version
        self.contexts: dict[str, _Context] = {}

    async def run(self) -> None:
        try:
            async for raw in self.ws:
                await self._on_message(raw)
        except ConnectionClosed:
            pass
        finally:
            tasks = [c.task for c in self.contexts.values() if c.task and not c.task.done()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _on_message(self, raw: str | bytes) -> None:
        try:
            msg = json.loads(raw)
            if not isinstance(msg, dict):
                raise ValueError("not an object")
        except ValueError:
            await self.send_error(None, 400, "Messages must be JSON objects.")
            return
        self.standin.messages.append(msg)
        context_id = msg.get("context_id")
        if not context_id:
            await self.send_error(None, 400, "context_id is required.")
            return
        context = self.contexts.get(context_id)
        if msg.get("cancel"):
            if context:
                context.log.cancelled = True
                if context.task:
                    context.task.cancel()
            return
        if context is None:
            context = self._open(context_id, msg)
        elif context.log.finished:
            if str(msg.get("transcript") or ""):
                await self.send_error(context_id, 400, "The context has already been closed.")
            return
        transcript = str(msg.get("transcript") or "")
        context.log.transcripts.append(transcript)
        context.pending.put_nowait(transcript)
        if msg.get("continue") is False:
            context.log.finished = True
            context.pending.put_nowait(None)

    def _open(self, context_id: str, msg: dict) -> _Context:
        output_format = msg.get("output_format") or {}
        fault = self.standin.script.next(
            {"context_id": context_id, "transcript": msg.get("transcript", ""), "model_id": msg.get("model_id")}
        )
        log = ContextLog(
            context_id=context_id,
            fault=fault,
            model_id=msg.get("model_id"),
            voice=msg.get("voice"),
            output_format=output_format,
            add_timestamps=bool(msg.get("add_timestamps")),
        )
        self.standin.contexts.append(log)
        context = _Context(log)
        self.contexts[context_id] = context
        problem = _unsupported(output_format)
        speak = self._fail(context, 400, problem) if problem else self._speak(context)
        context.task = asyncio.create_task(speak, name=f"cartesia-standin-{context_id}")
        return context

    async def _fail(self, context: _Context, status: int, message: str | None = None) -> None:
        context.log.error_sent = status
        await self.send_error(context.log.context_id, status, message)

    async def _speak(self, context: _Context) -> None:
        log, fault, standin = context.log, context.log.fault, self.standin
        try:
            if fault.kind in ("refuse", "fail"):
                await self._fail(context, fault.http_status)
                return
            if fault.kind == "hang":
                await hang_forever()
            first_audio_at = log.started_at + max(fault.latency_s, standin.first_audio_latency_s)
            offset_s = 0.0
            while (text := await context.pending.get()) is not None:
                if not text.strip():
                    continue
                try:
                    if getattr(standin.synthesizer, "inline", False):
                        audio = standin.synthesizer(text, log.sample_rate)
                    else:
                        audio = await asyncio.to_thread(standin.synthesizer, text, log.sample_rate)
                except Exception as e:  # a broken synthesizer is the provider failing
                    await self._fail(context, 500, f"Synthesis failed: {e}")
                    return
                await asyncio.sleep(max(0.0, first_audio_at - time.monotonic()))
                for i, chunk in enumerate(_chunks(audio, log.sample_rate, standin.chunk_ms)):
                    if fault.kind == "stall" and log.chunks_sent >= fault.after:
                        await hang_forever()
                    await self._send_chunk(log, chunk)
                    if i == 0 and log.add_timestamps:
                        await self.send(_timestamps(log.context_id, text, offset_s, len(audio) / 2 / log.sample_rate))
                    if standin.chunk_gap_s:
                        await asyncio.sleep(standin.chunk_gap_s)
                offset_s += len(audio) / 2 / log.sample_rate
            log.done_sent = True
            await self.send({"type": "done", "done": True, "status_code": 206, "context_id": log.context_id})
        except ConnectionClosed:
            pass

    async def _send_chunk(self, log: ContextLog, chunk: bytes) -> None:
        if log.first_audio_s is None:
            log.first_audio_s = time.monotonic() - log.started_at
        log.chunks_sent += 1
        log.audio_bytes_sent += len(chunk)
        await self.send(
            {
                "type": "chunk",
                "data": base64.b64encode(chunk).decode("ascii"),
                "done": False,
                "status_code": 206,
                "step_time": 0,
                "context_id": log.context_id,
            }
        )

    async def send(self, msg: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(msg))

    async def send_error(self, context_id: str | None, status: int, message: str | None = None) -> None:
        error_code, title, default_message = ERRORS.get(status, (None, f"Error {status}", "The request failed."))
        message = message or default_message
        msg: dict[str, Any] = {"type": "error", "done": True, "status_code": status}
        if self.version >= STRUCTURED_ERRORS_SINCE:
            msg |= {"error_code": error_code, "title": title, "message": message, "request_id": f"standin:{context_id}"}
        else:
            msg["error"] = f"{title}: {message}"
        if context_id:
            msg["context_id"] = context_id
        await self.send(msg)


def _unsupported(output_format: dict) -> str | None:
    if output_format.get("container", "raw") != "raw" or output_format.get("encoding") != "pcm_s16le":
        return "The stand-in only produces raw pcm_s16le audio."
    if not isinstance(output_format.get("sample_rate"), int) or output_format["sample_rate"] <= 0:
        return "output_format.sample_rate must be a positive integer."
    return None


def _chunks(audio: bytes, sample_rate: int, chunk_ms: float) -> list[bytes]:
    size = max(2, int(sample_rate * chunk_ms / 1000) * 2)
    return [audio[i : i + size] for i in range(0, len(audio), size)]


def _timestamps(context_id: str, text: str, offset_s: float, duration_s: float) -> dict[str, Any]:
    """Words of `text` spread over its audio in proportion to their length."""
    words = text.split()
    total = sum(len(w) for w in words) or 1
    starts, ends, t = [], [], offset_s
    for word in words:
        starts.append(round(t, 3))
        t += duration_s * len(word) / total
        ends.append(round(t, 3))
    return {
        "type": "timestamps",
        "done": False,
        "status_code": 206,
        "context_id": context_id,
        "word_timestamps": {"words": words, "start": starts, "end": ends},
    }


class CartesiaStandIn:
    """Cartesia's TTS websocket on 127.0.0.1, speaking with `synthesizer`, faults from `script`.

    Records every client message (`messages`), every context (`contexts`), and the handshakes
    accepted (`connections`, their requests in `requests`) and refused (`refused`).
    """

    def __init__(
        self,
        *,
        synthesizer: Synthesizer | None = None,
        api_key: str | None = API_KEY,
        first_audio_latency_s: float = PUBLISHED_FIRST_AUDIO_S,
        chunk_ms: float = 40.0,
        chunk_gap_s: float = 0.0,
        script: Script | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        """`api_key=None` accepts any non-empty key. The first chunk of a context is sent no
        sooner than max(first_audio_latency_s, fault.latency_s) after its first message."""
        self.synthesizer: Synthesizer = synthesizer or PiperSynthesizer()
        self.api_key = api_key
        self.first_audio_latency_s = first_audio_latency_s
        self.chunk_ms = chunk_ms
        self.chunk_gap_s = chunk_gap_s
        self.script = script or Script()
        self.host = host
        self.port = port
        self.messages: list[dict] = []
        self.contexts: list[ContextLog] = []
        self.connections = 0
        self.requests: list[Request] = []
        self.refused = 0
        self._server: Server | None = None

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}{PATH}"

    def context(self, context_id: str) -> ContextLog:
        return next(c for c in self.contexts if c.context_id == context_id)

    @property
    def transcripts(self) -> dict[str, list[str]]:
        return {c.context_id: c.transcripts for c in self.contexts}

    async def start(self) -> None:
        self._server = await serve(self._serve, self.host, self.port, process_request=self._handshake)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> CartesiaStandIn:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def _handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        if url.path != PATH:
            return connection.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
        key, version = _credentials(request)
        if not key or (self.api_key is not None and key != self.api_key):
            self.refused += 1
            return connection.respond(HTTPStatus.UNAUTHORIZED, "Invalid API key\n")
        if not version:
            return connection.respond(HTTPStatus.BAD_REQUEST, "Cartesia-Version is required\n")
        upcoming = self.script.faults[0] if self.script.faults else self.script.default
        if upcoming.kind == "refuse":
            self.script.next({"handshake": request.path})
            self.refused += 1
            return connection.respond(HTTPStatus.UNAUTHORIZED, "Invalid API key\n")
        return None

    async def _serve(self, ws: ServerConnection) -> None:
        self.connections += 1
        if ws.request:
            self.requests.append(ws.request)
        _, version = _credentials(ws.request) if ws.request else (None, None)
        await _Connection(self, ws, version or "").run()


def _credentials(request: Request) -> tuple[str | None, str | None]:
    """API key and version, from the headers Pipecat sends or the query Cartesia's docs show."""
    query = parse_qs(urlsplit(request.path).query)
    key = request.headers.get("X-API-Key") or next(iter(query.get("api_key", [])), None)
    version = request.headers.get("Cartesia-Version") or next(iter(query.get("cartesia_version", [])), None)
    return key, version

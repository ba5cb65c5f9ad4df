"""Deepgram's live transcription websocket (`/v1/listen`) on loopback.

Pipecat's `DeepgramSTTService(base_url=standin.base_url)` and the deepgram SDK under it run
unchanged against it: the same query string (`model`, `encoding=linear16`, `sample_rate`,
`interim_results`, `keyterm`, ...), `Authorization: Token <key>`, binary audio and the
`KeepAlive` / `Finalize` / `CloseStream` messages in, `Results` / `Metadata` / `SpeechStarted` /
`UtteranceEnd` out.

Utterances are cut by energy: speech starts at the first 20 ms window louder than
`threshold_rms` and ends after `end_silence_s` of quieter audio (both in audio time, so tests
may send audio faster than real time), or at a `Finalize`. A `transcriber(audio, sample_rate)`
gives each utterance its text: `ScriptedTranscriber` (a list, one per utterance) or
`WhisperTranscriber` (frontdesk's embedded model). While speech goes on an interim `Results`
goes out every `interim_interval_s` of audio (if the client asked for `interim_results`; one
still unsent when its utterance's final is due is dropped); the final one (`is_final`,
`speech_final`, and `from_finalize` when it answers a `Finalize`) `final_latency_s` after the
end was detected.

Faults (`app.standins.fault`), two scripts:

- `connect`: one `Fault` per websocket handshake. refuse -> HTTP 401, fail -> HTTP `status`
  (both rejected at the handshake, which the SDK raises as `ApiError`); hang -> the handshake is
  never answered; stall -> the handshake succeeds but nothing is ever sent on that connection;
  `latency_s` delays the handshake.
- `script`: one `Fault` per utterance (drawn when its first result is due). hang -> no result for
  it (nor for a `Finalize` after it); stall -> `after` interim results (asked for or not), then
  nothing (no final); fail -> the socket is closed with 1011 (what Deepgram does on an internal
  error); refuse -> closed with 1008; `latency_s` delays each of its results. Every utterance
  is transcribed whatever its fault, so a scripted list stays one transcript per utterance.

A wrong API key (when `api_key` is set) or a missing one is a 401 at the handshake.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal, Protocol
from urllib.parse import parse_qs, urlsplit

import numpy as np
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from loguru import logger

from app.standins.fault import Fault, Script

WINDOW_S = 0.02  # the energy segmenter's step
SECONDS_PER_WORD = 0.35  # how fast scripted interim text grows
MODEL_INFO = {"name": "general-nova-3", "version": "2024-01-01.0", "arch": "nova-3"}
MODEL_UUID = "00000000-0000-4000-8000-000000000000"


class Transcriber(Protocol):
    """Text for one utterance of linear16 mono audio. Called in a worker thread, unless it says it
    is instant (`inline = True`)."""

    def __call__(self, audio: bytes, sample_rate: int) -> str: ...


class ScriptedTranscriber:
    """Returns `transcripts` one per utterance (whatever its fault), then `default`.

    Interim text is the start of the next transcript, a word per `SECONDS_PER_WORD` of audio.
    """

    inline = True  # instant: called on the event loop, not in a thread

    def __init__(self, transcripts: Iterable[str] = (), default: str = ""):
        self.transcripts = list(transcripts)
        self.default = default
        self.heard: list[float] = []  # seconds of audio in each utterance transcribed
        self._lock = threading.Lock()

    def __call__(self, audio: bytes, sample_rate: int) -> str:
        with self._lock:
            self.heard.append(len(audio) / 2 / sample_rate)
            return self.transcripts.pop(0) if self.transcripts else self.default

    def interim(self, audio: bytes, sample_rate: int) -> str:
        with self._lock:
            words = (self.transcripts[0] if self.transcripts else self.default).split()
        return " ".join(words[: max(1, int(len(audio) / 2 / sample_rate / SECONDS_PER_WORD))])


class WhisperTranscriber:
    """Frontdesk's embedded Whisper model (shared with `EmbeddedWhisperSTT`, one call at a time).

    Interim text is the audio so far transcribed again (~0.3 s of CPU each); `interims=False`
    sends none.
    """

    deferred_interims = True  # each is the audio so far transcribed again: made when due, in a thread

    def __init__(self, model_dir: str | Path | None = None, *, compute_type: str = "int8", language: str = "en", prompt: str | None = None, interims: bool = True):
        self.model_dir = model_dir
        self.compute_type = compute_type
        self.language = language
        self.prompt = prompt
        self.interims = interims

    def __call__(self, audio: bytes, sample_rate: int) -> str:
        from app.providers.speech import whisper_model_dir
        from app.providers.whisper import _transcribe_lock, shared_whisper_model

        model = shared_whisper_model(self.model_dir or whisper_model_dir(), self.compute_type)
        samples = np.frombuffer(audio, dtype=np.int16).astype(np.float32) / 32768.0
        if sample_rate != 16000 and samples.size:
            times = np.arange(int(samples.size * 16000 / sample_rate)) * (sample_rate / 16000)
            samples = np.interp(times, np.arange(samples.size), samples).astype(np.float32)
        with _transcribe_lock:
            segments, _ = model.transcribe(samples, language=self.language, initial_prompt=self.prompt)
            return " ".join(s.text.strip() for s in segments).strip()

    def interim(self, audio: bytes, sample_rate: int) -> str:
        return self(audio, sample_rate) if self.interims else ""


@dataclass(eq=False)
class Utterance:
    """One stretch of speech on a connection, in seconds of that connection's audio."""

    start_s: float
    index: int = 0  # among this connection's utterances
    audio: bytearray = field(default_factory=bytearray)
    end_s: float | None = None
    ended_by: Literal["silence", "finalize", "close"] | None = None
    fault: Fault | None = None  # drawn when its first result is due
    interims: int = 0  # interim results sent
    voiced_s: float = 0.0
    transcript: str | None = None  # the final text sent, if any
    final_due: float | None = None  # monotonic time its final is due, once the end is detected


@dataclass(eq=False)
class DeepgramConnection:
    """What one handshake asked for and what happened on the socket."""

    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    request_id: str
    status: int = 101  # the handshake's HTTP status (101 = accepted)
    fault: Fault = field(default_factory=Fault)
    control: list[str] = field(default_factory=list)  # KeepAlive / Finalize / CloseStream, in order
    audio_bytes: int = 0
    audio_messages: int = 0
    utterances: list[Utterance] = field(default_factory=list)
    sent: list[dict] = field(default_factory=list)  # every JSON message sent
    close_code: int | None = None  # set when the stand-in closed the socket

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None

    @property
    def sample_rate(self) -> int:
        return int(self.param("sample_rate") or 16000)

    @property
    def finals(self) -> list[str]:
        return [m["channel"]["alternatives"][0]["transcript"] for m in self.sent if m.get("type") == "Results" and m["is_final"]]


class DeepgramStandIn:
    """A loopback `/v1/listen`. `async with DeepgramStandIn(...) as s:` then `s.base_url`.

    Interim text comes from `transcriber.interim(audio, sample_rate)` when the transcriber has
    that method, else from the transcriber itself on the audio so far. `connections` records
    every handshake (query, headers, status, what was received and sent).
    """

    def __init__(
        self,
        transcriber: Transcriber | None = None,
        *,
        api_key: str | None = None,
        script: Script | None = None,
        connect: Script | None = None,
        threshold_rms: float = 400.0,
        end_silence_s: float = 0.3,
        min_speech_s: float = 0.1,
        preroll_s: float = 0.2,
        interim_interval_s: float = 0.5,
        final_latency_s: float = 0.15,
        idle_timeout_s: float | None = 10.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        self.transcriber: Transcriber = transcriber or ScriptedTranscriber()
        self.api_key = api_key
        self.script = script or Script()
        self.connect = connect or Script()
        self.threshold_rms = threshold_rms
        self.end_silence_s = end_silence_s
        self.min_speech_s = min_speech_s
        self.preroll_s = preroll_s
        self.interim_interval_s = interim_interval_s
        self.final_latency_s = final_latency_s
        self.idle_timeout_s = idle_timeout_s
        self.connections: list[DeepgramConnection] = []
        self._host, self._port = host, port
        self._server: Server | None = None
        self._closing = asyncio.Event()
        self._accepted: dict[ServerConnection, DeepgramConnection] = {}

    @property
    def base_url(self) -> str:
        """For `DeepgramSTTService(base_url=...)`: `ws://127.0.0.1:<port>`."""
        if self._server is None:
            raise RuntimeError("the stand-in is not running (use `async with`)")
        return f"ws://{self._host}:{self._port}"

    async def __aenter__(self) -> DeepgramStandIn:
        self._closing.clear()
        self._server = await serve(
            self._session, self._host, self._port, process_request=self._handshake, process_response=self._stamp, open_timeout=None
        )
        self._port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc) -> None:
        self._closing.set()  # ends hung handshakes and sessions, so closing does not wait on them
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _handshake(self, ws: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        record = DeepgramConnection(
            path=url.path, query=parse_qs(url.query), headers={k.lower(): v for k, v in request.headers.raw_items()}, request_id=str(uuid.uuid4())
        )
        self.connections.append(record)
        if rejection := self._reject(record):
            return _error_response(record, *rejection)
        record.fault = fault = self.connect.next({"path": url.path, "query": record.query})
        if fault.kind == "hang":
            await self._closing.wait()
            return _error_response(record, 503, "UNAVAILABLE", "The stand-in is closing.")
        if fault.kind in ("refuse", "fail"):
            return _error_response(record, fault.http_status, "INVALID_AUTH" if fault.kind == "refuse" else "INTERNAL", "Fault injected by the stand-in.")
        if fault.latency_s:
            await asyncio.sleep(fault.latency_s)
        self._accepted[ws] = record
        return None

    def _reject(self, record: DeepgramConnection) -> tuple[int, str, str] | None:
        if record.path.rstrip("/") != "/v1/listen":
            return 404, "NOT_FOUND", f"No such endpoint {record.path}."
        scheme, _, key = record.headers.get("authorization", "").partition(" ")
        if scheme.lower() not in ("token", "bearer") or not key or (self.api_key is not None and key != self.api_key):
            return 401, "INVALID_AUTH", "Invalid credentials."
        if record.param("encoding") != "linear16":
            return 400, "Bad Request", f"The stand-in understands encoding=linear16 only, not {record.param('encoding')!r}."
        if (record.param("channels") or "1") != "1":
            return 400, "Bad Request", "The stand-in understands channels=1 only."
        if not (record.param("sample_rate") or "16000").isdigit() or record.sample_rate <= 0:
            return 400, "Bad Request", f"Invalid sample_rate {record.param('sample_rate')!r}."
        if not (record.param("utterance_end_ms") or "0").isdigit():
            return 400, "Bad Request", f"Invalid utterance_end_ms {record.param('utterance_end_ms')!r}."
        return None

    def _stamp(self, ws: ServerConnection, request: Request, response: Response) -> Response:
        if record := self._accepted.get(ws):
            response.headers["dg-request-id"] = record.request_id
        return response

    async def _session(self, ws: ServerConnection) -> None:
        record = self._accepted.pop(ws)
        await _Session(self, ws, record).run()


def _error_response(record: DeepgramConnection, status: int, code: str, message: str) -> Response:
    record.status = status
    body = json.dumps({"err_code": code, "err_msg": message, "request_id": record.request_id}).encode()
    headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(body))), ("dg-request-id", record.request_id)])
    return Response(status, _REASONS.get(status, "Error"), headers, body)


_REASONS = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}

# (when to send, wall clock; what to send, or None to send nothing)
_Outgoing = tuple[float, Callable[[], Awaitable[dict | None]]]


class _Session:
    """One accepted websocket: a receive task cutting utterances, a send task answering them."""

    def __init__(self, standin: DeepgramStandIn, ws: ServerConnection, record: DeepgramConnection):
        self.s, self.ws, self.record = standin, ws, record
        self.rate = record.sample_rate
        self.interim_results = record.param("interim_results") == "true"
        self.vad_events = record.param("vad_events") == "true"
        self.utterance_end_s = int(record.param("utterance_end_ms") or 0) / 1000
        self.window = max(1, round(self.rate * WINDOW_S)) * 2  # bytes
        self.pending = bytearray()
        self.position_s = 0.0  # audio segmented so far
        self.preroll: deque[bytes] = deque(maxlen=max(1, round(standin.preroll_s / WINDOW_S)))
        self.current: Utterance | None = None
        self.quiet_s = 0.0
        self.next_interim_s = 0.0
        self.outbox: asyncio.Queue[_Outgoing | None] = asyncio.Queue()
        self.silent = record.fault.kind == "stall"  # connection-level stall: accept, never answer
        self.closing_stream = False  # CloseStream received
        self.closer: asyncio.Task | None = None  # the closing handshake, once started
        self.transcriptions: list[asyncio.Future[str]] = []

    async def run(self) -> None:
        receiver = asyncio.create_task(self._receive(), name="deepgram-standin-recv")
        sender = asyncio.create_task(self._send(), name="deepgram-standin-send")
        closing = asyncio.create_task(self.s._closing.wait(), name="deepgram-standin-closing")
        pending = {receiver, sender, closing}
        try:
            # The session lasts as long as the socket: the receiver ends when it closes.
            while receiver in pending and closing in pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done - {closing}:
                    if (error := task.exception()) and not isinstance(error, ConnectionClosed):
                        logger.opt(exception=error).error(f"Deepgram stand-in: {error}")
                        self._close(1011, "NET-0000: internal error in the stand-in")
                        pending.discard(receiver)
        finally:
            tasks = [receiver, sender, closing, *self.transcriptions]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.closer is not None:
                await asyncio.gather(self.closer, return_exceptions=True)

    def _close(self, code: int, reason: str) -> None:
        """Start the closing handshake. The receiver goes on reading (and ignoring) what comes in
        meanwhile: the client's answer may be queued behind audio, and an unread queue would
        hold the handshake up for websockets' close_timeout."""
        if self.closer is None:
            self.record.close_code = code
            self.closer = asyncio.create_task(self.ws.close(code, reason))

    # -- receiving -------------------------------------------------------------------------------

    async def _receive(self) -> None:
        """Read until the socket closes (ConnectionClosed)."""
        while True:
            try:
                message = await asyncio.wait_for(self.ws.recv(), self.s.idle_timeout_s)
            except TimeoutError:
                # Deepgram's NET-0001: no audio or KeepAlive for 10 s.
                self._close(1011, "NET-0001: no audio received within the timeout window")
                continue
            if self.closer is not None or self.closing_stream:
                continue
            if isinstance(message, bytes):
                self.record.audio_bytes += len(message)
                self.record.audio_messages += 1
                self._audio(message)
                continue
            try:
                kind = json.loads(message).get("type")
            except (ValueError, AttributeError):
                self._close(1008, "DATA-0000: the message could not be decoded")
                continue
            self.record.control.append(str(kind))
            if kind == "Finalize":
                self._finalize()
            elif kind == "CloseStream" and not self.silent:
                self.closing_stream = True
                self._end_utterance("close")
                self.outbox.put_nowait(None)  # the sender flushes, sends Metadata and closes

    def _audio(self, data: bytes) -> None:
        self.pending += data
        count = len(self.pending) // self.window
        if not count:
            return
        block = bytes(self.pending[: count * self.window])
        del self.pending[: count * self.window]
        levels = _rms(block, count)  # one numpy pass for the message's windows, not one each
        for i in range(count):
            self.position_s += WINDOW_S
            self._window(block[i * self.window : (i + 1) * self.window], levels[i])
            if self.closer is not None:
                return

    def _window(self, chunk: bytes, level: float) -> None:
        """Segment one 20 ms window, of RMS `level`."""
        loud = level >= self.s.threshold_rms
        utterance = self.current
        if utterance is None:
            if not loud:
                self.preroll.append(chunk)
                return
            start = self.position_s - WINDOW_S * (len(self.preroll) + 1)
            utterance = self.current = Utterance(start_s=start, index=len(self.record.utterances))
            self.record.utterances.append(utterance)
            utterance.audio += b"".join(self.preroll)
            self.preroll.clear()
            self.quiet_s = 0.0
            self.next_interim_s = self.position_s + self.s.interim_interval_s
            if self.vad_events and not self.silent:
                self._queue(0.0, _const({"type": "SpeechStarted", "channel": [0, 1], "timestamp": round(self.position_s - WINDOW_S, 3)}))
        utterance.audio += chunk
        if loud:
            utterance.voiced_s += WINDOW_S
            self.quiet_s = 0.0
        else:
            self.quiet_s += WINDOW_S
        if self.quiet_s >= self.s.end_silence_s:
            self._end_utterance("silence")
            return
        if self.position_s >= self.next_interim_s and utterance.voiced_s >= self.s.min_speech_s:
            self.next_interim_s += self.s.interim_interval_s
            fault = self._fault(utterance)
            if fault.kind in ("fail", "refuse"):
                self._close_for(utterance, fault)
                return
            if self.interim_results or fault.kind == "stall":
                self._queue_interim(utterance, fault)

    def _finalize(self) -> None:
        last = self.record.utterances[-1] if self.record.utterances else None
        if self.current is not None:
            self._end_utterance("finalize")
        elif not self.silent and (last is None or last.fault is None or last.fault.kind == "ok"):
            # Nothing left to flush: Deepgram still answers, with an empty final.
            self._queue(self.s.final_latency_s, _const(self._results(Utterance(self.position_s, end_s=self.position_s), "", final=True, from_finalize=True)))

    def _end_utterance(self, ended_by: Literal["silence", "finalize", "close"]) -> None:
        utterance, self.current = self.current, None
        if utterance is None:
            return
        if utterance.voiced_s < self.s.min_speech_s and ended_by == "silence":
            self.record.utterances.remove(utterance)  # a click, not speech
            return
        utterance.ended_by = ended_by
        utterance.end_s = self.position_s - (self.quiet_s if ended_by == "silence" else 0.0)
        fault = self._fault(utterance)
        if fault.kind in ("fail", "refuse"):
            self._close_for(utterance, fault)
            return
        text = self._transcribe(utterance)
        if fault.kind == "stall":
            while utterance.interims < fault.after:
                self._queue_interim(utterance, fault)
        delay = self.s.final_latency_s + fault.latency_s
        utterance.final_due = time.monotonic() + delay
        self._queue(delay, self._final(utterance, fault, text, from_finalize=ended_by == "finalize"))
        if self.utterance_end_s and fault.kind == "ok":
            event = {"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": round(utterance.end_s, 3)}
            self._queue(max(delay, self.utterance_end_s), _const(event))

    def _transcribe(self, utterance: Utterance) -> asyncio.Future[str]:
        """Every utterance is transcribed, whatever its fault, so a scripted list stays in step."""
        if getattr(self.s.transcriber, "inline", False):
            text = asyncio.get_running_loop().create_future()
            text.set_result(self.s.transcriber(bytes(utterance.audio), self.rate))
        else:
            text = asyncio.ensure_future(asyncio.to_thread(self.s.transcriber, bytes(utterance.audio), self.rate))
        self.transcriptions.append(text)
        return text

    def _fault(self, utterance: Utterance) -> Fault:
        if utterance.fault is None:
            if self.silent:
                utterance.fault = Fault("hang")  # the connection's fault, not the utterance's
            else:
                connection = next(i for i, c in enumerate(self.s.connections) if c is self.record)
                utterance.fault = self.s.script.next({"connection": connection, "utterance": utterance.index, "start_s": round(utterance.start_s, 3)})
        return utterance.fault

    def _close_for(self, utterance: Utterance, fault: Fault) -> None:
        self.current = None
        self._transcribe(utterance)  # unheard, but a scripted list stays in step
        if fault.kind == "refuse":
            self._close(1008, "INVALID_AUTH: fault injected by the stand-in")
        else:
            self._close(1011, f"NET-0000: fault injected by the stand-in (status {fault.status})")

    # -- answering -------------------------------------------------------------------------------

    def _queue(self, delay_s: float, make: Callable[[], Awaitable[dict | None]]) -> None:
        self.outbox.put_nowait((time.monotonic() + delay_s, make))

    def _queue_interim(self, utterance: Utterance, fault: Fault) -> None:
        if fault.kind == "hang" or (fault.kind == "stall" and utterance.interims >= fault.after):
            return
        utterance.interims += 1
        audio = bytes(utterance.audio)
        stall = fault.kind == "stall"

        def stale() -> bool:
            # Deepgram sends an interim before the final it precedes. One whose final is already
            # due (the sender fell behind, or its transcription took that long) would only delay
            # that final; one merely behind the end of the audio still goes (audio may arrive
            # faster than real time, and how many loop turns the client takes must not matter).
            return not stall and utterance.final_due is not None and time.monotonic() >= utterance.final_due

        transcribe = getattr(self.s.transcriber, "interim", self.s.transcriber)
        # Its text covers the audio heard so far, so it is decided now: a scripted transcriber's
        # depends on which transcripts the finals have taken. One costly to make (Whisper) is
        # made when it is due, in a thread, and not at all if it is stale by then.
        decided = None if getattr(self.s.transcriber, "deferred_interims", False) else transcribe(audio, self.rate)

        async def interim() -> dict | None:
            if stale():
                return None
            text = decided if decided is not None else await asyncio.to_thread(transcribe, audio, self.rate)
            if (not text and not stall) or stale():
                return None
            end = utterance.start_s + len(audio) / 2 / self.rate
            return self._results(utterance, text, final=False, end_s=end)

        self._queue(fault.latency_s, interim)

    def _final(self, utterance: Utterance, fault: Fault, text: asyncio.Future[str], *, from_finalize: bool) -> Callable[[], Awaitable[dict | None]]:
        async def final() -> dict | None:
            transcript = await text
            if fault.kind != "ok":
                return None
            utterance.transcript = transcript
            return self._results(utterance, transcript, final=True, from_finalize=from_finalize)

        return final

    def _results(self, utterance: Utterance, text: str, *, final: bool, from_finalize: bool = False, end_s: float | None = None) -> dict:
        start = utterance.start_s
        end = end_s if end_s is not None else (utterance.end_s if utterance.end_s is not None else start)
        words = text.split()
        step = (end - start) / max(1, len(words))
        return {
            "type": "Results",
            "channel_index": [0, 1],
            "duration": round(end - start, 3),
            "start": round(start, 3),
            "is_final": final,
            "speech_final": final,
            "from_finalize": from_finalize,
            "channel": {
                "alternatives": [
                    {
                        "transcript": text,
                        "confidence": 0.99 if words else 0.0,
                        "words": [
                            {"word": w.strip(".,?!;:").lower(), "start": round(start + i * step, 3), "end": round(start + (i + 1) * step, 3), "confidence": 0.99, "punctuated_word": w}
                            for i, w in enumerate(words)
                        ],
                    }
                ]
            },
            "metadata": {"request_id": self.record.request_id, "model_info": MODEL_INFO, "model_uuid": MODEL_UUID},
        }

    async def _send(self) -> None:
        while (item := await self.outbox.get()) is not None:
            due, make = item
            if (wait := due - time.monotonic()) > 0:
                await asyncio.sleep(wait)
            if (message := await make()) is not None:
                self.record.sent.append(message)
                await self.ws.send(json.dumps(message))
        metadata = {
            "type": "Metadata",
            "transaction_key": "deprecated",
            "request_id": self.record.request_id,
            "sha256": "0" * 64,
            "created": datetime.now(timezone.utc).isoformat(),
            "duration": round(self.position_s, 3),
            "channels": 1,
            "models": [MODEL_UUID],
            "model_info": {MODEL_UUID: MODEL_INFO},
        }
        self.record.sent.append(metadata)
        await self.ws.send(json.dumps(metadata))
        self._close(1000, "")


def _const(message: dict) -> Callable[[], Awaitable[dict]]:
    async def make() -> dict:
        return message

    return make


def _rms(pcm: bytes, windows: int) -> list[float]:
    """The RMS of each of the `windows` equal parts of 16-bit `pcm`."""
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float32).reshape(windows, -1)
    return np.sqrt(np.einsum("ij,ij->i", samples, samples) / samples.shape[1]).tolist()  # half np.mean's cost

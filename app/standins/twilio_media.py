"""Twilio's side of a Media Stream (a caller on the phone network), written from Twilio's public
message reference, for tests and `bench/concurrent_calls.py`.

    client = MediaStreamsClient(url, call_sid=..., parameters={"from_number": ...})
    async with client:                       # `connected`, then `start`
        utterance = await client.bot_turn()  # the bot's next reply, as played to the caller
        await client.say(caller_audio_16k)   # inbound `media`, 20 ms of mu-law a message
        await client.press("5552223333#")    # `dtmf`

Like Twilio, it sends the caller's audio in real time (silence between turns), plays the bot's
outbound `media` in real time from a buffer, empties that buffer on `clear`, and echoes each
`mark` once the audio sent before it has been played (at once when the buffer is cleared).
The bot's audio is kept per utterance (a stretch of playback with no gap over `gap_s`).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from dataclasses import dataclass, field

import numpy as np
import soxr
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

RATE = 8000
FRAME = 160  # 20 ms of 8 kHz mu-law, what Twilio sends per `media` message
SILENCE = b"\xff" * FRAME  # mu-law zero


# --- G.711 mu-law (ITU-T G.711), on numpy --------------------------------------------------------

_BIAS, _CLIP = 0x84, 8159


def ulaw_encode(pcm: np.ndarray) -> bytes:
    """int16 samples -> mu-law bytes (on 14-bit magnitudes, as the reference coder does)."""
    x = pcm.astype(np.int32) >> 2
    negative = x < 0
    magnitude = np.minimum(np.where(negative, -x, x), _CLIP) + 0x21
    segment = np.floor(np.log2(magnitude)).astype(np.int32) - 5  # 0x21..0x3F -> 0, ..., up to 7
    code = np.where(segment > 7, 0x7F, (segment << 4) | ((magnitude >> (segment + 1)) & 0x0F))
    return (code ^ np.where(negative, 0x7F, 0xFF)).astype(np.uint8).tobytes()


def ulaw_decode(data: bytes) -> np.ndarray:
    """mu-law bytes -> int16 samples."""
    u = ~np.frombuffer(data, dtype=np.uint8).astype(np.int32) & 0xFF
    exponent, mantissa = (u >> 4) & 0x07, u & 0x0F
    magnitude = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return np.where(u & 0x80, -magnitude, magnitude).astype(np.int16)


def to_twilio(pcm16k: np.ndarray) -> bytes:
    """16 kHz int16 speech -> 8 kHz mu-law, as a phone line carries it."""
    audio = soxr.resample(pcm16k.astype(np.float32) / 32768, 16000, RATE)
    return ulaw_encode(np.clip(audio * 32768, -32768, 32767).astype(np.int16))


def to_whisper(ulaw: bytes) -> np.ndarray:
    """8 kHz mu-law -> 16 kHz float32, what Whisper takes."""
    return soxr.resample(ulaw_decode(ulaw).astype(np.float32) / 32768, RATE, 16000)


# --- the stream ---------------------------------------------------------------------------------


@dataclass
class Utterance:
    audio: bytearray = field(default_factory=bytearray)  # mu-law as played
    started: float = 0.0  # time.monotonic() of its first played sample
    ended: float = 0.0  # ... and of the end of its last
    cleared: bool = False  # cut short by a `clear`


class MediaStreamsClient:
    def __init__(self, url: str, *, call_sid: str, account_sid: str, parameters: dict[str, str], gap_s: float = 0.7):
        self.url = url
        self.call_sid = call_sid
        self.account_sid = account_sid
        self.stream_sid = "MZ" + uuid.uuid4().hex
        self.parameters = parameters
        self.gap_s = gap_s
        self.utterances: list[Utterance] = []
        self.clears = 0
        self.marks_echoed: list[tuple[str, float]] = []  # (name, when)
        self.closed_at: float | None = None
        self.received: list[dict] = []  # every message from the bot but media
        self._ws: ClientConnection | None = None
        self._sequence = 0
        self._chunk = 0
        self._started = 0.0
        self._outgoing = bytearray()  # caller audio waiting to be sent
        self._playback = bytearray()  # bot audio waiting to be played
        self._marks: list[tuple[int, str]] = []  # (bytes of playback before it, name)
        self._current: Utterance | None = None
        self._quiet_since = 0.0
        self._turns = asyncio.Condition()
        self._tasks: list[asyncio.Task] = []
        self.extensions: str | None = None  # the websocket extensions the server accepted

    async def __aenter__(self) -> MediaStreamsClient:
        self._ws = await connect(self.url, max_size=2**22)  # offers permessage-deflate, as `websockets` does
        self.extensions = self._ws.response.headers.get("Sec-WebSocket-Extensions")  # what the server took
        self._started = time.monotonic()
        await self._send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        await self._send({
            "event": "start", "sequenceNumber": self._next(), "streamSid": self.stream_sid,
            "start": {
                "streamSid": self.stream_sid, "accountSid": self.account_sid, "callSid": self.call_sid,
                "tracks": ["inbound"], "customParameters": self.parameters,
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": RATE, "channels": 1},
            },
        }, sequenced=False)  # fmt: skip
        self._tasks = [asyncio.create_task(self._clock(), name="twilio-clock"), asyncio.create_task(self._receive(), name="twilio-receive")]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.hang_up()

    async def hang_up(self) -> None:
        """The caller hangs up: `stop`, then the socket closes."""
        if self._ws is not None and self.closed_at is None:
            try:
                await self._send({"event": "stop", "stop": {"accountSid": self.account_sid, "callSid": self.call_sid}})
                await self._ws.close()
            except ConnectionClosed:
                pass
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- what the caller does ---------------------------------------------------------------------

    async def say(self, pcm16k: np.ndarray) -> None:
        """Speak (16 kHz int16); returns once the audio has been sent, in real time."""
        self._outgoing += to_twilio(pcm16k)
        while self._outgoing:
            await asyncio.sleep(0.02)

    async def press(self, keys: str, gap_s: float = 0.15) -> None:
        for key in keys:
            await self._send({"event": "dtmf", "dtmf": {"track": "inbound_track", "digit": key}})
            await asyncio.sleep(gap_s)

    async def bot_turn(self, timeout_s: float = 20.0) -> Utterance:
        """The bot's next utterance, once it has been played and a gap has followed it."""
        seen = len(self.finished())
        async with asyncio.timeout(timeout_s):
            async with self._turns:
                await self._turns.wait_for(lambda: len(self.finished()) > seen)
        return self.finished()[seen]

    async def playing(self, timeout_s: float = 20.0) -> Utterance:
        """The utterance being played now (waits for the bot to start speaking)."""
        async with asyncio.timeout(timeout_s):
            while self._current is None:
                await asyncio.sleep(0.02)
        return self._current

    def finished(self) -> list[Utterance]:
        return [u for u in self.utterances if u is not self._current]

    async def closed(self, timeout_s: float = 15.0) -> float:
        async with asyncio.timeout(timeout_s):
            while self.closed_at is None:
                await asyncio.sleep(0.05)
        return self.closed_at

    # --- the wire -----------------------------------------------------------------------------------

    def _next(self) -> str:
        self._sequence += 1
        return str(self._sequence)

    async def _send(self, message: dict, sequenced: bool = True) -> None:
        assert self._ws is not None
        if sequenced:
            message = {"event": message["event"], "sequenceNumber": self._next(), "streamSid": self.stream_sid, **message}
        await self._ws.send(json.dumps(message))

    async def _clock(self) -> None:
        """Every 20 ms: one inbound `media` message (speech or silence) and 20 ms of playback."""
        tick = 0
        while True:
            tick += 1
            chunk = bytes(self._outgoing[:FRAME]).ljust(FRAME, b"\xff")
            del self._outgoing[:FRAME]
            self._chunk += 1
            timestamp = int((time.monotonic() - self._started) * 1000)
            try:
                await self._send({"event": "media", "media": {"track": "inbound", "chunk": str(self._chunk), "timestamp": str(timestamp), "payload": base64.b64encode(chunk).decode()}})
            except ConnectionClosed:
                return
            await self._play(FRAME)
            await asyncio.sleep(max(0.0, self._started + tick * 0.02 - time.monotonic()))

    async def _play(self, size: int) -> None:
        now = time.monotonic()
        played = bytes(self._playback[:size])
        del self._playback[:size]
        if played:
            if self._current is None:
                self._current = Utterance(started=now)
                self.utterances.append(self._current)
            self._current.audio += played
            self._current.ended = now + len(played) / RATE
            self._quiet_since = 0.0
        elif self._current is not None:
            self._quiet_since = self._quiet_since or now
            if now - self._quiet_since >= self.gap_s:
                await self._finish_utterance()
        self._marks = [(left - len(played), name) for left, name in self._marks]
        while self._marks and self._marks[0][0] <= 0:
            await self._echo(self._marks.pop(0)[1])

    async def _finish_utterance(self) -> None:
        async with self._turns:
            self._current = None
            self._turns.notify_all()

    async def _echo(self, name: str) -> None:
        self.marks_echoed.append((name, time.monotonic()))
        try:
            await self._send({"event": "mark", "mark": {"name": name}})
        except ConnectionClosed:
            pass

    async def _receive(self) -> None:
        assert self._ws is not None
        try:
            async for raw in self._ws:
                message = json.loads(raw)
                event = message.get("event")
                assert message.get("streamSid") == self.stream_sid, message
                if event == "media":
                    self._playback += base64.b64decode(message["media"]["payload"])
                    continue
                self.received.append(message)
                if event == "clear":
                    self.clears += 1
                    self._playback.clear()
                    if self._current is not None:
                        self._current.cleared = True
                        await self._finish_utterance()
                    for _, name in self._marks:
                        await self._echo(name)
                    self._marks.clear()
                elif event == "mark":
                    self._marks.append((len(self._playback), message["mark"]["name"]))
        except ConnectionClosed:
            pass
        finally:
            self.closed_at = time.monotonic()
            if self._current is not None:  # the call is over: what was played is all there is
                await self._finish_utterance()

"""Concurrent Twilio phone calls on one `frontdesk run` server: voice-to-voice at 1, 10, 25, 50 calls.

    .venv/bin/python bench/concurrent_calls.py [--levels 1,10,25,50] [--baseline-calls 5]
                                               [--stagger-s 2] [--out bench/results/concurrent_calls.json]

The target (the issue): at least 50 calls at once on this 2-core machine with p95 voice-to-voice
within 100 ms of a single call's.

The server is `python -m app.cli run <bot.yaml> --host 127.0.0.1 --port <free>` in a subprocess
(one process, one event loop, as deployed), on a copy of bot.yaml with

    stt:  [{provider: deepgram, base_url: <stand-in>}, {provider: whisper}]
    tts:  [{provider: cartesia, base_url: <stand-in>}, {provider: piper}]
    turn: {detector: silence}                       (vad_stop_secs 0.2, silence_timeout_s 0.4)

and no ANTHROPIC_API_KEY: the brain chain is the local brain only (the Claude stand-in's
`local_brain_responder` needs the call's live session, which lives in the server process). The
stand-ins run in this process: Deepgram (`DeepgramStandIn`, a `ScriptedTranscriber` per connection:
instant, exact transcripts, the final `final_latency_s` 0.15 s after the end of the utterance) and
Cartesia (`CartesiaStandIn`, a cheap tone of 20 ms a character, first audio after 0.09 s). So the
server's CPU goes to what every call costs whatever the providers: the Twilio serializer (mu-law,
8 <-> 16 kHz), Silero VAD, the turn logic, the flow and local brain, the failover wrappers and
Pipecat's frame plumbing. Whisper and Piper are loaded (they are the chains' last resort) but are
used only on a failover, which the results count (`failovers`).

Each call is what Twilio does: the voice webhook `POST /` (unsigned: no TWILIO_AUTH_TOKEN), then a
Media Streams websocket on `/ws` (`connected`, `start` with the TwiML's parameters, a `media`
message of 8 kHz mu-law every 20 ms in real time, silence between turns; the bot's audio played in
real time from a buffer, `mark`s echoed once played, `clear` empties the buffer; `stop` at the end).
Every call has its own caller number; the bot reads it back in its fourth reply, which ties each
call record in the server's SQLite file to its call here. The caller waits for the greeting, then
says four lines of a booking (pre-synthesized once by `app.simulate.caller.synthesize`, the
pitch-shifted Piper voice), each after the bot's previous reply has played and 0.5 s of quiet:

    "I'd like to book a haircut."  -> "... What day would you like to come in?"
    "Next Thursday."               -> "What time would suit you?"
    "At four in the afternoon."    -> "... Can I get your name?"
    "Jane Doe."                    -> "Should I use the number you're calling from, 555-...?"

and hangs up (no booking is made, so calls never compete for a slot). N=1 is `--baseline-calls`
calls one after another; N>1 starts N calls staggered over `--stagger-s`. One unmeasured call runs
first (the first call pays the voice stack's lazy imports). Levels stop rising at the first one
where a call fails.

Voice-to-voice, per caller turn, at the client: from the send time of the caller line's last loud
20 ms frame (RMS over 200 of int16; the end of audible speech, in real-time playback) to the
arrival of the first bot `media` message with sound in it after that. A call is OK when every
turn was answered within 8 s and its record shows the expected dialogue.

Also per level: the server's peak RSS (/proc VmRSS every 100 ms), its CPU over the level (all
threads, and its event-loop thread alone, in % of one core), the CPU of this process (the 50 Twilio
clients and the stand-ins share the machine with the server) and of everything else (from
/proc/stat: the load not ours), how late this process's 20 ms send clocks ran (if the load
generator falls behind, its timings are off), the time from the webhook to the greeting's first
audio, and the failovers the calls recorded.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextvars
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.simulate.stats import pct  # noqa: E402
from bench.machine import describe as describe_machine  # noqa: E402

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import uvloop  # noqa: E402
from loguru import logger  # noqa: E402
from websockets.asyncio.client import ClientConnection, connect  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402

from app.simulate.caller import synthesize  # noqa: E402
from app.standins import cartesia as cartesia_standin  # noqa: E402
from app.standins.cartesia import CartesiaStandIn, ToneSynthesizer  # noqa: E402
from app.standins.deepgram import DeepgramStandIn, ScriptedTranscriber  # noqa: E402
from app.standins.twilio_media import FRAME, SILENCE, to_twilio, ulaw_decode  # noqa: E402

LINES = ["I'd like to book a haircut.", "Next Thursday.", "At four in the afternoon.", "Jane Doe."]
EXPECT = ["what day", "what time", "name", "calling from"]  # in the bot's reply to each line
SALON = "+15557654321"
ACCOUNT_SID = "AC" + "0" * 32
DEEPGRAM_KEY = "standin-deepgram-key"
KEYS = ("ANTHROPIC_API_KEY", "DEEPGRAM_API_KEY", "CARTESIA_API_KEY", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN")
STT_BLOCK = "stt:\n  - provider: whisper\n    model: tiny.en\n"
TTS_BLOCK = "tts:\n  - provider: piper\n    voice: en_US-joe-medium\n"
TONE = ToneSynthesizer(seconds_per_char=0.02)
QUIET_RMS = 200  # a caller frame at or under this int16 RMS is not speech
LOUD_SAMPLES = 8  # a bot media message with this many samples over QUIET_RMS in magnitude has sound
GAP_S = 0.5  # the caller speaks after this much quiet from the bot
GREETING_TIMEOUT_S = 20.0
REPLY_TIMEOUT_S = 8.0
PLAYED_TIMEOUT_S = 20.0
MB = 1024 * 1024
TICK = os.sysconf("SC_CLK_TCK")

# mu-law codes whose sample is quiet: a message's bytes minus these are its loud samples
QUIET_CODES = bytes(c for c in range(256) if abs(int(ulaw_decode(bytes([c]))[0])) <= QUIET_RMS)
SILENCE_B64 = base64.b64encode(SILENCE).decode()
MEDIA = '{"event":"media","sequenceNumber":"%d","streamSid":"%s","media":{"track":"inbound","chunk":"%d","timestamp":"%d","payload":"%s"}}'


# --- the caller's lines -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    text: str
    payloads: list[str]  # base64 of each 20 ms mu-law frame, as sent
    last_loud: int  # index of the last loud frame: its send time is the end of speech
    speech_s: float


def prepare(text: str) -> Line:
    ulaw = to_twilio(synthesize(text))
    frames = [ulaw[i : i + FRAME].ljust(FRAME, b"\xff") for i in range(0, len(ulaw), FRAME)]
    rms = [float(np.sqrt(np.mean(ulaw_decode(f).astype(np.float64) ** 2))) for f in frames]
    loud = [i for i, r in enumerate(rms) if r > QUIET_RMS]
    return Line(text, [base64.b64encode(f).decode() for f in frames], loud[-1], round((loud[-1] - loud[0] + 1) * 0.02, 2))


# --- the Deepgram stand-in, one scripted transcriber per connection (= per call) ----------------

_TRANSCRIBER: contextvars.ContextVar[ScriptedTranscriber] = contextvars.ContextVar("transcriber")


class PerCallTranscriber:
    """Delegates to the connection's own ScriptedTranscriber: the stand-in's session tasks, and the
    worker threads they transcribe in, inherit the context its handler set."""

    def __call__(self, audio: bytes, sample_rate: int) -> str:
        return _TRANSCRIBER.get()(audio, sample_rate)

    def interim(self, audio: bytes, sample_rate: int) -> str:
        return _TRANSCRIBER.get().interim(audio, sample_rate)


class PerCallDeepgram(DeepgramStandIn):
    def __init__(self, **kwargs):
        super().__init__(PerCallTranscriber(), **kwargs)
        self.transcribers: list[ScriptedTranscriber] = []

    async def _session(self, ws) -> None:
        transcriber = ScriptedTranscriber(LINES)
        self.transcribers.append(transcriber)
        _TRANSCRIBER.set(transcriber)
        await super()._session(ws)


# --- one Twilio call ------------------------------------------------------------------------------


class CallFailed(Exception):
    pass


@dataclass
class Level:
    """What the calls of one level share: their send clocks' lateness."""

    late: list[float] = field(default_factory=list)


class TwilioCall:
    def __init__(self, port: int, number: str, lines: list[Line], level: Level):
        self.port = port
        self.number = number
        self.lines = lines
        self.level = level
        self.call_sid = "CA" + os.urandom(16).hex()
        self.stream_sid = "MZ" + os.urandom(16).hex()
        self.ws: ClientConnection | None = None
        self.sequence = 0
        self.chunk = 0
        self.started = 0.0
        self.speaking: Line | None = None
        self.pos = 0
        self.spoken = asyncio.Event()
        self.awaiting_reply = False
        self.ends: list[float] = []  # per turn: send time of the last loud frame
        self.replies: list[float] = []  # per turn: arrival of the first loud bot media after it
        self.playback = bytearray()
        self.marks: list[list] = []  # [bytes of playback before it, name]
        self.last_loud_rx = 0.0
        self.last_played = 0.0
        self.first_audio = 0.0
        self.clears = 0  # Pipecat's serializer sends one at each interruption, the caller's turn start
        self.clears_cutting = 0  # ... of which with bot audio still to play: the caller talked over the bot
        self.closed_at: float | None = None
        self.rx_bytes = 0  # bot audio received, mu-law bytes (8000 a second)
        self.rx_loud_bytes = 0  # ... in messages with sound
        self.tasks: list[asyncio.Task] = []

    async def run(self, http: httpx.AsyncClient) -> dict:
        dialed = time.monotonic()
        error = None
        try:
            parameters = await self._webhook(http)
            await self._connect(parameters)
            await self._wait(lambda: self.first_audio > 0 and self._bot_quiet(), GREETING_TIMEOUT_S, "no greeting")
            for i, line in enumerate(self.lines):
                self.spoken.clear()
                self.pos, self.speaking = 0, line
                await self._wait(self.spoken.is_set, 30.0, f"turn {i + 1} not sent")
                await self._wait(lambda: len(self.replies) > i, REPLY_TIMEOUT_S, f"no reply to turn {i + 1}")
                await self._wait(self._bot_quiet, PLAYED_TIMEOUT_S, f"reply to turn {i + 1} never ended")
        except CallFailed as e:
            error = str(e)
        except (OSError, ConnectionClosed, httpx.HTTPError, AssertionError, ET.ParseError, TimeoutError) as e:
            error = f"{type(e).__name__}: {e}"
        finally:
            await self._hang_up()
        return {
            "number": self.number,
            "answered_turns": len(self.replies),
            "voice_to_voice_ms": [round((r - e) * 1000, 1) for e, r in zip(self.ends, self.replies)],
            "greeting_after_ms": round((self.first_audio - dialed) * 1000, 1) if self.first_audio else None,
            "bot_audio_s": round(self.rx_bytes / 8000, 2),
            "bot_audio_with_sound_s": round(self.rx_loud_bytes / 8000, 2),
            "playback_left_s": round(len(self.playback) / 8000, 2),
            "clears": self.clears,
            "clears_cutting_audio": self.clears_cutting,
            "seconds": round(time.monotonic() - dialed, 1),
            "error": error,
        }

    async def _webhook(self, http: httpx.AsyncClient) -> dict[str, str]:
        params = {
            "AccountSid": ACCOUNT_SID, "ApiVersion": "2010-04-01", "CallSid": self.call_sid, "CallStatus": "ringing",
            "Called": SALON, "Caller": self.number, "Direction": "inbound", "From": self.number, "To": SALON,
        }  # fmt: skip
        response = await http.post(f"http://127.0.0.1:{self.port}/", data=params)
        if response.status_code != 200:
            raise CallFailed(f"webhook: HTTP {response.status_code}")
        stream = ET.fromstring(response.text).find("./Connect/Stream")
        assert stream is not None and stream.get("url", "").endswith("/ws"), response.text
        return {p.get("name"): p.get("value") for p in stream.findall("Parameter")}

    async def _connect(self, parameters: dict[str, str]) -> None:
        self.ws = await connect(f"ws://127.0.0.1:{self.port}/ws", max_size=2**22, open_timeout=30)
        self.started = time.monotonic()
        await self.ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        self.sequence += 1
        await self.ws.send(json.dumps({
            "event": "start", "sequenceNumber": str(self.sequence), "streamSid": self.stream_sid,
            "start": {
                "streamSid": self.stream_sid, "accountSid": ACCOUNT_SID, "callSid": self.call_sid,
                "tracks": ["inbound"], "customParameters": parameters,
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            },
        }))  # fmt: skip
        self.tasks = [asyncio.create_task(self._clock()), asyncio.create_task(self._receive())]

    async def _wait(self, done, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not done():
            if self.closed_at is not None:
                raise CallFailed(f"{what}: the server closed the stream")
            if time.monotonic() > deadline:
                raise CallFailed(what)
            await asyncio.sleep(0.02)

    def _bot_quiet(self) -> bool:
        return not self.playback and time.monotonic() - max(self.last_loud_rx, self.last_played) >= GAP_S

    async def _hang_up(self) -> None:
        if self.ws is not None and self.closed_at is None:
            try:
                self.sequence += 1
                await self.ws.send(json.dumps({"event": "stop", "sequenceNumber": str(self.sequence), "streamSid": self.stream_sid, "stop": {"accountSid": ACCOUNT_SID, "callSid": self.call_sid}}))
                await self.ws.close()
            except (ConnectionClosed, OSError):
                pass
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _clock(self) -> None:
        """Every 20 ms: one inbound `media` message (speech or silence), 20 ms of playback."""
        assert self.ws is not None
        due = time.monotonic()
        late = self.level.late
        while True:
            now = time.monotonic()
            late.append(now - due)
            line = self.speaking
            if line is not None:
                payload = line.payloads[self.pos]
                if self.pos == line.last_loud:
                    self.ends.append(now)
                    self.awaiting_reply = True
                self.pos += 1
                if self.pos == len(line.payloads):
                    self.speaking = None
                    self.spoken.set()
            else:
                payload = SILENCE_B64
            self.sequence += 1
            self.chunk += 1
            try:
                await self.ws.send(MEDIA % (self.sequence, self.stream_sid, self.chunk, int((now - self.started) * 1000), payload))
            except ConnectionClosed:
                return
            await self._play(now)
            due += 0.02
            await asyncio.sleep(max(0.0, due - time.monotonic()))

    async def _play(self, now: float) -> None:
        played = len(self.playback[:FRAME])
        del self.playback[:FRAME]
        if played:
            self.last_played = now
        for mark in self.marks:
            mark[0] -= played
        while self.marks and self.marks[0][0] <= 0:
            await self._echo(self.marks.pop(0)[1])

    async def _echo(self, name: str) -> None:
        try:
            self.sequence += 1
            await self.ws.send(json.dumps({"event": "mark", "sequenceNumber": str(self.sequence), "streamSid": self.stream_sid, "mark": {"name": name}}))
        except ConnectionClosed:
            pass

    async def _receive(self) -> None:
        assert self.ws is not None
        try:
            async for raw in self.ws:
                message = json.loads(raw)
                event = message.get("event")
                if event == "media":
                    audio = base64.b64decode(message["media"]["payload"])
                    self.playback += audio
                    self.rx_bytes += len(audio)
                    if len(audio.translate(None, QUIET_CODES)) >= LOUD_SAMPLES:
                        self.rx_loud_bytes += len(audio)
                        now = time.monotonic()
                        self.last_loud_rx = now
                        self.first_audio = self.first_audio or now
                        if self.awaiting_reply:
                            self.awaiting_reply = False
                            self.replies.append(now)
                elif event == "clear":
                    self.clears += 1
                    self.clears_cutting += bool(self.playback)
                    self.playback.clear()
                    for _, name in self.marks:
                        await self._echo(name)
                    self.marks.clear()
                elif event == "mark":
                    self.marks.append([len(self.playback), message["mark"]["name"]])
        except ConnectionClosed:
            pass
        finally:
            self.closed_at = time.monotonic()


# --- the server and what it uses -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bot_file(directory: Path, deepgram: str, cartesia: str) -> Path:
    text = (ROOT / "bot.yaml").read_text().replace("flow: flows/scheduling.yaml", f"flow: {ROOT / 'flows/scheduling.yaml'}")
    if STT_BLOCK not in text or TTS_BLOCK not in text:
        raise SystemExit("bot.yaml's stt:/tts: blocks changed: update STT_BLOCK / TTS_BLOCK")
    text = text.replace(STT_BLOCK, f"stt:\n  - provider: deepgram\n    base_url: {deepgram}\n  - provider: whisper\n")
    text = text.replace(TTS_BLOCK, f"tts:\n  - provider: cartesia\n    base_url: {cartesia}\n  - provider: piper\n")
    text = re.sub(r"(?ms)^turn:.*?\n(?=\S|\Z)", "", text)
    path = directory / "bot.yaml"
    path.write_text(text + "\nturn:\n  detector: silence\n")
    return path


def cpu_ticks(pid: int, tid: int | None = None) -> int:
    """utime + stime of a process (all its threads) or of one of its threads, in clock ticks."""
    path = f"/proc/{pid}/task/{tid}/stat" if tid else f"/proc/{pid}/stat"
    with open(path) as f:
        fields = f.read().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])


def process_tree(pid: int) -> list[int]:
    """`pid` and every descendant (with `--workers N`, the worker processes under the parent)."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            continue
    return found


def tree_ticks(pid: int, main_threads: bool = False) -> int:
    """CPU ticks of the server's process tree: all threads, or each process's main thread (its
    event loop) only."""
    total = 0
    for p in process_tree(pid):
        try:
            total += cpu_ticks(p, p if main_threads else None)
        except OSError:
            pass  # exited between the listing and the read
    return total


def tree_rss(pid: int, tree: list[int] | None = None) -> int:
    """VmRSS summed over the server's process tree (pages shared by workers are counted in each)."""
    total = 0
    for p in tree or process_tree(pid):
        try:
            total += proc_status(p)["VmRSS"]
        except (OSError, KeyError):
            pass
    return total


def machine_busy_ticks() -> int:
    with open("/proc/stat") as f:
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in f.readline().split()[1:9])
    return user + nice + system + irq + softirq + steal


def proc_status(pid: int) -> dict[str, int]:
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) * 1024
    return values


class Sampler:
    """The server's RSS every 100 ms, on a thread. Its process tree is listed again every second
    only: listing it reads a file for every thread of every process (dozens, with the models'
    thread pools), and this thread shares the load generator's GIL and CPU."""

    def __init__(self, pid: int):
        self.pid = pid
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        tree, listed = [], 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            try:
                if now - listed >= 1.0:
                    tree, listed = process_tree(self.pid), now
                self.samples.append((now, tree_rss(self.pid, tree)))
            except (OSError, KeyError):
                return
            self._stop.wait(0.1)

    def peak(self, start: float, end: float) -> int:
        return max((v for t, v in self.samples if start <= t <= end), default=0)


class Usage:
    """CPU over a stretch of time: the server (all threads, its main thread), this process, the rest."""

    def __init__(self, server_pid: int):
        self.server = server_pid

    def read(self) -> tuple[float, int, int, int, int]:
        return time.monotonic(), tree_ticks(self.server), tree_ticks(self.server, main_threads=True), cpu_ticks(os.getpid()), machine_busy_ticks()

    def since(self, start: tuple) -> dict:
        end = self.read()
        wall = end[0] - start[0]
        pct = lambda i: round(100 * (end[i] - start[i]) / TICK / wall, 1)  # noqa: E731
        return {"server_pct": pct(1), "server_loop_thread_pct": pct(2), "bench_process_pct": pct(3), "machine_pct": pct(4), "others_pct": round(pct(4) - pct(1) - pct(3), 1)}


async def health(port: int, process: subprocess.Popen, timeout_s: float = 90) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise RuntimeError("the server exited during start-up")
        try:
            return await asyncio.to_thread(lambda: json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)))
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError("the server did not come up") from None
            await asyncio.sleep(0.3)


async def quiet_server(pid: int, port: int, process: subprocess.Popen, timeout_s: float = 60) -> None:
    """Wait until no call is active and the server's CPU is under 5% for a second (warm-up done)."""
    deadline = time.monotonic() + timeout_s
    while (await health(port, process))["active_calls"] and time.monotonic() < deadline:
        await asyncio.sleep(0.3)
    while time.monotonic() < deadline:
        before = tree_ticks(pid)
        await asyncio.sleep(1.0)
        if (tree_ticks(pid) - before) / TICK < 0.05 * len(process_tree(pid)):
            return


# --- the levels ---------------------------------------------------------------------------------


def stats(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    return {"p50": pct(values, 50), "p95": pct(values, 95), "max": round(max(values), 1), "n": len(values)}


def records(db: Path, seen: set[str]) -> dict[str, dict]:
    """The call records not in `seen`, by the caller number the bot read back (555-XXX-XXXX)."""
    import sqlite3
    from contextlib import closing

    out = {}
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        for call_id, final_node, metrics in conn.execute("SELECT call_id, final_node, metrics FROM calls"):
            if call_id in seen:
                continue
            seen.add(call_id)
            turns = conn.execute("SELECT role, text FROM turns WHERE call_id = ? ORDER BY id", (call_id,)).fetchall()
            bot_text = " ".join(text for role, text in turns if role == "bot")
            found = re.search(r"555-(\d{3})-(\d{4})", bot_text)
            key = f"+1555{found.group(1)}{found.group(2)}" if found else f"?{call_id}"
            out[key] = {"final_node": final_node, "metrics": json.loads(metrics) if metrics else {}, "turns": turns}
    return out


def dialogue_ok(record: dict | None) -> bool:
    """Four caller turns, each answered by the expected question."""
    if record is None:
        return False
    turns = record["turns"]
    callers = [i for i, (role, _) in enumerate(turns) if role == "caller"]
    if len(callers) != len(LINES):
        return False
    for k, i in enumerate(callers):
        reply = " ".join(text for role, text in turns[i + 1 : (callers[k + 1] if k + 1 < len(callers) else len(turns))] if role == "bot")
        if EXPECT[k] not in reply.lower():
            return False
    return True


async def run_level(tag: int, n: int, sequential: int, stagger_s: float, port: int, lines: list[Line], sampler: Sampler, usage: Usage, db: Path, seen: set[str], process: subprocess.Popen) -> dict:
    level = Level()
    load = os.getloadavg()
    numbers = [f"+1555{tag:03d}{i:04d}" for i in range(sequential if n == 1 else n)]  # read back as 555-TAG-IIII
    results: list[dict] = []
    start, t0 = usage.read(), time.monotonic()
    async with httpx.AsyncClient(timeout=30) as http:
        if n == 1:
            for number in numbers:
                results.append(await TwilioCall(port, number, lines, level).run(http))
                await asyncio.sleep(0.5)
        else:

            async def staggered(i: int, number: str) -> dict:
                await asyncio.sleep(i * stagger_s / n)
                return await TwilioCall(port, number, lines, level).run(http)

            results = list(await asyncio.gather(*(staggered(i, number) for i, number in enumerate(numbers))))
    t1 = time.monotonic()
    cpu = usage.since(start)
    await quiet_server(sampler.pid, port, process, timeout_s=30)
    found = records(db, seen)
    failovers: dict[str, int] = {}
    for r in results:
        record = found.get(r["number"])
        r["dialogue_ok"] = dialogue_ok(record)
        r["final_node"] = record and record["final_node"]
        r["ok"] = r["error"] is None and r["answered_turns"] == len(lines) and r["dialogue_ok"]
    for record in found.values():  # every call record of the level, read back or not
        for key, value in record["metrics"].items():
            if key.startswith("failover") and isinstance(value, int):
                key = re.sub(r"#\d+", "", key)  # the services' instance numbers
                failovers[key] = failovers.get(key, 0) + value
    v2v = [v for r in results if r["ok"] for v in r["voice_to_voice_ms"]]  # a failed call's "replies" may be a trickle of its greeting
    late_ms = [x * 1000 for x in level.late]
    return {
        "calls": len(results),
        "calls_ok": sum(r["ok"] for r in results),
        "turns_answered": len(v2v),
        "voice_to_voice_ms": stats(v2v),
        # per caller turn (the first is a flow transition with two function calls, the others one)
        "voice_to_voice_by_turn_ms": [stats([r["voice_to_voice_ms"][i] for r in results if r["ok"]]) for i in range(len(lines))],
        "voice_to_voice_failed_calls_ms": stats([v for r in results if not r["ok"] for v in r["voice_to_voice_ms"]]),
        "greeting_after_webhook_ms": stats([r["greeting_after_ms"] for r in results if r["greeting_after_ms"] is not None]),
        "server_peak_rss_mb": round(sampler.peak(t0, t1) / MB, 1),
        "cpu": cpu,
        "client_clock_late_ms": {"p99": pct(late_ms, 99), "max": round(max(late_ms), 1) if late_ms else None},
        "clears": sum(r["clears"] for r in results),
        "clears_cutting_audio": sum(r["clears_cutting_audio"] for r in results),
        "failovers": failovers,
        "unmatched_records": sorted(k for k in found if k.startswith("?")),
        "load_average_at_start": [round(x, 2) for x in load],
        "wall_s": round(t1 - t0, 1),
        "errors": sorted({r["error"] for r in results if r["error"]}),
        "per_call": results,
    }


def table(report: dict) -> str:
    rows = [
        "| calls at once | calls OK | turns (of OK calls) | voice-to-voice p50 / p95 | p95 vs 1 call | server peak RSS | server CPU (loop thread) |",
        "|---|---|---|---|---|---|---|",
    ]
    for n, v in report["levels"].items():
        s = v["voice_to_voice_ms"]
        delta = v.get("p95_delta_vs_1_ms")
        shown = f"{delta:+.0f} ms" if delta is not None else "-"
        label = f"1 ({v['calls']} in turn)" if n == "1" else n
        v2v = f"{s['p50']:.0f} / {s['p95']:.0f} ms" if s.get("n") else "-"
        rows.append(
            f"| {label} | {v['calls_ok']}/{v['calls']} | {v['turns_answered']} | {v2v} | {shown} | {v['server_peak_rss_mb']:.0f} MB"
            f" | {v['cpu']['server_pct']:.0f}% ({v['cpu']['server_loop_thread_pct']:.0f}%) |"
        )
    return "\n".join(rows)


def log_summary(path: Path) -> dict[str, int]:
    """WARNING/ERROR lines of the server's log, counted by message (numbers and ids blanked)."""
    counts: dict[str, int] = {}
    for line in path.read_text(errors="replace").splitlines():
        if "| WARNING" in line or "| ERROR" in line:
            message = re.sub(r"[0-9a-f]{8,}|\d+(\.\d+)?", "#", line.split(" - ", 1)[-1])[:160]
            counts[message] = counts.get(message, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1])[:25])


async def bench(levels: list[int], sequential: int, stagger_s: float, work: Path, keep_log: Path | None = None, workers: int = 1, loop_turn_ms: float = 0) -> dict:
    print("synthesizing the caller's lines", file=sys.stderr)
    lines = [prepare(text) for text in LINES]
    report: dict = {
        "date": datetime.now().isoformat(timespec="seconds"),
        "machine": describe_machine(),
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
        "workers": workers,
        "loop_turn_ms": loop_turn_ms,
        "stack": f"frontdesk run --workers {workers}: Twilio Media Streams on /ws, STT Deepgram stand-in (scripted, final 0.15 s) then Whisper, "
        "TTS Cartesia stand-in (tone, first audio 0.09 s) then Piper, brain local only (no ANTHROPIC_API_KEY), turn.detector silence, Silero VAD per call",
        "caller": {"lines": LINES, "speech_s": [line.speech_s for line in lines], "gap_before_speaking_s": GAP_S, "stagger_s": stagger_s},
        "measure": "voice-to-voice at the Twilio client: send time of the caller line's last loud 20 ms frame -> arrival of the first bot media message with sound",
        "levels": {},
    }
    started = time.monotonic()
    async with PerCallDeepgram(api_key=DEEPGRAM_KEY) as deepgram, CartesiaStandIn(synthesizer=TONE) as cartesia:
        port = free_port()
        bot = bot_file(work, deepgram.base_url, cartesia.url)
        db = work / "calls.db"
        env = {k: v for k, v in os.environ.items() if k not in KEYS} | {"DEEPGRAM_API_KEY": DEEPGRAM_KEY, "CARTESIA_API_KEY": cartesia_standin.API_KEY}
        if loop_turn_ms:  # bench/loop_turns/sitecustomize.py makes each turn of the server's loops this long
            env |= {"FRONTDESK_BENCH_LOOP_TURN_MS": str(loop_turn_ms), "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "bench/loop_turns"), env.get("PYTHONPATH")]))}
        log_path = work / "server.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "app.cli", "run", str(bot), "--host", "127.0.0.1", "--port", str(port), "--db", str(db), "--workers", str(workers)],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
            try:
                with Sampler(process.pid) as sampler:
                    usage = Usage(process.pid)
                    await health(port, process)
                    await asyncio.sleep(3)  # the warm-up (Whisper, Piper's fixed lines) starts in the background
                    await quiet_server(process.pid, port, process)
                    report["server_idle_rss_mb"] = round(tree_rss(process.pid) / MB, 1)
                    report["server_ready_after_s"] = round(time.monotonic() - started, 1)
                    seen: set[str] = set()
                    print("warm-up call", file=sys.stderr)
                    warm = await run_level(999, 1, 1, stagger_s, port, lines, sampler, usage, db, seen, process)
                    report["warm_up_call"] = {k: warm[k] for k in ("calls_ok", "voice_to_voice_ms", "errors")}
                    for tag, n in enumerate(levels, 1):
                        print(f"{n} call(s) at once", file=sys.stderr)
                        result = await run_level(tag, n, sequential, stagger_s, port, lines, sampler, usage, db, seen, process)
                        report["levels"][str(n)] = result
                        summary = {k: result[k] for k in ("calls", "calls_ok", "voice_to_voice_ms", "server_peak_rss_mb", "cpu", "client_clock_late_ms", "failovers", "errors")}
                        print(json.dumps(summary), file=sys.stderr)
                        if result["calls_ok"] < result["calls"]:
                            report["stopped_at"] = n
                            break
                    report["server_vmhwm_mb"] = round(proc_status(process.pid)["VmHWM"] / MB, 1)
            finally:
                process.terminate()
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        report["deepgram_connections"] = len(deepgram.transcribers)
        report["deepgram_connections_out_of_script"] = sum(1 for t in deepgram.transcribers if t.transcripts)
        report["server_log_warnings"] = log_summary(log_path)
        if keep_log is not None:
            keep_log.write_bytes(log_path.read_bytes())
    base = report["levels"].get("1", {}).get("voice_to_voice_ms", {}).get("p95")
    for v in report["levels"].values():
        p95 = v["voice_to_voice_ms"].get("p95")
        v["p95_delta_vs_1_ms"] = round(p95 - base, 1) if p95 is not None and base is not None else None
    report["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    report["wall_s"] = round(time.monotonic() - started, 1)
    report["table"] = table(report)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", default="1,10,25,50", help="calls at once, in order (1 = --baseline-calls calls one after another)")
    parser.add_argument("--baseline-calls", type=int, default=5)
    parser.add_argument("--stagger-s", type=float, default=2.0, help="the starts of a level's calls are spread over this long")
    parser.add_argument("--server-log", type=Path, help="keep the server's log there")
    parser.add_argument("--workers", type=int, default=1, help="`frontdesk run --workers N` (CPU and RSS are then the whole process tree's)")
    parser.add_argument(
        "--loop-turn-ms", type=float, default=0,
        help="make every turn of the server's event loops take this long (bench/loop_turns): against a run without, counts the loop turns on a turn's way",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/concurrent_calls.json")
    args = parser.parse_args()
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    with tempfile.TemporaryDirectory(prefix="frontdesk-concurrent-") as tmp:
        # On uvloop, as the server runs: the 50 callers and the stand-ins share the 2 cores with the
        # server, and on asyncio's own loop they took ~40% of a core at 50 calls.
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            report = runner.run(bench([int(n) for n in args.levels.split(",")], args.baseline_calls, args.stagger_s, Path(tmp), args.server_log, args.workers, args.loop_turn_ms))
    report["command"] = "python bench/concurrent_calls.py " + " ".join(sys.argv[1:])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in report.items() if k != "levels"} | {"levels": {n: {k: x for k, x in v.items() if k != "per_call"} for n, v in report["levels"].items()}}, indent=2))
    print(report["table"])
    return 0 if "stopped_at" not in report else 1


if __name__ == "__main__":
    sys.exit(main())

"""Drive one simulated call: speak each caller turn when the bot has finished (or over it, for
barge-in), and measure, from the end of the caller's speech, when the transcript, the brain's
first words and the bot's first audio arrive."""

from __future__ import annotations

import asyncio
import time
import wave
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from loguru import logger
from pipecat.frames.frames import Frame, LLMTextFrame, TranscriptionFrame
from pipecat.services.llm_service import LLMService
from pipecat.services.stt_service import STTService

from app.chat import ChatResult
from app.config.load import LoadedBot
from app.pipeline import CallAssembly
from app.simulate.caller import RATE, CallerTurn, noise_rms, read_wav, synthesize
from app.simulate.stats import pct
from app.simulate.transport import Line, Played, SimulatedTransport
from app.store import Store
from app.voice import run_voice_call, warm_up

SILENT_RMS = 200  # int16 RMS below which a played chunk counts as silence
IDLE_S = 0.8  # the bot has finished when nothing audible played for this long


class Timeline:
    """Times of the first transcript and the brain's first text after a mark.

    Taken as the STT and LLM services push them (their `on_before_push_frame`, which runs inline),
    not by a Pipecat observer: a worker with an observer hands it every push of every frame
    through a queue and a task of its own, and passes observer-only frames through the whole
    pipeline (`processors/frame_path.py`), work a phone call, which has no observer, never does:
    in alternating runs of `bench/production_overhead.py` (published latencies), 42 and 45 ms of
    overhead after the caller's stop without the observer, 68 and 64 ms with it. So the call is
    measured as it runs. `note` is what a subclass extends (it sees every push of the processors
    `watch` hooks)."""

    def __init__(self):
        self.transcripts: list[tuple[float, str]] = []
        self.llm_text: list[float] = []

    def watch(self, call: CallAssembly) -> None:
        """Hook the call's services (the STT, LLM and TTS chains) and its user aggregator."""
        for processor in (*call.worker.pipeline.processors_with_metrics(), call.aggregators.user()):
            processor.add_event_handler("on_before_push_frame", self.note)

    def note(self, source: object, frame: Frame) -> None:
        if isinstance(frame, TranscriptionFrame) and isinstance(source, STTService):
            self.transcripts.append((time.monotonic(), frame.text))
        elif isinstance(frame, LLMTextFrame) and isinstance(source, LLMService):
            self.llm_text.append(time.monotonic())


@dataclass
class SimulationResult:
    chat: ChatResult
    turns: list[dict[str, Any]] = field(default_factory=list)
    barge_ins: list[dict[str, Any]] = field(default_factory=list)
    context: list[dict[str, Any]] = field(default_factory=list)  # the LLM context at the end

    def as_json(self) -> dict[str, Any]:
        out = self.chat.as_json()
        out["turns"] = self.turns
        v2v = [t["latency_ms"]["voice_to_voice"] for t in self.turns if t["latency_ms"]["voice_to_voice"] is not None]
        out["latency_ms"] = {"voice_to_voice_p50": pct(v2v, 50), "voice_to_voice_p95": pct(v2v, 95)}
        if self.barge_ins:
            out["barge_ins"] = self.barge_ins
        return out


class Simulation:
    def __init__(
        self, bot: LoadedBot, store: Store, *, now: datetime | None, voice: str = "piper", noise_db: float | None = None, observers: list | None = None
    ):
        """`observers`: Pipecat observers for the call's worker (none by default, as a phone call)."""
        self.bot, self.store, self.now, self.voice, self.observers = bot, store, now, voice, observers
        self.line = Line(sample_rate=RATE, noise_rms=noise_rms(noise_db))
        self.played: list[Played] = []
        self.timeline = Timeline()
        self.transport = SimulatedTransport(self.line, self._heard)
        self.started = asyncio.Event()
        self.call: CallAssembly | None = None

    # --- what the caller hears ------------------------------------------------------------------

    def _heard(self, chunk: Played) -> None:
        chunk.audible = _rms(chunk.audio) > SILENT_RMS
        self.played.append(chunk)

    def audible_since(self, since: float) -> float | None:
        for chunk in self.played:
            if chunk.at >= since and chunk.audible:
                return chunk.at
        return None

    def last_audible_end(self) -> float:
        for chunk in reversed(self.played):
            if chunk.audible:
                return chunk.end
        return 0.0

    async def bot_finished(self, since: float, call: asyncio.Task, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not call.done():
            heard = self.audible_since(since)
            if heard is not None and time.monotonic() - self.last_audible_end() > IDLE_S:
                return
            await asyncio.sleep(0.05)

    # --- the call -------------------------------------------------------------------------------

    async def run(self, turns: list[CallerTurn]) -> SimulationResult:
        # Every caller line is synthesized before the call, off the event loop: made during the call
        # it would stall the loop (0.2-0.5 s of Piper) just when the bot is answering.
        clips = [await asyncio.to_thread(self._clip, turn) for turn in turns]

        def ready(call: CallAssembly) -> None:
            self.call = call
            self.timeline.watch(call)

            @call.worker.event_handler("on_pipeline_started")
            async def _started(worker, frame):
                self.started.set()

        task = asyncio.create_task(
            run_voice_call(self.bot, self.store, self.transport, transport_name="simulate", now=self.now, observers=self.observers, on_ready=ready)
        )
        result = SimulationResult(chat=ChatResult())
        spoken: list[tuple[CallerTurn, float, float]] = []  # (turn, speech start, speech end)
        try:
            await asyncio.wait_for(self.started.wait(), timeout=60)
            reply_mark = time.monotonic()
            await self.transport.connect()
            for turn, clip in zip(turns, clips):
                if task.done():
                    break
                started, ended = await self.speak(turn, clip, task, reply_mark)
                spoken.append((turn, started, ended))
                reply_mark = ended
            await self.bot_finished(reply_mark, task, timeout_s=30)
        finally:
            if not task.done():
                await self.transport.hang_up()
            result.chat = await asyncio.wait_for(task, timeout=30)
        if self.call is not None:
            result.context = [m for m in self.call.context.get_messages() if isinstance(m, dict)]
        for turn, started, ended in spoken:
            result.turns.append({"caller": turn.say or turn.wav, "latency_ms": self._latency(ended)})
            if turn.barge_in_ms is not None:
                result.barge_ins.append({"caller": turn.say or turn.wav, "bot_audio_stopped_after_ms": self._bot_stop_after(started)})
        return result

    def _clip(self, turn: CallerTurn) -> np.ndarray:
        return read_wav(turn.wav) if turn.wav else synthesize(turn.say or "", self.voice)

    async def speak(self, turn: CallerTurn, samples: np.ndarray, task: asyncio.Task, reply_mark: float) -> tuple[float, float]:
        """Say one turn; returns when the caller's speech started and ended (monotonic)."""
        if turn.noise_db is not None:
            self.line.noise_rms = noise_rms(turn.noise_db)
        if turn.barge_in_ms is not None:
            reply_start = await self._wait_audible(reply_mark, task)
            await asyncio.sleep(max(0.0, reply_start + turn.barge_in_ms / 1000 - time.monotonic()))
        else:
            await self.bot_finished(reply_mark, task)
            await asyncio.sleep(turn.pause_s)
        started = time.monotonic()
        self.line.speech_ended_at = None
        self.line.say(samples)
        while self.line.speech_ended_at is None and not task.done():
            await asyncio.sleep(0.01)
        # The end of speech is the last audible sound, not the end of the clip: a synthesized line
        # ends with 0.2 s of padding, and the voice's own fading tail before it.
        ended = (self.line.speech_ended_at or time.monotonic()) - trailing_quiet_s(samples)
        return started, ended

    async def _wait_audible(self, since: float, task: asyncio.Task, timeout_s: float = 30.0) -> float:
        deadline = time.monotonic() + timeout_s
        while not task.done() and time.monotonic() < deadline:
            if (heard := self.audible_since(since)) is not None:
                return heard
            await asyncio.sleep(0.01)
        return time.monotonic()

    def _bot_stop_after(self, caller_start: float) -> float | None:
        """How long after the caller started talking the bot's audio stopped."""
        speech_start = caller_start + 0.2  # leading silence of the clip
        during = [c for c in self.played if c.at >= speech_start and c.audible]
        if not during:
            return 0.0
        # the first gap of more than 150 ms in the bot's audio after the caller started
        last_end = speech_start
        for chunk in during:
            if chunk.at - last_end > 0.15:
                break
            last_end = chunk.end
        return round((last_end - speech_start) * 1000, 1)

    def _latency(self, ended: float) -> dict[str, float | None]:
        stt = next((t for t, _ in self.timeline.transcripts if t >= ended - 0.1), None)
        brain = next((t for t in self.timeline.llm_text if stt is not None and t >= stt), None)
        audio = self.audible_since(ended)

        def ms(a: float | None, b: float | None) -> float | None:
            return round((a - b) * 1000, 1) if a is not None and b is not None else None

        return {"stt": ms(stt, ended), "brain": ms(brain, stt), "tts_first_audio": ms(audio, brain), "voice_to_voice": ms(audio, ended)}

    # --- recordings -----------------------------------------------------------------------------

    def record(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        if not self.line.recorded:
            return
        t0 = self.line.recorded[0][0]
        _write(directory / "caller.wav", b"".join(data for _, data in self.line.recorded), RATE)
        if self.played:
            rate = self.played[0].sample_rate
            end = max(c.end for c in self.played)
            track = np.zeros(int((end - t0) * rate) + 1, dtype=np.int16)
            for chunk in self.played:
                samples = np.frombuffer(chunk.audio, dtype=np.int16)
                start = max(0, int((chunk.at - t0) * rate))
                track[start : start + len(samples)] = samples[: len(track) - start]
            _write(directory / "bot.wav", track.tobytes(), rate)
        logger.info(f"recordings written to {directory}")


def trailing_quiet_s(samples: np.ndarray, rate: int = 16000, ratio: float = 0.05) -> float:
    """How long `samples` (int16) end in quiet: after the last 20 ms frame louder than `ratio` of
    the loudest frame (about -26 dB, where a voice's fading tail stops being heard)."""
    frame = rate // 50
    levels = [float(np.sqrt(np.mean(samples[i : i + frame].astype(np.float64) ** 2))) for i in range(0, len(samples), frame)]
    if not levels or max(levels) == 0:
        return len(samples) / rate
    floor = max(levels) * ratio
    last = max(i for i, level in enumerate(levels) if level > floor)
    return max(0.0, (len(samples) - (last + 1) * frame) / rate)


def _rms(audio: bytes) -> float:
    samples = np.frombuffer(audio, dtype=np.int16).astype(np.float64)
    return float(np.sqrt(np.mean(samples**2))) if len(samples) else 0.0


def _write(path: Path, data: bytes, rate: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(data)


async def simulate(bot: LoadedBot, store: Store, turns: list[CallerTurn], *, now: datetime | None = None, voice: str = "piper", noise_db: float | None = None, record: Path | None = None) -> SimulationResult:
    await warm_up(bot)  # as a running server would be: models loaded, fixed lines synthesized
    simulation = Simulation(bot, store, now=now, voice=voice, noise_db=noise_db)
    result = await simulation.run(turns)
    if record is not None:
        simulation.record(record)
    return result

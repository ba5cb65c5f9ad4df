"""A virtual sound card: a Pipecat transport whose microphone plays queued caller audio in real time
and whose speaker records the bot's audio with the time each chunk played."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from pipecat.frames.frames import CancelFrame, EndFrame, InputAudioRawFrame, OutputAudioRawFrame, StartFrame
from pipecat.transports.base_input import BaseInputTransport
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import BaseTransport, TransportParams

CHUNK_S = 0.02


@dataclass
class Played:
    at: float  # monotonic time the chunk started playing
    audio: bytes
    sample_rate: int
    audible: bool = False  # louder than silence (set once, when it plays)

    @property
    def end(self) -> float:
        return self.at + len(self.audio) / 2 / self.sample_rate


@dataclass
class Line:
    """The caller's microphone: what is queued plays next, silence (or noise) otherwise."""

    sample_rate: int = 16000
    noise_rms: float = 0.0
    pending: list[np.ndarray] = field(default_factory=list)
    recorded: list[tuple[float, bytes]] = field(default_factory=list)
    speech_ended_at: float | None = None
    speaking: bool = False
    _rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(7))

    def say(self, samples: np.ndarray) -> None:
        """Queue int16 mono samples at `sample_rate`."""
        self.pending.append(samples.astype(np.int16))
        self.speaking = True

    def next_chunk(self, now: float) -> bytes:
        n = int(self.sample_rate * CHUNK_S)
        out = np.zeros(n, dtype=np.int16)
        filled = 0
        while self.pending and filled < n:
            head = self.pending[0]
            take = min(n - filled, len(head))
            out[filled : filled + take] = head[:take]
            filled += take
            if take == len(head):
                self.pending.pop(0)
            else:
                self.pending[0] = head[take:]
        if self.speaking and not self.pending:
            self.speaking = False
            self.speech_ended_at = now + filled / self.sample_rate
        if self.noise_rms:
            noise = self._rng.normal(0, self.noise_rms, n)
            out = np.clip(out.astype(np.float64) + noise, -32768, 32767).astype(np.int16)
        data = out.tobytes()
        self.recorded.append((now, data))
        return data


class SimulatedInput(BaseInputTransport):
    def __init__(self, line: Line, params: TransportParams, **kwargs):
        super().__init__(params, **kwargs)
        self._line = line
        self._task: asyncio.Task | None = None

    async def start(self, frame: StartFrame):
        await super().start(frame)
        await self.set_transport_ready(frame)
        if self._task is None:
            self._task = self.create_task(self._pump(), "simulated-microphone")

    async def _pump(self) -> None:
        start = time.monotonic()
        n = 0
        while True:
            now = time.monotonic()
            data = self._line.next_chunk(now)
            await self.push_audio_frame(InputAudioRawFrame(audio=data, sample_rate=self._line.sample_rate, num_channels=1))
            n += 1
            await asyncio.sleep(max(0.0, start + n * CHUNK_S - time.monotonic()))

    async def _stop_pump(self) -> None:
        if self._task is not None:
            await self.cancel_task(self._task)
            self._task = None

    async def stop(self, frame: EndFrame):
        await self._stop_pump()
        await super().stop(frame)

    async def cancel(self, frame: CancelFrame):
        await self._stop_pump()
        await super().cancel(frame)


class SimulatedOutput(BaseOutputTransport):
    def __init__(self, on_audio: Callable[[Played], None], params: TransportParams, **kwargs):
        super().__init__(params, **kwargs)
        self._on_audio = on_audio
        self._clock = 0.0

    async def start(self, frame: StartFrame):
        await super().start(frame)
        await self.set_transport_ready(frame)

    async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        # Play like a sound card: each chunk takes its duration; a gap means silence.
        now = time.monotonic()
        self._clock = max(self._clock, now)
        self._on_audio(Played(self._clock, frame.audio, frame.sample_rate))
        duration = len(frame.audio) / 2 / frame.sample_rate
        self._clock += duration
        await asyncio.sleep(max(0.0, self._clock - time.monotonic() - 0.005))
        return True


class SimulatedTransport(BaseTransport):
    """Both ends of a call in one process: `line` is the caller's microphone."""

    def __init__(self, line: Line, on_audio: Callable[[Played], None]):
        super().__init__()
        params = TransportParams(audio_in_enabled=True, audio_out_enabled=True, audio_in_sample_rate=line.sample_rate)
        self._input = SimulatedInput(line, params, name="simulated-input")
        self._output = SimulatedOutput(on_audio, params, name="simulated-output")
        self._register_event_handler("on_client_connected")
        self._register_event_handler("on_client_disconnected")

    def input(self) -> SimulatedInput:
        return self._input

    def output(self) -> SimulatedOutput:
        return self._output

    async def connect(self) -> None:
        await self._call_event_handler("on_client_connected", None)

    async def hang_up(self) -> None:
        await self._call_event_handler("on_client_disconnected", None)

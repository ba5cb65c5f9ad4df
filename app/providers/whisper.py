"""Embedded Whisper: Pipecat's WhisperSTTService with one model per process and an early start.

Two things the stock service does not do:

- **One model per process.** The stock service loads its CTranslate2 model in every call's
  constructor (~0.3 s of blocking work and ~100 MB each). Calls here share one loaded model per
  (directory, compute type); CTranslate2 models are safe to call from several threads.
- **Transcribing during the end-of-speech silence.** A segmented STT starts only when the VAD
  reports the stop, `vad_stop_secs` after the caller went quiet. Whisper's cost is fixed (its
  encoder always reads a 30 s window, ~0.25 s of the ~0.37 s here), so the only way to get the
  transcript sooner is to start sooner: after `early_start_s` of quiet audio the segment so far is
  transcribed speculatively. If the VAD then confirms the stop and nothing louder than the quiet
  level arrived in between, that transcript is used; if the caller speaks again, it is dropped.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncGenerator
from pathlib import Path

import numpy as np
from loguru import logger
from pipecat.frames.frames import ErrorFrame, Frame, InputAudioRawFrame, TranscriptionFrame, VADUserStartedSpeakingFrame, VADUserStoppedSpeakingFrame
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.whisper.stt import WhisperSTTService
from pipecat.utils.time import time_now_iso8601

_models: dict[tuple[str, str], object] = {}
_models_lock = threading.Lock()
# Two transcriptions at once per process, each on two threads (this machine's two cores): a dropped
# early start may still be decoding when the caller's real end of turn arrives, and a second call
# may be transcribing too. Measured here on a 2 s utterance: one decode 455 ms (541 ms with
# CTranslate2's default thread count, which oversubscribes two cores); two at once both done in
# 665 ms, against ~1000 ms one after the other.
WORKERS = 2
CPU_THREADS = min(2, os.cpu_count() or 1)
_transcribe_lock = threading.BoundedSemaphore(WORKERS)


def shared_whisper_model(path: str | Path, compute_type: str = "int8"):
    """The process-wide faster-whisper model for `path` (loaded on first use)."""
    from faster_whisper import WhisperModel

    key = (str(path), compute_type)
    with _models_lock:
        if key not in _models:
            logger.debug(f"loading Whisper model {path} ({compute_type})")
            _models[key] = WhisperModel(str(path), device="cpu", compute_type=compute_type, cpu_threads=CPU_THREADS, num_workers=WORKERS)
        return _models[key]


WHISPER_RATE = 16000


def to_whisper_rate(pcm: bytes, sample_rate: int) -> np.ndarray:
    """int16 PCM at the call's rate as the float32 16 kHz samples Whisper reads. A phone call's
    pipeline runs at 8 kHz (Silero VAD and Deepgram take it as is); its segments are upsampled
    here, once each, instead of every 20 ms of the call at the serializer."""
    audio = np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768.0
    if sample_rate and sample_rate != WHISPER_RATE and audio.size:
        import soxr

        audio = soxr.resample(audio, sample_rate, WHISPER_RATE, quality="HQ").astype(np.float32)
    return audio


def rms(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, dtype=np.int16)
    return float(np.sqrt(np.mean(samples.astype(np.float32) ** 2))) if samples.size else 0.0


class _Early:
    """A speculative transcription started before the VAD confirmed the end of speech."""

    def __init__(self, size: int):
        self.task: asyncio.Future | None = None
        self.size = size  # bytes of the segment it covers
        self.dropped = False  # the caller spoke again: skip it if it has not started

    def __len__(self) -> int:  # the segment queue tests truthiness
        return self.size


TTFS_P99_S = 1.0
TOKENS_PER_SECOND = 15  # speech is ~3 words a second; a spelled-out phone number ~6 tokens a second


def max_tokens(seconds: float) -> int:
    """A ceiling on the tokens decoded for `seconds` of speech, far above what speech needs: a
    decode that loops stops there instead of at Whisper's 448."""
    return int(seconds * TOKENS_PER_SECOND) + 20


class EmbeddedWhisperSTT(WhisperSTTService):
    """WhisperSTTService on a shared model, starting to transcribe during the closing silence.

    `early_start_s=0` turns the early start off (the stock behaviour). Quiet means below
    `quiet_ratio` of the loudest 20 ms of this segment (and below an absolute floor of speech).
    """

    def __init__(self, *, early_start_s: float = 0.08, quiet_ratio: float = 0.06, **kwargs):
        # The turn's STT safety net. Every transcript of a segmented STT is final, so it only ends
        # the wait for speech that transcribes to nothing; a long turn's decode on two busy cores
        # can take about this long (Pipecat's default is the same, with a warning on every call).
        kwargs.setdefault("ttfs_p99_latency", TTFS_P99_S)
        super().__init__(**kwargs)
        self._early_start_s = early_start_s
        self._quiet_ratio = quiet_ratio
        self._peak = 0.0
        self._quiet_s = 0.0
        self._early: _Early | None = None
        self.early_used = 0  # transcripts that came from an early start (for logs and tests)
        self.early_dropped = 0

    def _load(self):
        self._model = shared_whisper_model(self._settings.model, self._compute_type)
        if unsupported := self._unsupported_language():
            raise ValueError(unsupported)

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        if isinstance(frame, VADUserStartedSpeakingFrame):
            self._drop_early()
            self._peak = 0.0
            self._quiet_s = 0.0
        await super().process_frame(frame, direction)

    async def process_audio_frame(self, frame: InputAudioRawFrame, direction: FrameDirection):
        await super().process_audio_frame(frame, direction)
        if not self._user_speaking or self._early_start_s <= 0:
            return
        level = rms(frame.audio)
        if level > max(self._peak * self._quiet_ratio, 60.0):
            self._peak = max(self._peak, level)
            self._quiet_s = 0.0
            self._drop_early()
            return
        self._quiet_s += len(frame.audio) / 2 / frame.sample_rate
        if self._early is None and self._peak > 0 and self._quiet_s >= self._early_start_s:
            pcm = bytes(self._audio_buffer) + self._trailing_silence()
            early = _Early(len(pcm))
            early.task = asyncio.ensure_future(asyncio.to_thread(self._transcribe, pcm, early))
            self._early = early

    def _drop_early(self) -> None:
        if self._early is not None:
            self.early_dropped += 1
            self._early.dropped = True  # not transcribed if still waiting; else its result is ignored
            self._early = None

    async def _handle_user_stopped_speaking(self, frame: VADUserStoppedSpeakingFrame):
        early, self._early = self._early, None
        if early is None or not self.is_usable:
            await super()._handle_user_stopped_speaking(frame)
            return
        self._user_speaking = False
        self._audio_buffer.clear()
        self._record_stt_audio_usage(bytes(early.size))
        await self.emit_stt_usage_metrics()
        await self._segment_queue.put(early)

    def _transcribe(self, pcm: bytes, early: _Early | None = None) -> str:
        audio = to_whisper_rate(pcm, self.sample_rate)
        asked = time.perf_counter()
        with _transcribe_lock:
            began = time.perf_counter()
            if early is not None and early.dropped:
                return ""
            segments, _ = self._model.transcribe(
                audio,
                language=self._settings.language,
                hotwords=self._settings.hotwords,
                initial_prompt=self._settings.initial_prompt,
                # One decode, bounded by the audio's length. Whisper's default falls back to
                # sampling at higher temperatures when a decode looks repetitive or unsure, which a
                # digit string cut off mid-number does ("5-5-5-2-2-2-3"): measured here, 4 s of
                # decoding for 3.4 s of audio, holding the model from the caller's final words.
                temperature=0.0,
                max_new_tokens=max_tokens(len(audio) / WHISPER_RATE),
            )
            segments = list(segments)  # decoding happens as the generator is consumed
        done = time.perf_counter()
        logger.debug(
            f"whisper: {len(audio) / WHISPER_RATE:.2f}s of audio, waited {1000 * (began - asked):.0f} ms, decoded in "
            f"{1000 * (done - began):.0f} ms, temperatures {[s.temperature for s in segments]}"
        )
        # Whisper's own rule: silence is a likely no-speech segment that was also decoded with low
        # confidence. (Pipecat drops on no_speech_prob alone, which loses digit strings such as
        # phone numbers when the prompt is about pizzas: no_speech_prob ~0.4, avg_logprob ~-0.4.)
        threshold = self._settings.no_speech_prob
        kept = [s for s in segments if threshold is None or s.no_speech_prob < threshold or s.avg_logprob > -1.0]
        return " ".join(s.text.strip() for s in kept).strip()

    async def run_stt(self, audio: bytes | _Early) -> AsyncGenerator[Frame, None]:
        if not self._model:
            yield ErrorFrame("Whisper model not available")
            return
        await self.start_processing_metrics()
        if isinstance(audio, _Early):
            self.early_used += 1
            text = await audio.task
        else:
            text = await asyncio.to_thread(self._transcribe, audio)
        await self.stop_processing_metrics()
        if text:
            await self._handle_transcription(text, True, self._settings.language)
            logger.debug(f"Transcription: [{text}]")
            yield TranscriptionFrame(text, self._user_id, time_now_iso8601(), self._settings.language)

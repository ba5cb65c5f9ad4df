"""Silero VAD (bundled with Pipecat) that does not wake its model for silence, and runs inline.

Pipecat's VAD scores every 32 ms window with the Silero model, on a thread of its own per call:
a model run and two thread hops thirty times a second, whether the caller speaks or not.

- A caller is quiet most of a call (the bot is talking, or it is their turn to think), and the
  VAD's own rule already says a quiet window is not speech: `speaking` needs the model's
  confidence AND a smoothed loudness of at least `min_volume`. So a window is answered "not
  speech" without the model when its samples are all near silence (peak below `QUIET_PEAK`,
  -50 dBFS) and the smoothed loudness is already below `min_volume` (the caller is not mid-word).
  The loudness is still tracked, and the model's state is reset when it is woken again, as if
  the silence had been a fresh start. The decisions are Pipecat's to within a frame of audio
  (tested: a start or stop of speech 40 ms apart at most): the model's state differs after a skip.
- One model per process: every call's VAD has its own recurrent state over the one ONNX session
  (loading a session took ~26 ms of the event loop per call, ~1.3 s when 50 calls start at once).
- The loudness is measured every `VOLUME_EVERY` (2) windows, 64 ms, not every 32 ms window. It is
  BS.1770 loudness over the last 400 ms, so two windows apart it has moved by a sixth of its
  window, and it gates only against `min_volume` (-50 LUFS here, far below speech); measuring it
  (~34 us at 8 kHz) was ~8% of a worker's event loop at 25 phone calls (py-spy). The smoothing
  still runs every window, over the last value measured. And when no sample of the last 400 ms
  reaches `GATED_PEAK` (6 of 32767, -75 dBFS: digital silence, a muted line), nothing is measured:
  BS.1770 gates a block below -70 LUFS, and such a block is below it whatever its spectrum (the
  K-weighting adds at most ~4 dB), so Pipecat's measure would read exactly 0 (tested).
- Windows are scored on the event loop, not handed to the thread: the model takes ~0.1 ms a
  window (8 kHz, 0.14 ms at 16 kHz), and at 25 phone calls per process the hand-off to the
  thread and back cost the loop more than the model itself (profiled: 4.5% of the loop against
  ~3%), with the threads contending for the GIL on top.
"""

from __future__ import annotations

import copy
from importlib import resources

import numpy as np
from pipecat.audio.utils import exp_smoothing
from pipecat.audio.vad.silero import SileroOnnxModel, SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADAnalyzer, VADParams, VADState
from pipecat.audio.volume import VOLUME_WINDOW_SECS

VOLUME_EVERY = 2  # windows per measurement of the loudness
QUIET_PEAK = 100  # of int16 full scale 32767: -50 dBFS, below a phone line's speech by far
GATED_PEAK = 6  # -75 dBFS: 400 ms under it is below BS.1770's absolute gate, loudness 0


def peak(audio: bytes | bytearray) -> int:
    """The largest magnitude of a sample of 16-bit PCM `audio` (0 for empty audio)."""
    if len(audio) < 2:
        return 0
    samples = np.frombuffer(audio, dtype=np.int16, count=len(audio) // 2)
    return max(int(samples.max()), -int(samples.min()))


def quiet(audio: bytes | bytearray, limit: int = QUIET_PEAK) -> bool:
    """No sample of 16-bit PCM `audio` reaches `limit` (empty audio is quiet)."""
    return peak(audio) < limit


_loaded: SileroOnnxModel | None = None


def silero_model() -> SileroOnnxModel:
    """A Silero model with a state of its own, on the process's one ONNX session (stateless, and
    only ever run from the event loop here)."""
    global _loaded
    if _loaded is None:
        _loaded = SileroOnnxModel(str(resources.files("pipecat.audio.vad.data").joinpath("silero_vad.onnx")), force_onnx_cpu=True)
    model = copy.copy(_loaded)
    model.reset_states()
    return model


class QuietGatedSileroVAD(SileroVADAnalyzer):
    """`SileroVADAnalyzer` that skips the model for silent windows and runs on the loop; see above."""

    def __init__(self, *, sample_rate: int | None = None, params: VADParams | None = None):
        # SileroVADAnalyzer.__init__ would load a session of its own: what it sets up, on the shared one.
        VADAnalyzer.__init__(self, sample_rate=sample_rate, params=params)
        self._model = silero_model()
        self._windows_since_reset = 0
        self._low_confidence_windows = 0
        self._model_asleep = False
        self.windows_scored = 0  # by the model
        self.windows_skipped = 0
        self._loudness = 0.0  # the last measured
        self._windows_to_measure = 0
        self.loudness_measured = 0
        self.loudness_gated = 0  # measurements answered 0 without measuring (GATED_PEAK)
        self._gated_bytes = 0  # of the latest audio, no sample reaching GATED_PEAK
        self._peaked: tuple[bytes | bytearray | None, int] = (None, 0)  # the last window and its peak

    def _peak(self, window: bytes | bytearray) -> int:
        """The window's peak, found once: Pipecat hands each window to `voice_confidence`, then
        to `_get_smoothed_volume`, and both look at it (the window object is kept, so `is` is sure)."""
        if self._peaked[0] is not window:
            self._peaked = (window, peak(window))
        return self._peaked[1]

    def _get_smoothed_volume(self, audio: bytes) -> float:
        self._volume_tracker.update(audio, self.sample_rate)
        self._gated_bytes = self._gated_bytes + len(audio) if self._peak(audio) < GATED_PEAK else 0
        if self._windows_to_measure == 0:
            if self._gated_bytes >= round(VOLUME_WINDOW_SECS * self.sample_rate) * 2:
                self._loudness = 0.0  # what the measure gives: the whole window is below the gate
                self.loudness_gated += 1
            else:
                self._loudness = self._volume_tracker.volume
                self.loudness_measured += 1
            self._windows_to_measure = VOLUME_EVERY
        self._windows_to_measure -= 1
        return exp_smoothing(self._loudness, self._prev_volume, self._smoothing_factor)

    def _below_volume(self) -> bool:
        return self._prev_volume < self.params.min_volume

    async def analyze_audio(self, buffer: bytes) -> VADState:
        return self._run_analyzer(buffer)

    def voice_confidence(self, buffer) -> float:
        if self._below_volume() and self._peak(buffer) < QUIET_PEAK:
            self._model_asleep = True
            self.windows_skipped += 1
            return 0.0
        if self._model_asleep:
            self._model.reset_states()
            self._model_asleep = False
        self.windows_scored += 1
        return super().voice_confidence(buffer)

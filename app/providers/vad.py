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
- Windows are scored on the event loop, not handed to the thread: at 25 phone calls per process
  the hand-off to the thread and back cost the loop more than the model itself (profiled: 4.5% of
  the loop against ~3%), with the threads contending for the GIL on top.
- The windows of all the process's calls waiting at the same moment are scored in one model run
  (`SileroBatch`): a run costs ~0.2 ms whatever it holds, nearly all of it onnxruntime's own
  overhead (one window 232 us; 8 windows 81 us each; 25 windows 56 us each, 8 kHz), and Silero
  scores every row of a batch on its own (each call passes in its own recurrent state and
  context). A call asks, and its VAD waits for the run. With no other call talking (no other
  model asked in the last `TALKING_S`) the run is the next thing the event loop does, after
  whatever else was already due: one call alone waits for nothing.
- With other calls talking, the run is held a little for their next windows to join it:
  `HOLD_PER_CALL_S` (4 ms) for each other call talking, at most `HOLD_MAX_S` (20 ms), and no
  longer than it takes every call talking to ask. Under load a run costs far more than the
  figures above, which are of a loop running the model and nothing else: between two runs the
  other calls' work has taken the model's weights and code out of the CPU's caches, and then a
  run of four windows costs about what a run of one does (in a loop, 0.23 ms a run of one; with
  the cache thrashed between runs, ~0.9 ms for one or four). Traced in a worker at 15 phone calls
  (bench/concurrent_calls.py, 30 calls; the thread's CPU around each run): a run took ~1.1
  windows and ~0.65 ms without the hold, ~0.58 ms a window; ~2.5 windows and ~0.95 ms with it,
  ~0.39 ms a window. One call talking among few waits a few milliseconds at most; a busy process
  (six calls talking) the whole 20 ms.
- A frame's windows (a phone call's 60 ms holds about two) wait for one batch together: its
  successive runs take the first window of every call asking, then the second, each window from
  the state the one before left, all in the same loop turn. Asked for one at a time, each window
  cost a frame two more loop turns (the run, then the wake-up), and under load a loop turn is long:
  traced at 50 calls on a slow day, a call's VAD fell up to 1.9 s behind its audio, queuing the
  transcript behind it (the turn waited for it). The loudness does not depend on the model, so
  each window's gate is known before any is scored; where Silero's periodic reset of the model
  falls between two windows of a frame, the ones after it are scored again from the reset state.
"""

from __future__ import annotations

import asyncio
import copy
import weakref
from importlib import resources

import numpy as np
from loguru import logger
from pipecat.audio.utils import exp_smoothing
from pipecat.audio.vad.silero import SileroOnnxModel, SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADAnalyzer, VADParams, VADState
from pipecat.audio.volume import VOLUME_WINDOW_SECS

VOLUME_EVERY = 2  # windows per measurement of the loudness
QUIET_PEAK = 100  # of int16 full scale 32767: -50 dBFS, below a phone line's speech by far
GATED_PEAK = 6  # -75 dBFS: 400 ms under it is below BS.1770's absolute gate, loudness 0
TALKING_S = 0.1  # a call whose VAD asked for the model within this long is talking
HOLD_PER_CALL_S = 0.004  # a run waits this long for each other call talking, for their windows to join it
HOLD_MAX_S = 0.020  # ... and no longer


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


class SileroBatch:
    """Scores windows of many calls' Silero models in one run of the shared session (see above)."""

    def __init__(self) -> None:
        # Each request: a model, its windows in order, their rate, the future of their confidences,
        # and whether that future takes the one window's confidence rather than the list.
        self._waiting: list[tuple[SileroOnnxModel, list[np.ndarray], int, asyncio.Future, bool]] = []
        self._asked: dict[int, float] = {}  # id of each model that asked lately -> when it last did
        self._due: asyncio.Handle | None = None  # the next run, once one is waiting
        self._held = False  # ... held for other calls' windows to join it
        self.hold_per_call_s, self.hold_max_s = HOLD_PER_CALL_S, HOLD_MAX_S
        self.batches = 0  # loop turns that scored windows
        self.runs = 0  # model runs (a batch makes one per window of the model asking for most)
        self.windows = 0

    def score(self, model: SileroOnnxModel, audio: np.ndarray, sample_rate: int) -> asyncio.Future[float]:
        """The model's confidence for a window of float32 `audio`, once the next run has scored it
        (the model's state and context move on then, as Silero's own `model(audio, rate)` does)."""
        return self._ask(model, [audio], sample_rate, single=True)

    def score_all(self, model: SileroOnnxModel, windows: list[np.ndarray], sample_rate: int) -> asyncio.Future[list[float]]:
        """The model's confidences for successive `windows` (in order), all scored in the next
        batch: each run of it takes the next window of every model asking, so a call's windows
        wait for the loop together, not one loop turn and more each."""
        return self._ask(model, windows, sample_rate, single=False)

    def _ask(self, model: SileroOnnxModel, windows: list[np.ndarray], sample_rate: int, *, single: bool) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._waiting.append((model, windows, sample_rate, future, single))
        now = loop.time()
        self._asked[id(model)] = now
        if self._due is None:
            # With other calls talking, their next windows join this run.
            self._schedule(loop, min(self.hold_max_s, self.hold_per_call_s * (self._talking(now) - 1)))
        elif self._held and len({id(m) for m, *_ in self._waiting}) >= self._talking(now):
            self._due.cancel()  # every call talking lately has asked: nothing more to wait for
            self._schedule(loop)
        return future

    def _schedule(self, loop: asyncio.AbstractEventLoop, hold: float = 0.0) -> None:
        """The next run: held `hold` seconds, or at the next loop turn."""
        self._held = hold > 0
        self._due = loop.call_later(hold, self._run) if self._held else loop.call_soon(self._run)

    def _talking(self, now: float) -> int:
        """Models that asked within `TALKING_S` (the others are forgotten)."""
        for key in [k for k, at in self._asked.items() if now - at > TALKING_S]:
            del self._asked[key]
        return len(self._asked)

    def _run(self) -> None:
        waiting, self._waiting = self._waiting, []
        self._due = None
        self.batches += 1
        groups: dict[tuple[object, int], list[tuple[SileroOnnxModel, list[np.ndarray], asyncio.Future, bool]]] = {}
        taken: set[int] = set()  # models with windows in this batch
        for model, windows, rate, future, single in waiting:
            if future.cancelled():
                continue
            if id(model) in taken:  # its windows need the state the others leave: the next batch
                if self._due is None:
                    self._schedule(asyncio.get_running_loop())
                self._waiting.append((model, windows, rate, future, single))
                continue
            taken.add(id(model))
            groups.setdefault((model.session, rate), []).append((model, windows, future, single))
        for (_, rate), batch in groups.items():
            confidences: list[list[float]] = [[] for _ in batch]
            for step in range(max(len(windows) for _, windows, _, _ in batch)):
                rows = [i for i, (_, windows, _, _) in enumerate(batch) if len(windows) > step]
                try:
                    scored = self._scores(rate, [(batch[i][0], batch[i][1][step]) for i in rows])
                except Exception as e:  # as Pipecat's Silero: the error is logged, the window is not speech
                    logger.error(f"Error analyzing audio with Silero VAD: {e}")
                    scored = [0.0] * len(rows)
                for i, confidence in zip(rows, scored, strict=True):
                    confidences[i].append(confidence)
            for (_, _, future, single), scores in zip(batch, confidences, strict=True):
                if not future.done():
                    future.set_result(scores[0] if single else scores)

    def _scores(self, rate: int, windows: list[tuple[SileroOnnxModel, np.ndarray]]) -> list[float]:
        context_size = 64 if rate == 16000 else 32
        rows, states = [], []
        for model, audio in windows:
            if model._last_sr != rate:  # a first window, or a change of rate: Silero starts afresh
                model.reset_states()
            context = model._context[0] if model._context.shape[1] else np.zeros(context_size, dtype=np.float32)
            rows.append(np.concatenate((context, audio)))
            states.append(model._state)
        x = np.stack(rows)
        out, state = windows[0][0].session.run(None, {"input": x, "state": np.concatenate(states, axis=1), "sr": np.array(rate, dtype="int64")})
        for i, (model, _) in enumerate(windows):
            model._state = np.ascontiguousarray(state[:, i : i + 1, :])
            model._context = x[i : i + 1, -context_size:].copy()
            model._last_sr, model._last_batch_size = rate, 1
        self.runs += 1
        self.windows += len(windows)
        return [float(c) for c in out[:, 0]]


_batches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, SileroBatch] = weakref.WeakKeyDictionary()


def silero_batch() -> SileroBatch:
    """The running event loop's batch (one per process in a server; a test's loop has its own)."""
    loop = asyncio.get_running_loop()
    batch = _batches.get(loop)
    if batch is None:
        batch = _batches[loop] = SileroBatch()
    return batch


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
        self.windows_rescored = 0  # scored again after Silero's periodic reset of the model
        self._loudness = 0.0  # the last measured
        self._windows_to_measure = 0
        self.loudness_measured = 0
        self.loudness_gated = 0  # measurements answered 0 without measuring (GATED_PEAK)
        self._gated_bytes = 0  # of the latest audio, no sample reaching GATED_PEAK
        self._peaked: tuple[bytes | bytearray | None, int] = (None, 0)  # the last window and its peak
        self._unscored = bytearray()  # audio short of a window
        self._scored: tuple[float, bool] | None = None  # the window being analyzed: its confidence, from the model?
        self._volume: float | None = None  # ... and its smoothed loudness

    def _peak(self, window: bytes | bytearray) -> int:
        """The window's peak, found once: the quiet gate (`_quiet_for`) and then the loudness
        (`_measure`) both look at each window."""
        if self._peaked[0] != window:
            self._peaked = (window, peak(window))
        return self._peaked[1]

    def _get_smoothed_volume(self, audio: bytes) -> float:
        if self._volume is not None:  # analyze_audio measured it already (see `_plan`)
            return self._volume
        return self._measure(audio, self._prev_volume)

    def _measure(self, audio: bytes, prev_volume: float) -> float:
        """The smoothed loudness after `audio`, the one before it being `prev_volume`."""
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
        return exp_smoothing(self._loudness, prev_volume, self._smoothing_factor)

    async def analyze_audio(self, buffer: bytes) -> VADState:
        """Pipecat's analysis (`_run_analyzer`), one window at a time, the buffer's windows scored
        together in the process's next batch first. The start and stop counts are checked after
        every window, where Pipecat checks them once per buffer: a turn starts or ends on the
        window that completes it, not at the end of the frame holding that window."""
        self._unscored += buffer
        size = self._vad_frames_num_bytes
        windows = []
        while len(self._unscored) >= size:
            windows.append(bytes(self._unscored[:size]))
            del self._unscored[:size]
        if not windows:
            return self._vad_state
        volumes, sleeps = self._plan(windows)
        scores = await self._score(windows, sleeps)
        for i, window in enumerate(windows):
            self._scored, self._volume = scores[i], volumes[i]
            try:
                self._run_analyzer(window)
            finally:
                self._scored = self._volume = None
            if scores[i][1] and self._windows_since_reset == 0 and any(by_model for _, by_model in scores[i + 1 :]):
                # Silero's own periodic reset came after this window (`_maybe_reset_model`): the
                # windows after it are heard again, from the reset state, as Pipecat's would be.
                self.windows_rescored += sum(not sleeping for sleeping in sleeps[i + 1 :])
                scores[i + 1 :] = await self._score(windows[i + 1 :], sleeps[i + 1 :])
        return self._vad_state

    def _plan(self, windows: list[bytes]) -> tuple[list[float], list[bool]]:
        """Each window's smoothed loudness, and whether the model sleeps through it: all its
        samples are near silence and the loudness before it is below `min_volume`. The loudness
        does not depend on the model, so it is known for all of them before any is scored."""
        volumes, sleeps = [], []
        volume = self._prev_volume
        for window in windows:
            sleeps.append(self._quiet_for(window, volume))
            volume = self._measure(window, volume)
            volumes.append(volume)
        self.windows_skipped += sum(sleeps)
        self.windows_scored += len(windows) - sum(sleeps)
        return volumes, sleeps

    async def _score(self, windows: list[bytes], sleeps: list[bool]) -> list[tuple[float, bool]]:
        """Each window's confidence, and whether the model gave it (not the quiet gate). The
        model's windows go to the batch together, but for one woken after a sleep: its state is
        reset first, as if the silence had been a fresh start, so what comes before it goes first."""
        scores: list[tuple[float, bool]] = [(0.0, False)] * len(windows)
        together: list[int] = []
        for i, sleeping in enumerate(sleeps):
            if sleeping:
                self._model_asleep = True
                continue
            if self._model_asleep:
                await self._score_together(windows, together, scores)
                together = []
                self._wake()
            together.append(i)
        await self._score_together(windows, together, scores)
        return scores

    async def _score_together(self, windows: list[bytes], which: list[int], scores: list[tuple[float, bool]]) -> None:
        if which:
            audio = [np.frombuffer(windows[i], np.int16).astype(np.float32) / 32768.0 for i in which]
            for i, confidence in zip(which, await silero_batch().score_all(self._model, audio, self.sample_rate), strict=True):
                scores[i] = (confidence, True)

    def _quiet_for(self, window: bytes, volume: float) -> bool:
        """Whether the model sleeps through `window`, the smoothed loudness before it being `volume`."""
        return volume < self.params.min_volume and self._peak(window) < QUIET_PEAK

    def _wake(self) -> None:
        """The model hears again after sleeping: its state is reset, as if the silence had been a fresh start."""
        if self._model_asleep:
            self._model.reset_states()
            self._model_asleep = False

    def _sleeps_through(self, window: bytes) -> bool:
        """`_plan` and `_score` for one window, when `voice_confidence` is called on its own."""
        if self._quiet_for(window, self._prev_volume):
            self._model_asleep = True
            self.windows_skipped += 1
            return True
        self._wake()
        self.windows_scored += 1
        return False

    def voice_confidence(self, buffer) -> float:
        if self._scored is None:  # called on its own, not from analyze_audio: scored here and now
            return 0.0 if self._sleeps_through(buffer) else super().voice_confidence(buffer)
        confidence, by_model = self._scored
        if by_model:
            self._maybe_reset_model(confidence)
        return confidence

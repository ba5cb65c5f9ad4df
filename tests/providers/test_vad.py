"""The quiet-gated Silero VAD: no model run (and no thread hop) for silence, the same decisions on speech."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADParams, VADState

from app.providers.vad import GATED_PEAK, QUIET_PEAK, VOLUME_EVERY, QuietGatedSileroVAD, quiet, silero_batch, silero_model
from app.simulate.caller import synthesize

RATE = 16000
FRAME = 640  # 40 ms at 16 kHz, as a Twilio call's frames arrive


def _states(vad, audio: np.ndarray) -> list[VADState]:
    vad.set_sample_rate(RATE)

    async def run():
        return [await vad.analyze_audio(audio[i : i + FRAME].tobytes()) for i in range(0, len(audio) - FRAME + 1, FRAME)]

    return asyncio.run(run())


@pytest.fixture(scope="module")
def call_audio() -> np.ndarray:
    """Two caller lines with a second of silence before, between and after (a low hiss in one gap)."""
    silence = np.zeros(RATE, dtype=np.int16)
    hiss = (np.random.default_rng(1).standard_normal(RATE) * 15).astype(np.int16)  # well under QUIET_PEAK
    one, two = synthesize("I'd like to book a haircut."), synthesize("Next Thursday at four.")
    return np.concatenate([silence, one, hiss, silence, two, silence])


def test_quiet_is_the_peak_under_the_threshold():
    assert quiet(b"") and quiet(np.zeros(320, np.int16).tobytes())
    assert quiet(np.full(320, QUIET_PEAK - 1, np.int16).tobytes()) and quiet(np.full(320, -QUIET_PEAK + 1, np.int16).tobytes())
    assert not quiet(np.full(320, QUIET_PEAK, np.int16).tobytes()) and not quiet(np.full(320, -QUIET_PEAK, np.int16).tobytes())


def test_decisions_match_pipecats_silero_within_a_frame_while_silence_skips_the_model(call_audio):
    params = VADParams(start_secs=0.2, stop_secs=0.2)
    gated = QuietGatedSileroVAD(params=params)
    expected = _states(SileroVADAnalyzer(params=params), call_audio)
    got = _states(gated, call_audio)

    def turns(states):  # the starts and stops of speech the aggregator acts on
        return [i for i in range(1, len(states)) if (states[i] == VADState.SPEAKING) != (states[i - 1] == VADState.SPEAKING)]

    assert len(turns(expected)) == 4  # two lines heard, each started and stopped
    # The same starts and stops, each within one 40 ms frame (the model's state differs after a
    # skip; Piper's voice differs a little from run to run, so the clip does too).
    assert len(turns(got)) == 4 and all(abs(a - b) <= 1 for a, b in zip(turns(got), turns(expected), strict=True)), (turns(got), turns(expected))
    # Most of the call is silence, and the model slept through it.
    assert gated.windows_skipped > gated.windows_scored > 0
    windows = len(call_audio) // gated.num_frames_required()
    assert gated.windows_skipped > windows / 2
    # The loudness was measured every other window (VOLUME_EVERY), and the decisions above held;
    # over digital silence (not the hiss) it was known to be 0 without measuring.
    assert abs(gated.loudness_measured + gated.loudness_gated - windows / VOLUME_EVERY) <= 2
    assert gated.loudness_gated > windows / VOLUME_EVERY / 3


@pytest.mark.parametrize("rate", [8000, 16000])
def test_400_ms_under_the_gated_peak_measures_0_whatever_it_is(rate):
    """What the VAD answers without measuring is what Pipecat's BS.1770 measure says: the block is
    under the absolute gate (-70 LUFS) for the loudest spectra the peak allows."""
    from pipecat.audio.utils import calculate_audio_volume

    n, p = round(0.4 * rate), GATED_PEAK - 1
    t = np.arange(n) / rate
    signals = [np.tile([p, -p], n // 2), np.sign(np.sin(2 * np.pi * 3000 * t)) * p, np.random.default_rng(2).integers(-p, p + 1, n), np.full(n, p)]
    assert all(calculate_audio_volume(s.astype(np.int16).tobytes(), rate) == 0 for s in signals)
    # ... and just above the peak it is not: the threshold is where the gate is.
    assert calculate_audio_volume(np.tile([p + 2, -(p + 2)], n // 2).astype(np.int16).tobytes(), rate) > 0


def test_the_vad_runs_on_the_loop_and_silence_skips_the_model():
    vad = QuietGatedSileroVAD(params=VADParams())
    vad.set_sample_rate(RATE)
    used = []
    vad._executor.submit = lambda *a, **k: used.append(a)  # noqa: SLF001 - the thread Pipecat runs the model on
    speech = synthesize("Hello there.")

    async def run():
        for _ in range(50):
            assert await vad.analyze_audio(np.zeros(FRAME, np.int16).tobytes()) == VADState.QUIET
        assert vad.windows_scored == 0 and vad.windows_skipped == 50 * FRAME // 512
        states = [await vad.analyze_audio(speech[i : i + FRAME].tobytes()) for i in range(0, len(speech) - FRAME + 1, FRAME)]
        assert VADState.SPEAKING in states and vad.windows_scored > 0

    asyncio.run(run())
    assert used == []  # no window went to the thread


def test_calls_share_the_onnx_session_and_keep_their_own_state(call_audio):
    one, two = QuietGatedSileroVAD(params=VADParams()), QuietGatedSileroVAD(params=VADParams())
    assert one._model.session is two._model.session  # noqa: SLF001 - loaded once per process
    _states(one, call_audio[: RATE * 3])  # one call hears speech; the other's model state is untouched
    assert one._model._state.any() and not two._model._state.any()  # noqa: SLF001


def test_one_run_scores_the_windows_of_many_calls_as_each_alone(call_audio):
    """Windows of different calls waiting together go in one run; each call's confidences are what
    its own model run window by window gives, and its state is its own."""
    window = 512
    clips = [call_audio[RATE + i * 1600 : RATE + i * 1600 + window * 12] for i in range(6)]  # six calls, mid-speech
    alone = []
    for clip in clips:
        model = silero_model()
        alone.append([float(model(clip[i : i + window].astype(np.float32) / 32768.0, RATE)[0][0]) for i in range(0, len(clip), window)])
    models = [silero_model() for _ in clips]

    async def call(model, clip):
        return [await silero_batch().score(model, clip[i : i + window].astype(np.float32) / 32768.0, RATE) for i in range(0, len(clip), window)]

    async def run():
        together = await asyncio.gather(*(call(m, c) for m, c in zip(models, clips, strict=True)))
        return together, silero_batch()

    together, batch = asyncio.run(run())
    assert np.allclose(together, alone, atol=1e-5), np.abs(np.array(together) - np.array(alone)).max()
    assert max(max(c) for c in alone) > 0.5  # speech: the comparison is not of zeros
    assert batch.windows == 6 * 12 and batch.runs == 12  # each run took one window of every call


def test_calls_analyzing_together_hear_what_each_hears_alone(call_audio):
    """Five calls' VADs at once (each a clip offset from the others): their batched decisions are
    each call's decisions alone, and the runs were fewer than the windows."""
    clips = [call_audio[i * 3200 :] for i in range(5)]
    alone = [_states(QuietGatedSileroVAD(params=VADParams()), clip) for clip in clips]
    vads = [QuietGatedSileroVAD(params=VADParams()) for _ in clips]
    for vad in vads:
        vad.set_sample_rate(RATE)

    async def call(vad, clip):
        return [await vad.analyze_audio(clip[i : i + FRAME].tobytes()) for i in range(0, len(clip) - FRAME + 1, FRAME)]

    async def run():
        states = await asyncio.gather(*(call(v, c) for v, c in zip(vads, clips, strict=True)))
        return states, silero_batch()

    together, batch = asyncio.run(run())
    assert together == alone
    assert batch.windows == sum(v.windows_scored + v.windows_rescored for v in vads) and batch.runs < batch.windows / 2


def test_a_failed_run_is_no_speech_and_the_calls_go_on(call_audio):
    vad = QuietGatedSileroVAD(params=VADParams())
    vad.set_sample_rate(RATE)
    speech = call_audio[RATE : RATE * 2]

    class Broken:
        def run(self, *args, **kwargs):
            raise RuntimeError("onnxruntime failed")

    vad._model.session = Broken()  # noqa: SLF001 - this call's model only (a copy sharing the session)

    async def run():
        return [await vad.analyze_audio(speech[i : i + FRAME].tobytes()) for i in range(0, len(speech) - FRAME + 1, FRAME)]

    assert set(asyncio.run(run())) == {VADState.QUIET} and vad.windows_scored > 0


def test_a_call_that_stops_waiting_leaves_the_run_to_the_others(call_audio):
    one, two = silero_model(), silero_model()
    window = call_audio[RATE : RATE + 512].astype(np.float32) / 32768.0

    async def run():
        batch = silero_batch()
        gone, kept = batch.score(one, window, RATE), batch.score(two, window, RATE)
        gone.cancel()  # the call ended while its window waited
        return await kept, batch

    confidence, batch = asyncio.run(run())
    assert 0.0 <= confidence <= 1.0 and batch.windows == 1 and not one._state.any()  # noqa: SLF001


def test_a_models_windows_asked_for_together_are_scored_in_order(call_audio):
    """Two windows of one call asked for without waiting go in successive runs, the second scored
    from the state the first left, as one model run window by window scores them."""
    audio = call_audio[RATE : RATE + 1024].astype(np.float32) / 32768.0
    alone = silero_model()
    expected = [float(alone(audio[:512], RATE)[0][0]), float(alone(audio[512:], RATE)[0][0])]

    async def run():
        batch, model = silero_batch(), silero_model()
        first, second = batch.score(model, audio[:512], RATE), batch.score(model, audio[512:], RATE)
        return [await first, await second], batch.runs

    scores, runs = asyncio.run(run())
    assert np.allclose(scores, expected, atol=1e-5) and runs == 2


def test_a_batch_scores_several_windows_of_each_model_in_successive_runs(call_audio):
    """`score_all`: each model's windows in order, one run per step, all in one loop turn; each
    model's confidences as its own model run window by window gives them."""
    window = 512
    clips = [call_audio[RATE + 8000 + i * 1600 : RATE + 8000 + i * 1600 + window * n] for i, n in enumerate((2, 3, 1))]  # mid-speech
    alone = []
    for clip in clips:
        model = silero_model()
        alone.append([float(model(clip[i : i + window].astype(np.float32) / 32768.0, RATE)[0][0]) for i in range(0, len(clip), window)])
    models = [silero_model() for _ in clips]

    async def run():
        batch = silero_batch()
        futures = [batch.score_all(m, [c[i : i + window].astype(np.float32) / 32768.0 for i in range(0, len(c), window)], RATE) for m, c in zip(models, clips, strict=True)]
        await asyncio.sleep(0)  # one loop turn
        assert all(f.done() for f in futures)
        return [f.result() for f in futures], batch

    together, batch = asyncio.run(run())
    assert all(np.allclose(t, a, atol=1e-5) for t, a in zip(together, alone, strict=True)), (together, alone)
    assert max(max(c) for c in alone) > 0.5
    assert batch.batches == 1 and batch.runs == 3 and batch.windows == 6


def _at_8k(audio: np.ndarray) -> np.ndarray:
    return audio[: len(audio) // 2 * 2].reshape(-1, 2).mean(axis=1).astype(np.int16)


def test_a_phone_frames_windows_wait_for_one_batch_and_decide_as_one_by_one(call_audio):
    """A phone call's 60 ms frame at 8 kHz holds about two 32 ms windows: they wait for the loop
    once together, not once each. What the VAD decides, and when, is what Pipecat's analysis gives
    with the windows scored one by one (`_run_analyzer` window by window, the model inline),
    including across Silero's periodic resets of the model in a noisy quiet (the windows after
    one are scored again)."""
    rate, frame = 8000, 480 * 2  # bytes of 60 ms
    noise = (np.random.default_rng(3).standard_normal(rate * 5) * 300).astype(np.int16)  # not quiet: the model hears it
    audio = np.concatenate([noise, _at_8k(call_audio), noise]).tobytes()
    params = VADParams(start_secs=0.2, stop_secs=0.2)
    batched, one_by_one = QuietGatedSileroVAD(params=params), QuietGatedSileroVAD(params=params)
    batched.set_sample_rate(rate)
    one_by_one.set_sample_rate(rate)
    window = one_by_one._vad_frames_num_bytes  # noqa: SLF001

    async def run():
        states = [await batched.analyze_audio(audio[i : i + frame]) for i in range(0, len(audio) - frame + 1, frame)]
        return states, silero_batch()

    states, batch = asyncio.run(run())
    expected, pending = [], b""
    for i in range(0, len(audio) - frame + 1, frame):
        pending += audio[i : i + frame]
        while len(pending) >= window:
            one_by_one._run_analyzer(pending[:window])  # noqa: SLF001 - scored inline, window by window
            pending = pending[window:]
        expected.append(one_by_one._vad_state)  # noqa: SLF001
    assert states == expected
    assert states.count(VADState.SPEAKING) > 10
    assert batched.windows_rescored > 0  # a periodic reset fell between a frame's two windows
    frames_heard = len(range(0, len(audio) - frame + 1, frame))
    assert batch.runs >= batched.windows_scored and batch.batches <= frames_heard + batched.windows_rescored


def test_with_another_call_talking_a_run_waits_for_its_window(call_audio):
    """Two calls talking: a window asked for a moment before the other call's is held for it, and
    both go in one run, as each alone would score them. Once every call talking has asked, the run
    goes at once, not at the end of the hold."""
    window = 512
    clips = [call_audio[RATE + i * 1600 : RATE + i * 1600 + window * 2].astype(np.float32) / 32768.0 for i in range(2)]
    alone = []
    for clip in clips:
        model = silero_model()
        alone.append([float(model(clip[:window], RATE)[0][0]), float(model(clip[window:], RATE)[0][0])])

    async def run():
        batch, models = silero_batch(), [silero_model(), silero_model()]
        batch.hold_per_call_s = batch.hold_max_s = 60.0  # a hold longer than the test: only the other call's ask ends it
        first = await asyncio.gather(*(batch.score(m, c[:window], RATE) for m, c in zip(models, clips, strict=True)))
        runs = batch.runs  # both talking now
        held = batch.score(models[0], clips[0][window:], RATE)
        await asyncio.sleep(0.01)
        waited = not held.done()
        other = batch.score(models[1], clips[1][window:], RATE)
        second = [await held, await other]
        return first, second, waited, batch.runs - runs

    first, second, waited, runs = asyncio.run(run())
    assert waited  # held for the other call
    assert runs == 1  # then one run for both
    assert np.allclose([[first[0], second[0]], [first[1], second[1]]], alone, atol=1e-5)


def test_a_held_run_waits_no_longer_than_its_hold(call_audio):
    """A call talking whose window the other call never joins (it stopped talking) is scored
    after the hold: 4 ms for the one other call talking."""
    audio = call_audio[RATE : RATE + 512].astype(np.float32) / 32768.0

    async def run():
        batch, one, two = silero_batch(), silero_model(), silero_model()
        await asyncio.gather(batch.score(one, audio, RATE), batch.score(two, audio, RATE))
        held = batch.score(one, audio, RATE)
        await asyncio.sleep(0)
        waiting = not held.done()
        await asyncio.wait_for(held, timeout=5)  # the hold (4 ms) ends it, not the other call
        return waiting, batch.runs

    waiting, runs = asyncio.run(run())
    assert waiting and runs == 2


def test_a_call_alone_is_scored_at_the_next_loop_turn(call_audio):
    """With no other call talking lately, nothing is held: a phone call alone on a server waits
    for no one."""
    audio = call_audio[RATE : RATE + 512].astype(np.float32) / 32768.0

    async def run():
        batch, model, gone = silero_batch(), silero_model(), silero_model()
        await batch.score(gone, audio, RATE)
        await asyncio.sleep(0.15)  # the other call has been quiet longer than TALKING_S
        scored = batch.score(model, audio, RATE)
        await asyncio.sleep(0)
        return scored.done()

    assert asyncio.run(run())

"""The Deepgram stand-in, driven by Pipecat's real DeepgramSTTService (and the SDK under it)."""

from __future__ import annotations

import asyncio
import time
import warnings

import numpy as np
import pytest
from deepgram import AsyncDeepgramClient, DeepgramClientEnvironment
from deepgram.listen.v1.types import ListenV1Metadata, ListenV1Results, ListenV1SpeechStarted, ListenV1UtteranceEnd
from pipecat.frames.frames import ErrorFrame, InputAudioRawFrame, InterimTranscriptionFrame, TranscriptionFrame, VADUserStartedSpeakingFrame, VADUserStoppedSpeakingFrame
from pipecat.services.deepgram import stt as deepgram_stt
from pipecat.services.deepgram.stt import DeepgramSTTService
from pipecat.tests.utils import SleepFrame, run_test

from app.simulate.caller import synthesize
from app.standins.deepgram import DeepgramStandIn, ScriptedTranscriber, WhisperTranscriber
from app.standins.fault import Fault

with warnings.catch_warnings():
    # deepgram-sdk 7 imports websockets' legacy client, deprecated since websockets 14; the warning
    # is raised (an error here) from deepgram's module, on the first connect
    warnings.simplefilter("ignore", DeprecationWarning)
    import deepgram.listen.v1.client  # noqa: F401

KEY = "test-key"
RATE = 16000
CHUNK = 320  # 20 ms


def tone(seconds: float, amplitude: float = 6000.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * 220 * t)).astype(np.int16)


def quiet(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), dtype=np.int16)


def chunks(*parts: np.ndarray) -> list[InputAudioRawFrame]:
    data = np.concatenate(parts).astype(np.int16).tobytes()
    return [InputAudioRawFrame(data[i : i + CHUNK * 2], sample_rate=RATE, num_channels=1) for i in range(0, len(data), CHUNK * 2)]


def stt(standin: DeepgramStandIn, key: str = KEY, **settings) -> DeepgramSTTService:
    settings.setdefault("interim_results", True)
    return DeepgramSTTService(api_key=key, base_url=standin.base_url, settings=DeepgramSTTService.Settings(**settings))


def texts(frames, kind: type) -> list[str]:
    return [f.text for f in frames if type(f) is kind]


def results(connection) -> list[dict]:
    return [m for m in connection.sent if m["type"] == "Results"]


def errors(frames) -> list[ErrorFrame]:
    return [f for f in frames if isinstance(f, ErrorFrame)]


@pytest.fixture
def fast_retry(monkeypatch):
    """Pipecat waits at least 4 s before reconnecting; tests need not."""
    monkeypatch.setattr(deepgram_stt, "exponential_backoff_time", lambda attempt: 0.05)


async def test_transcribes_each_utterance_with_interims_and_records_the_query():
    scripted = ScriptedTranscriber(["I would like a haircut please", "on Wednesday"])
    async with DeepgramStandIn(scripted, api_key=KEY) as s:
        frames = chunks(quiet(0.2), tone(1.2), quiet(0.5)) + [SleepFrame(0.4)] + chunks(tone(0.6), quiet(0.5)) + [SleepFrame(0.4)]
        down, up = await run_test(stt(s, keyterm=["haircut", "beard trim"], smart_format=True), frames_to_send=frames)
    assert texts(down, TranscriptionFrame) == ["I would like a haircut please", "on Wednesday"]
    interims = texts(down, InterimTranscriptionFrame)
    assert interims and all("I would like a haircut please".startswith(t) for t in interims[:2])
    assert not errors(up)
    (connection,) = s.connections
    assert connection.path == "/v1/listen" and connection.headers["authorization"] == f"Token {KEY}"
    query = connection.query
    assert query["model"] == ["nova-3-general"] and query["encoding"] == ["linear16"] and query["sample_rate"] == ["16000"]
    assert query["interim_results"] == ["true"] and query["smart_format"] == ["true"] and query["keyterm"] == ["haircut", "beard trim"]
    assert [u.ended_by for u in connection.utterances] == ["silence", "silence"]
    assert 1.1 <= connection.utterances[0].end_s - connection.utterances[0].start_s <= 1.5  # speech plus the preroll
    assert [u["utterance"] for u in s.script.requests] == [0, 1]


async def test_interims_behind_the_end_of_fast_audio_keep_their_utterances_words():
    """Audio sent faster than real time: the utterance has ended, and its final been transcribed,
    before its interims are due. They still go out, before the final, with that utterance's words."""
    line = "I would like a haircut please"
    async with DeepgramStandIn(ScriptedTranscriber([line, "on Wednesday"]), final_latency_s=0.4, interim_interval_s=0.3) as s:
        s.script.then(Fault(latency_s=0.1))
        down, _ = await run_test(stt(s), frames_to_send=chunks(quiet(0.2), tone(1.2), quiet(0.5)) + [SleepFrame(1.0)])
    sent = [(m["is_final"], m["channel"]["alternatives"][0]["transcript"]) for m in results(s.connections[0])]
    assert sent[-1] == (True, line)
    interims = [text for final, text in sent if not final]
    assert len(interims) >= 3 and all(line.startswith(text) for text in interims)
    assert texts(down, InterimTranscriptionFrame) == interims


async def test_a_finalize_ends_the_utterance_and_is_marked_from_finalize():
    async with DeepgramStandIn(ScriptedTranscriber(["a beard trim"]), end_silence_s=1.0) as s:
        frames = [VADUserStartedSpeakingFrame(), *chunks(tone(0.6), quiet(0.2)), SleepFrame(0.2), VADUserStoppedSpeakingFrame(stop_secs=0.2), SleepFrame(0.4)]
        down, _ = await run_test(stt(s, interim_results=False), frames_to_send=frames)
    (final,) = [f for f in down if isinstance(f, TranscriptionFrame)]
    assert final.text == "a beard trim" and final.result.from_finalize is True and final.result.is_final is True
    assert not texts(down, InterimTranscriptionFrame)  # not asked for
    assert "Finalize" in s.connections[0].control and s.connections[0].utterances[0].ended_by == "finalize"


async def test_whisper_transcribes_espeak_speech():
    whisper = WhisperTranscriber(interims=False)
    await asyncio.to_thread(whisper, quiet(0.5).tobytes(), RATE)  # load the model before timing anything
    async with DeepgramStandIn(whisper) as s:
        frames = chunks(synthesize("I would like a haircut", voice="espeak"), quiet(0.4)) + [SleepFrame(2.0)]
        down, _ = await run_test(stt(s), frames_to_send=frames)
    assert "haircut" in " ".join(texts(down, TranscriptionFrame)).lower()


async def test_the_sdk_parses_every_message_type_and_the_final_waits_final_latency():
    async with DeepgramStandIn(ScriptedTranscriber(["hello there"]), final_latency_s=0.3) as s:
        environment = DeepgramClientEnvironment(base="http://unused", production=s.base_url, agent=s.base_url, agent_rest="http://unused")
        client = AsyncDeepgramClient(api_key="any", environment=environment)
        async with client.listen.v1.connect(model="nova-3", encoding="linear16", sample_rate="16000", interim_results="true", vad_events="true", utterance_end_ms="1000") as socket:
            await socket.send_media(np.concatenate([tone(1.2), quiet(0.3)]).tobytes())
            sent_at = time.monotonic()
            received = [await socket.recv()]
            while not (isinstance(received[-1], ListenV1Results) and received[-1].is_final):
                received.append(await socket.recv())
            latency = time.monotonic() - sent_at
            await socket.send_keep_alive()
            await socket.send_close_stream()
            received += [message async for message in socket]
    kinds = [type(m) for m in received]
    assert kinds[0] is ListenV1SpeechStarted and ListenV1UtteranceEnd in kinds and kinds[-1] is ListenV1Metadata
    final = next(m for m in received if isinstance(m, ListenV1Results) and m.is_final)
    assert final.speech_final and not final.from_finalize
    assert [w.word for w in final.channel.alternatives[0].words] == ["hello", "there"]
    assert 0.28 <= latency < 1.0
    assert s.connections[0].control == ["KeepAlive", "CloseStream"] and s.connections[0].close_code == 1000


@pytest.mark.parametrize("fault", ["connect-refuse", "wrong-key"])
async def test_a_refused_handshake_is_a_permanent_error(fault):
    async with DeepgramStandIn(ScriptedTranscriber(["unheard"]), api_key=KEY) as s:
        if fault == "connect-refuse":
            s.connect.then(Fault("refuse"))
        service = stt(s, key=KEY if fault == "connect-refuse" else "wrong")
        down, up = await run_test(service, frames_to_send=chunks(tone(0.6), quiet(0.5)) + [SleepFrame(0.3)])
    (error,) = errors(up)
    assert "401" in error.error and not service.is_usable
    assert [c.status for c in s.connections] == [401]  # no retry
    assert not texts(down, TranscriptionFrame)


async def test_a_failing_handshake_is_retried_then_given_up(fast_retry):
    async with DeepgramStandIn(connect=None) as s:
        s.connect.set(Fault("fail", status=503))
        service = stt(s)
        _, up = await run_test(service, frames_to_send=[SleepFrame(0.5)])
    assert [c.status for c in s.connections] == [503, 503, 503]
    assert len(errors(up)) == 4 and "3 times in a row" in errors(up)[-1].error and not service.is_usable


async def test_a_mid_session_failure_closes_with_1011_and_the_service_reconnects(fast_retry):
    async with DeepgramStandIn(ScriptedTranscriber(["lost", "a haircut"])) as s:
        s.script.then(Fault("fail"))
        frames = chunks(tone(0.6), quiet(0.5)) + [SleepFrame(0.5)] + chunks(tone(0.6), quiet(0.5)) + [SleepFrame(0.4)]
        down, up = await run_test(stt(s), frames_to_send=frames)
    assert s.connections[0].close_code == 1011 and len(s.connections) == 2
    assert "1011" in errors(up)[0].error
    assert texts(down, TranscriptionFrame) == ["a haircut"]


async def test_a_hung_utterance_gets_no_result_and_the_next_one_does():
    async with DeepgramStandIn(ScriptedTranscriber(["lost", "a haircut"])) as s:
        s.script.then(Fault("hang"))
        frames = chunks(tone(1.2), quiet(0.5)) + [SleepFrame(1.0), VADUserStoppedSpeakingFrame(stop_secs=0.2), SleepFrame(0.3)]
        down, up = await run_test(stt(s), frames_to_send=frames)
        assert not texts(down, TranscriptionFrame) and not texts(down, InterimTranscriptionFrame) and not errors(up)
        assert results(s.connections[0]) == []  # not even the empty answer to Finalize
        down, _ = await run_test(stt(s), frames_to_send=chunks(tone(0.6), quiet(0.5)) + [SleepFrame(0.4)])
    assert texts(down, TranscriptionFrame) == ["a haircut"]


async def test_a_stalled_utterance_sends_interims_but_no_final():
    async with DeepgramStandIn(ScriptedTranscriber(["I would like a haircut please"]), interim_interval_s=0.3) as s:
        s.script.then(Fault("stall", after=2))
        down, up = await run_test(stt(s), frames_to_send=chunks(tone(1.5), quiet(0.5)) + [SleepFrame(1.0)])
    assert len(texts(down, InterimTranscriptionFrame)) == 2 and not texts(down, TranscriptionFrame)
    assert not errors(up)


async def test_a_stalled_connection_accepts_audio_and_never_answers():
    async with DeepgramStandIn(ScriptedTranscriber(["lost"])) as s:
        s.connect.then(Fault("stall"))
        down, up = await run_test(stt(s), frames_to_send=chunks(tone(1.2), quiet(0.5)) + [SleepFrame(0.6)])
    assert s.connections[0].audio_bytes == int(1.7 * RATE) * 2 and s.connections[0].sent == []
    assert not texts(down, InterimTranscriptionFrame) and not texts(down, TranscriptionFrame) and not errors(up)
    assert s.script.requests == []  # the connection's fault, no utterance fault drawn


async def test_a_hung_handshake_does_not_keep_the_stand_in_open():
    import websockets

    async with DeepgramStandIn(api_key=None) as s:
        s.connect.then(Fault("hang"))
        url = f"{s.base_url}/v1/listen?encoding=linear16&sample_rate=16000"
        with pytest.raises(TimeoutError):
            await websockets.connect(url, additional_headers={"Authorization": "Token x"}, open_timeout=0.3)
        started = time.monotonic()
    assert time.monotonic() - started < 1.0
    await asyncio.sleep(0)

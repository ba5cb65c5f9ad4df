"""DeepgramLiveSTT (Pipecat's DeepgramSTTService) on the Deepgram stand-in: when Deepgram's own
endpointing gave the final before the VAD stopped, the empty answer to the VAD stop's Finalize is
passed on as STTFinalizedFrame, so the turn does not wait out the STT safety net."""

from __future__ import annotations

import warnings

from pipecat.frames.frames import TranscriptionFrame, VADUserStartedSpeakingFrame, VADUserStoppedSpeakingFrame
from pipecat.tests.utils import SleepFrame, run_test

from app.providers.deepgram import DeepgramLiveSTT
from app.standins.deepgram import DeepgramStandIn, ScriptedTranscriber
from processors.flow_turn import STTFinalizedFrame
from tests.standins.test_deepgram import KEY, chunks, quiet, tone

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # deepgram-sdk imports websockets' legacy client
    import deepgram.listen.v1.client  # noqa: F401


def stt(standin: DeepgramStandIn) -> DeepgramLiveSTT:
    return DeepgramLiveSTT(api_key=KEY, base_url=standin.base_url, settings=DeepgramLiveSTT.Settings(interim_results=True))


def kinds(frames) -> list[str]:
    return [type(f).__name__ for f in frames if isinstance(f, (TranscriptionFrame, STTFinalizedFrame))]


async def test_the_empty_answer_to_a_finalize_tells_the_turn_the_stt_is_done():
    # Deepgram's default endpointing (10 ms of quiet) ends the utterance well before the VAD stop.
    async with DeepgramStandIn(ScriptedTranscriber(["a haircut please"]), end_silence_s=0.01, final_latency_s=0.05) as s:
        frames = [VADUserStartedSpeakingFrame(), *chunks(tone(0.6), quiet(0.2)), SleepFrame(0.2), VADUserStoppedSpeakingFrame(stop_secs=0.2), SleepFrame(0.3)]
        down, _ = await run_test(stt(s), frames_to_send=frames)
    assert kinds(down) == ["TranscriptionFrame", "STTFinalizedFrame"]
    assert [f.text for f in down if isinstance(f, TranscriptionFrame)] == ["a haircut please"]
    assert s.connections[0].utterances[0].ended_by == "silence" and "Finalize" in s.connections[0].control


async def test_a_finalize_that_ends_the_utterance_gives_a_finalized_transcript_and_no_extra_frame():
    async with DeepgramStandIn(ScriptedTranscriber(["a beard trim"]), end_silence_s=1.0, final_latency_s=0.05) as s:
        frames = [VADUserStartedSpeakingFrame(), *chunks(tone(0.6), quiet(0.2)), SleepFrame(0.2), VADUserStoppedSpeakingFrame(stop_secs=0.2), SleepFrame(0.3)]
        down, _ = await run_test(stt(s), frames_to_send=frames)
    assert kinds(down) == ["TranscriptionFrame"]
    (final,) = [f for f in down if isinstance(f, TranscriptionFrame)]
    assert final.text == "a beard trim" and final.finalized


async def test_the_audio_socket_offers_no_compression():
    # The SDK's websocket would offer permessage-deflate: each 20-40 ms of PCM deflated on the way out.
    async with DeepgramStandIn(ScriptedTranscriber(["hello"]), final_latency_s=0.05) as s:
        await run_test(stt(s), frames_to_send=[*chunks(tone(0.2)), SleepFrame(0.1)])
    assert s.connections and "sec-websocket-extensions" not in s.connections[0].headers


def test_calls_share_one_tls_context():
    # Each call's SDK client would read the CA bundle again (~20 ms of the event loop per call).
    def tls(service: DeepgramLiveSTT):
        return service._client._client_wrapper.httpx_client.httpx_client._transport._pool._ssl_context  # noqa: SLF001

    one, two = (DeepgramLiveSTT(api_key=KEY, base_url="http://127.0.0.1:9") for _ in range(2))
    assert tls(one) is tls(two)


async def test_audio_goes_in_60_ms_messages_and_the_rest_before_the_finalize():
    # 0.8 s of 20 ms frames: 40 frames, sent as 13 messages of 60 ms and the last 20 ms at the VAD stop.
    async with DeepgramStandIn(ScriptedTranscriber(["a beard trim"]), end_silence_s=1.0, final_latency_s=0.05) as s:
        audio = chunks(tone(0.6), quiet(0.2))
        frames = [VADUserStartedSpeakingFrame(), *audio, SleepFrame(0.2), VADUserStoppedSpeakingFrame(stop_secs=0.2), SleepFrame(0.3)]
        down, _ = await run_test(stt(s), frames_to_send=frames)
    (connection,) = s.connections
    assert len(audio) == 40 and connection.audio_messages == 14
    assert connection.audio_bytes == sum(len(f.audio) for f in audio)  # nothing held back at the end
    (utterance,) = connection.utterances
    assert utterance.ended_by == "finalize" and len(utterance.audio) >= len(tone(0.6)) * 2
    (final,) = [f for f in down if isinstance(f, TranscriptionFrame)]
    assert final.text == "a beard trim" and final.finalized


async def test_a_long_quiet_goes_in_240_ms_messages_and_a_sound_flushes_it():
    # 2 s of quiet (nobody has spoken yet): 8 messages of 240 ms, 80 ms held; the first frame of
    # the tone takes those along (100 ms); the other 29 go three to a message (two held); the
    # quiet after the speech goes every 60 ms again (its first second is Deepgram's to endpoint on).
    async with DeepgramStandIn(ScriptedTranscriber(["a beard trim"]), end_silence_s=1.0, final_latency_s=0.05) as s:
        audio = chunks(quiet(2.0), tone(0.6), quiet(0.2))
        frames = [*audio[:100], VADUserStartedSpeakingFrame(), *audio[100:], SleepFrame(0.2), VADUserStoppedSpeakingFrame(stop_secs=0.2), SleepFrame(0.3)]
        down, _ = await run_test(stt(s), frames_to_send=frames)
    (connection,) = s.connections
    assert len(audio) == 140 and connection.audio_messages == 8 + 1 + 9 + 4
    assert connection.audio_bytes == sum(len(f.audio) for f in audio)
    (final,) = [f for f in down if isinstance(f, TranscriptionFrame)]
    assert final.text == "a beard trim" and final.finalized

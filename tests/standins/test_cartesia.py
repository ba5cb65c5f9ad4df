"""The Cartesia stand-in, driven by Pipecat's real CartesiaTTSService (and once by a raw client)."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass

import pytest
import websockets
from pipecat.frames.frames import (
    ErrorFrame,
    Frame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    TextFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
)
from pipecat.services.cartesia.tts import CartesiaTTSService
from pipecat.tests.utils import SleepFrame, run_test
from pipecat.utils.errors import ErrorCategory, extract_http_status_code

from app.standins.cartesia import CartesiaStandIn, PiperSynthesizer, ToneSynthesizer, tone
from app.standins.fault import Fault

RATE = 24000  # PipelineParams' default output rate, what the service asks Cartesia for
QUIET_S = 0.4  # how long the service waits on a silent context before giving it up


@dataclass
class Spoken:
    down: list[Frame]
    up: list[Frame]
    elapsed_s: float

    @property
    def audio(self) -> bytes:
        return b"".join(f.audio for f in self.down if isinstance(f, TTSAudioRawFrame))

    @property
    def chunks(self) -> list[TTSAudioRawFrame]:
        return [f for f in self.down if isinstance(f, TTSAudioRawFrame)]

    @property
    def errors(self) -> list[ErrorFrame]:
        return [f for f in self.up if isinstance(f, ErrorFrame)]

    def count(self, kind: type[Frame]) -> int:
        return sum(isinstance(f, kind) for f in self.down)


def cartesia(standin: CartesiaStandIn, api_key: str | None = None, quiet_s: float = QUIET_S) -> CartesiaTTSService:
    return CartesiaTTSService(
        api_key=api_key or standin.api_key,
        url=standin.url,
        settings=CartesiaTTSService.Settings(model="sonic-3", voice="standin-voice"),
        stop_frame_timeout_s=quiet_s,
    )


async def speak(standin: CartesiaStandIn, *frames: Frame, api_key: str | None = None, quiet_s: float = QUIET_S) -> Spoken:
    start = time.monotonic()
    down, up = await run_test(cartesia(standin, api_key, quiet_s), frames_to_send=list(frames))
    return Spoken(list(down), list(up), time.monotonic() - start)


def seconds(audio: bytes) -> float:
    return len(audio) / 2 / RATE


async def test_a_spoken_line_arrives_as_audio_between_started_and_stopped():
    async with CartesiaStandIn(synthesizer=tone) as standin:
        spoken = await speak(standin, TTSSpeakFrame("Hello there, how are you?"))

    kinds = [type(f) for f in spoken.down]
    assert kinds.index(TTSStartedFrame) < kinds.index(TTSAudioRawFrame) < kinds.index(TTSStoppedFrame)
    assert all(f.audio and f.sample_rate == RATE for f in spoken.chunks)
    assert seconds(spoken.audio) == pytest.approx(len("Hello there, how are you?") * tone.seconds_per_char, abs=0.01)
    assert [f.text for f in spoken.down if isinstance(f, TTSTextFrame)] == ["Hello", "there,", "how", "are", "you?"]
    assert not spoken.errors

    (context,) = standin.contexts
    assert context.text == "Hello there, how are you?" and context.finished and context.done_sent
    assert (context.model_id, context.voice, context.sample_rate) == ("sonic-3", {"mode": "id", "id": "standin-voice"}, RATE)
    assert len(spoken.chunks[0].audio) == RATE * 40 // 1000 * 2  # 40 ms chunks


async def test_an_llm_reply_is_one_context_of_several_transcripts():
    async with CartesiaStandIn(synthesizer=tone) as standin:
        spoken = await speak(
            standin,
            LLMFullResponseStartFrame(),
            TextFrame("Thanks for calling. "),
            TextFrame("How can I help?"),
            LLMFullResponseEndFrame(),
        )

    assert spoken.count(TTSStartedFrame) == 1 and spoken.count(TTSStoppedFrame) == 1
    assert seconds(spoken.audio) == pytest.approx(len("Thanks for calling.How can I help?") * tone.seconds_per_char, abs=0.02)
    (context,) = standin.contexts
    assert [t for t in context.transcripts if t] == ["Thanks for calling.", "How can I help?"]
    assert standin.transcripts == {context.context_id: context.transcripts}


async def test_two_contexts_in_sequence_share_one_connection():
    async with CartesiaStandIn(synthesizer=tone) as standin:
        spoken = await speak(standin, TTSSpeakFrame("One two three."), TTSSpeakFrame("Four five six."))

    assert spoken.count(TTSStartedFrame) == 2 and spoken.count(TTSStoppedFrame) == 2
    assert {f.context_id for f in spoken.chunks} == {c.context_id for c in standin.contexts}
    assert [c.text for c in standin.contexts] == ["One two three.", "Four five six."]
    assert all(c.done_sent for c in standin.contexts) and standin.connections == 1


async def test_the_piper_voice_speaks_for_about_as_long_as_the_line_takes_to_say():
    async with CartesiaStandIn(synthesizer=PiperSynthesizer()) as standin:
        # Pipecat's default patience: loading the voice and synthesizing take longer than QUIET_S
        spoken = await speak(standin, TTSSpeakFrame("Thanks for calling. How can I help you today?"), quiet_s=3.0)

    assert 1.5 < seconds(spoken.audio) < 6.0
    assert max(abs(int.from_bytes(spoken.audio[i : i + 2], "little", signed=True)) for i in range(0, len(spoken.audio), 2)) > 1000
    assert standin.contexts[0].done_sent and not spoken.errors


@pytest.mark.parametrize(("standin_latency_s", "fault_latency_s"), [(0.3, 0.0), (0.0, 0.3)])
async def test_first_audio_comes_no_sooner_than_the_latency(standin_latency_s, fault_latency_s):
    async with CartesiaStandIn(synthesizer=tone, first_audio_latency_s=standin_latency_s) as standin:
        standin.script.then(Fault(latency_s=fault_latency_s))
        spoken = await speak(standin, TTSSpeakFrame("Hello."))

    assert spoken.audio and spoken.elapsed_s >= 0.3
    assert 0.3 <= standin.contexts[0].first_audio_s < 1.0


async def test_a_wrong_key_is_refused_at_the_handshake():
    async with CartesiaStandIn(synthesizer=tone) as standin:
        spoken = await speak(standin, TTSSpeakFrame("Hello."), api_key="wrong-key")

    (error,) = spoken.errors
    assert extract_http_status_code(error.exception) == 401
    assert error.category is ErrorCategory.AUTHENTICATION
    assert not spoken.audio and (standin.refused, standin.connections, standin.contexts) == (1, 0, [])


async def test_a_scripted_refuse_rejects_the_handshake_and_the_service_gives_up():
    async with CartesiaStandIn(synthesizer=tone) as standin:
        standin.script.then(Fault("refuse"))
        spoken = await speak(standin, TTSSpeakFrame("Hello."), TTSSpeakFrame("Anyone there?"))

    (error,) = spoken.errors
    assert extract_http_status_code(error.exception) == 401 and error.category.is_permanent
    # AUTHENTICATION is permanent: the service is unusable, so it neither reconnects nor speaks
    assert not spoken.audio and (standin.refused, standin.connections) == (1, 0)


async def test_a_refuse_on_an_open_connection_is_an_error_message():
    async with CartesiaStandIn(synthesizer=tone) as standin:
        standin.script.then(Fault(), Fault("refuse"))
        spoken = await speak(standin, TTSSpeakFrame("One."), TTSSpeakFrame("Two."))

    assert "'status_code': 401" in spoken.errors[0].error
    assert [c.error_sent for c in standin.contexts] == [None, 401]


@pytest.mark.parametrize("status", [500, 529, 429])
async def test_a_failed_context_is_an_error_message_the_service_reports(status):
    async with CartesiaStandIn(synthesizer=tone) as standin:
        standin.script.then(Fault("fail", status=status))
        spoken = await speak(standin, TTSSpeakFrame("Hello there."))

    first = spoken.errors[0]
    # Pipecat reports the error message as text only: no exception, so no status code or category
    assert f"'status_code': {status}" in first.error and "'type': 'error'" in first.error
    assert first.exception is None and first.category is ErrorCategory.UNKNOWN
    assert not spoken.audio and spoken.count(TTSStoppedFrame) == 1
    # the context stays open on Pipecat's side until it goes quiet, then counts as silent
    assert "completed with no audio" in spoken.errors[-1].error
    assert standin.contexts[0].error_sent == status and standin.connections == 1


async def test_a_hung_context_sends_no_audio():
    async with CartesiaStandIn(synthesizer=tone) as standin:
        standin.script.then(Fault("hang"))
        spoken = await speak(standin, TTSSpeakFrame("Hello there."), SleepFrame(QUIET_S))

    assert not spoken.audio and spoken.elapsed_s >= QUIET_S
    assert [e.error for e in spoken.errors] == [f"TTS context {standin.contexts[0].context_id} completed with no audio"]
    assert standin.contexts[0].chunks_sent == 0 and not standin.contexts[0].done_sent


async def test_a_stalled_context_sends_some_audio_then_none():
    async with CartesiaStandIn(synthesizer=tone) as standin:
        standin.script.then(Fault("stall", after=3))
        spoken = await speak(standin, TTSSpeakFrame("Hello there, how are you today?"))

    assert len(spoken.chunks) == 3 and seconds(spoken.audio) == pytest.approx(0.12)
    # Pipecat gives the context up once it goes quiet, silently: no error, and no TTSStoppedFrame
    # either (Cartesia's service leaves stop frames to `done` messages)
    assert spoken.count(TTSStartedFrame) == 1 and spoken.count(TTSStoppedFrame) == 0 and not spoken.errors
    assert standin.contexts[0].chunks_sent == 3 and not standin.contexts[0].done_sent


@pytest.mark.parametrize("fault", [Fault("hang"), Fault("fail", status=529), Fault("stall", after=1)])
async def test_a_bad_context_does_not_spoil_the_next_one(fault):
    async with CartesiaStandIn(synthesizer=tone) as standin:
        standin.script.then(fault)
        spoken = await speak(standin, TTSSpeakFrame("One two three."), SleepFrame(QUIET_S + 0.1), TTSSpeakFrame("Four five six."))

    good = standin.contexts[1]
    assert good.done_sent and standin.connections == 1
    assert seconds(b"".join(f.audio for f in spoken.chunks if f.context_id == good.context_id)) == pytest.approx(0.84)


async def test_an_interruption_cancels_the_context():
    slow = ToneSynthesizer(seconds_per_char=0.1)
    async with CartesiaStandIn(synthesizer=slow, chunk_gap_s=0.02) as standin:
        await speak(standin, TTSSpeakFrame("A rather long line that takes a while."), SleepFrame(0.2), InterruptionFrame())

    (context,) = standin.contexts
    assert {"context_id": context.context_id, "cancel": True} in standin.messages
    assert context.cancelled and not context.done_sent and 0 < context.chunks_sent < 95


async def test_the_wire_protocol_with_query_authentication():
    async with CartesiaStandIn(synthesizer=tone, first_audio_latency_s=0.0) as standin:
        url = f"{standin.url}?api_key={standin.api_key}&cartesia_version=2026-03-01"
        async with websockets.connect(url) as ws:
            request = {
                "transcript": "Hi there",
                "continue": False,
                "context_id": "c1",
                "model_id": "sonic-3",
                "voice": {"mode": "id", "id": "v"},
                "output_format": {"container": "raw", "encoding": "pcm_s16le", "sample_rate": 8000},
                "add_timestamps": True,
            }
            await ws.send(json.dumps(request))
            messages = []
            while not messages or messages[-1]["type"] != "done":
                messages.append(json.loads(await ws.recv()))
            await ws.send(json.dumps({**request, "context_id": "c2", "output_format": {"container": "mp3"}}))
            error = json.loads(await ws.recv())

        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(standin.url.replace("/tts/websocket", "/tts/bytes"))

    audio = b"".join(base64.b64decode(m["data"]) for m in messages if m["type"] == "chunk")
    assert len(audio) == len("Hi there") * tone.seconds_per_char * 8000 * 2
    (stamps,) = [m for m in messages if m["type"] == "timestamps"]
    assert stamps["word_timestamps"]["words"] == ["Hi", "there"] and stamps["context_id"] == "c1"
    assert messages[-1] == {"type": "done", "done": True, "status_code": 206, "context_id": "c1"}
    assert (error["type"], error["status_code"], error["done"], error["context_id"]) == ("error", 400, True, "c2")
    assert refused.value.response.status_code == 404

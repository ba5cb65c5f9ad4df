"""processors.tts_audio: a TTS service's queued audio leaves as one frame (JoinedTTSAudio)."""

from __future__ import annotations

from pipecat.frames.frames import TTSAudioRawFrame, TTSSpeakFrame, TTSStoppedFrame
from pipecat.services.cartesia.tts import CartesiaTTSService
from pipecat.tests.utils import SleepFrame, run_test
from pipecat.utils.context.word_timestamp_tracker import WordTimestamp

from app.config.bot import CartesiaTTS as CartesiaConfig
from app.providers.cartesia import CartesiaTTS
from app.providers.speech import _cartesia
from app.standins.cartesia import CartesiaStandIn, ToneSynthesizer
from processors.tts_audio import JoinedTTSAudio

RATE = 8000
PIECE = 320 * 2  # 40 ms at 8 kHz


def piece(n: int, *, rate: int = RATE, context: str = "c1") -> TTSAudioRawFrame:
    return TTSAudioRawFrame(bytes([n]) * (rate // 25 * 2), rate, 1, context_id=context)


async def played(tts, items: list, context: str = "c1") -> list:
    """Queue `items` in a new audio context, end it, and take what the audio-context task would push."""
    await tts._audio_context_manager.create(context)
    for item in items:
        await tts.append_to_audio_context(context, item)
    await tts.append_to_audio_context(context, None)
    out = []
    while (item := await tts._next_audio_context_item(context)) is not None:
        out.append(item)
    return out


def service() -> CartesiaTTS:
    return CartesiaTTS(api_key="k", settings=CartesiaTTS.Settings(model="sonic-3", voice="v"))


async def test_queued_audio_goes_as_one_frame_and_other_items_keep_their_place():
    tts = service()
    word = WordTimestamp("hello", 0.0, "c1")
    stop = TTSStoppedFrame(context_id="c1")
    out = await played(tts, [piece(1), piece(2), piece(3), word, piece(4), piece(5), stop])
    assert [type(item) for item in out] == [TTSAudioRawFrame, WordTimestamp, TTSAudioRawFrame, TTSStoppedFrame]
    assert out[0].audio == piece(1).audio + piece(2).audio + piece(3).audio and out[0].num_frames == 3 * 320
    assert out[1] is word and out[3] is stop
    assert out[2].audio == piece(4).audio + piece(5).audio


async def test_a_join_stops_at_max_join_s_and_at_another_format():
    tts = service()
    out = await played(tts, [piece(i) for i in range(30)])
    assert [len(f.audio) for f in out] == [25 * PIECE, 5 * PIECE]  # 1 s, then the rest
    assert b"".join(f.audio for f in out) == b"".join(piece(i).audio for i in range(30))
    other = await played(tts, [piece(1), piece(2, rate=16000), piece(3)], context="c2")
    assert [f.sample_rate for f in other] == [RATE, 16000, RATE]


async def test_an_item_held_for_an_interrupted_context_is_not_played_in_the_next():
    tts = service()
    await tts._audio_context_manager.create("old")
    for item in (piece(1), piece(2), TTSStoppedFrame(context_id="old")):
        await tts.append_to_audio_context("old", item)
    first = await tts._next_audio_context_item("old")
    assert len(first.audio) == 2 * PIECE  # the stop frame is held behind it
    tts._audio_context_manager.remove("old")  # interrupted before it was played
    assert [f.audio for f in await played(tts, [piece(7)], context="new")] == [piece(7).audio]


async def test_pipecats_service_pushes_each_piece_and_ours_joins_the_burst():
    """A sentence's audio arrives from the Cartesia stand-in as a burst of 40 ms pieces."""
    line = "Sure, let's get you booked. What day would you like to come in?"

    async def frames(cls) -> tuple[list[TTSAudioRawFrame], int]:
        async with CartesiaStandIn(synthesizer=ToneSynthesizer(seconds_per_char=0.02)) as standin:
            tts = cls(api_key=standin.api_key, url=standin.url, sample_rate=RATE, settings=cls.Settings(model="sonic-3", voice="v"))
            down, _ = await run_test(tts, frames_to_send=[TTSSpeakFrame(line), SleepFrame(1.0)])
            (context,) = standin.contexts
            return [f for f in down if isinstance(f, TTSAudioRawFrame)], context.chunks_sent

    pipecats, sent = await frames(CartesiaTTSService)
    ours, sent_too = await frames(CartesiaTTS)
    assert sent == sent_too > 10 and len(pipecats) == sent
    assert len(ours) < sent / 2
    assert b"".join(f.audio for f in ours) == b"".join(f.audio for f in pipecats)


def test_a_cartesia_provider_in_bot_yaml_is_built_joining(monkeypatch):
    monkeypatch.setenv("CARTESIA_API_KEY", "k")
    tts = _cartesia(CartesiaConfig(provider="cartesia", model="sonic-3", voice_id="v"))
    assert isinstance(tts, JoinedTTSAudio) and isinstance(tts, CartesiaTTSService)

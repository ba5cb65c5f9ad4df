"""app.providers.cartesia: Pipecat's Cartesia service on a connection without compression."""

from __future__ import annotations

from pipecat.frames.frames import TTSAudioRawFrame, TTSSpeakFrame
from pipecat.tests.utils import SleepFrame, run_test

from app.providers.cartesia import CartesiaTTS
from app.standins.cartesia import CartesiaStandIn, ToneSynthesizer


async def test_the_socket_offers_no_compression():
    # Pipecat's connection would offer permessage-deflate: every piece of audio deflated and inflated.
    async with CartesiaStandIn(synthesizer=ToneSynthesizer(seconds_per_char=0.01)) as standin:
        tts = CartesiaTTS(api_key=standin.api_key, url=standin.url, sample_rate=8000, settings=CartesiaTTS.Settings(model="sonic-3", voice="v"))
        down, _ = await run_test(tts, frames_to_send=[TTSSpeakFrame("Hello there."), SleepFrame(0.5)])
    assert any(isinstance(f, TTSAudioRawFrame) for f in down)
    (request,) = standin.requests
    assert "sec-websocket-extensions" not in request.headers

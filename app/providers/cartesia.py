"""Cartesia's TTS websocket through Pipecat's `CartesiaTTSService`, its bursts of audio joined."""

from __future__ import annotations

from pipecat.services.cartesia.tts import CartesiaTTSService

from processors.tts_audio import JoinedTTSAudio


class CartesiaTTS(JoinedTTSAudio, CartesiaTTSService):
    """Pipecat's Cartesia service; the audio it already holds goes downstream as one frame."""

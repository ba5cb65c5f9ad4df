"""Cartesia's TTS websocket through Pipecat's `CartesiaTTSService`, its bursts of audio joined.

The websocket offers no permessage-deflate (Pipecat's connection would): with it every piece of
audio, base64 in JSON, is deflated by Cartesia and inflated here, for text that shrinks by a
quarter at most. The same choice as the Deepgram connection's (`app.providers.deepgram`).
"""

from __future__ import annotations

from pipecat.services.cartesia.tts import CartesiaTTSService

from processors.tts_audio import JoinedTTSAudio


class CartesiaTTS(JoinedTTSAudio, CartesiaTTSService):
    """Pipecat's Cartesia service; the audio it already holds goes downstream as one frame."""

    async def _websocket_connect(self, uri: str, **kwargs):
        kwargs.setdefault("compression", None)
        return await super()._websocket_connect(uri, **kwargs)

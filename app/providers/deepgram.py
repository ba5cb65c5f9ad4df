"""Deepgram live transcription: Pipecat's DeepgramSTTService, telling the turn when it is done.

Pipecat sends Deepgram a `Finalize` at the VAD stop, and the final transcript that answers it is
marked `finalized`: the turn's silence strategy then stops waiting for the STT. But Deepgram
endpoints on its own (after 10 ms of silence by default), usually before our VAD stops (200 ms):
its final comes first, unmarked, and the answer to the `Finalize` is an empty final that Pipecat
drops. The strategy then waits out its STT safety net (`ttfs_p99_latency` less `vad_stop_secs`,
150 ms) on every such turn. Here an empty `from_finalize` final is passed on as
`STTFinalizedFrame`, which `FlowAwareTurnStop` takes as "nothing more is coming".

The SDK's websocket offers permessage-deflate, and a server that takes it has every 20 ms of
audio compressed on the way out: a tenth of a phone call's CPU, measured, for raw PCM that
deflate hardly shrinks. The connection here offers no compression (`websockets`' own switch).
"""

from __future__ import annotations

import functools

import deepgram.listen.v1.client as _listen
from pipecat.services.deepgram.stt import DeepgramSTTService

from processors.flow_turn import STTFinalizedFrame


class DeepgramLiveSTT(DeepgramSTTService):
    async def _on_message(self, message):
        await super()._on_message(message)
        if getattr(message, "is_final", False) and getattr(message, "from_finalize", False):
            channel = getattr(message, "channel", None)
            alternatives = channel.alternatives if channel else []
            if not alternatives or not alternatives[0].transcript:
                await self.push_frame(STTFinalizedFrame())


# The SDK looks its `connect` up in this module at every connection; once per process.
if not isinstance(_listen.websockets_client_connect, functools.partial):
    _listen.websockets_client_connect = functools.partial(_listen.websockets_client_connect, compression=None)

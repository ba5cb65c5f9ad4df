"""Deepgram live transcription: Pipecat's DeepgramSTTService, telling the turn when it is done.

Pipecat sends Deepgram a `Finalize` at the VAD stop, and the final transcript that answers it is
marked `finalized`: the turn's silence strategy then stops waiting for the STT. But Deepgram
endpoints on its own (after 10 ms of silence by default), usually before our VAD stops (200 ms):
its final comes first, unmarked, and the answer to the `Finalize` is an empty final that Pipecat
drops. The strategy then waits out its STT safety net (`ttfs_p99_latency` less `vad_stop_secs`,
150 ms) on every such turn. Here an empty `from_finalize` final is passed on as
`STTFinalizedFrame`, which `FlowAwareTurnStop` takes as "nothing more is coming".

The caller's audio goes to Deepgram in messages of at least `SEND_S` (60 ms), not one per frame:
each message is a websocket frame and a socket write (~7% of a worker's event loop at 25 phone
calls, py-spy). A phone call's frames are 60 ms already (`CALLER_CHUNK_MS`) and go out as they
come; a browser's 20 ms frames are gathered three to a message. Deepgram takes 20-100 ms messages.
What is held back is sent at once at the VAD stop, before Pipecat's `Finalize`, so the final
transcript that ends the turn waits for nothing; an interim can come up to 40 ms later.

Once the line has been quiet for `LONG_QUIET_S` (the caller listening to the bot, or thinking),
quiet audio goes in messages of `QUIET_SEND_S` (240 ms) instead: a phone call is quiet for most
of its length, and this sends a quarter of the messages over that time. A sound flushes what is
held and goes with it, so no speech waits; the first second of quiet after speech still goes
every 60 ms, since Deepgram's own endpointing listens to it. "Quiet" is the VAD's: no sample
reaches -50 dBFS (`app.providers.vad.quiet`).

Two settings of the Deepgram SDK, made once per process below (the SDK looks both up in its
modules when a client or a connection is made):

- Its websocket offers permessage-deflate, and a server that takes it has every frame of audio
  compressed on the way out: a tenth of a phone call's CPU, measured, for raw PCM that deflate
  hardly shrinks. The connection here offers no compression (`websockets`' own switch).
- Each client builds an httpx client (for REST, unused by live transcription) with a TLS context
  of its own: ~20 ms of the event loop per call, reading the CA bundle again. Here they share the
  process's one (`app.providers.tls`).
"""

from __future__ import annotations

import functools
import typing

import deepgram.base_client as _base
import deepgram.listen.v1.client as _listen
import httpx
from pipecat.frames.frames import Frame, VADUserStoppedSpeakingFrame
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.deepgram.stt import DeepgramSTTService

from app.providers.tls import shared_tls_context
from app.providers.vad import quiet
from processors.flow_turn import STTFinalizedFrame

SEND_S = 0.06  # seconds of audio per message to Deepgram
QUIET_SEND_S = 0.24  # ... once the line has been quiet for LONG_QUIET_S
LONG_QUIET_S = 1.0


class DeepgramLiveSTT(DeepgramSTTService):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._unsent = bytearray()
        self._quiet_s = LONG_QUIET_S  # nobody has spoken yet

    async def run_stt(self, audio: bytes):
        if quiet(audio):
            self._quiet_s += len(audio) / 2 / self.sample_rate
        else:
            self._quiet_s = 0.0
        message_bytes = round(self.sample_rate * (QUIET_SEND_S if self._quiet_s >= LONG_QUIET_S else SEND_S)) * 2
        if not self._unsent and len(audio) >= message_bytes:  # a phone call's frame: as it is, no copy
            async for _ in super().run_stt(audio):
                pass
        else:
            self._unsent += audio
            if len(self._unsent) >= message_bytes:
                await self._send_unsent()
        yield None

    async def _send_unsent(self) -> None:
        if self._unsent:
            audio, self._unsent = bytes(self._unsent), bytearray()
            async for _ in super().run_stt(audio):
                pass

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        if isinstance(frame, VADUserStoppedSpeakingFrame):
            await self._send_unsent()  # the end of the speech, before the Finalize
        await super().process_frame(frame, direction)

    async def _on_message(self, message):
        await super()._on_message(message)
        if getattr(message, "is_final", False) and getattr(message, "from_finalize", False):
            channel = getattr(message, "channel", None)
            alternatives = channel.alternatives if channel else []
            if not alternatives or not alternatives[0].transcript:
                await self.push_frame(STTFinalizedFrame())


def _rest_client(timeout: float | None, follow_redirects: bool | None) -> httpx.AsyncClient:
    """The SDK's default REST client, on the process's one TLS context."""
    options: dict[str, typing.Any] = {"timeout": timeout, "verify": shared_tls_context()}
    if follow_redirects is not None:
        options["follow_redirects"] = follow_redirects
    return httpx.AsyncClient(**options)


if not isinstance(_listen.websockets_client_connect, functools.partial):
    _listen.websockets_client_connect = functools.partial(_listen.websockets_client_connect, compression=None)
_base._make_default_async_client = _rest_client

"""A TTS service that sends the audio it already holds downstream as one frame, not piece by piece.

A cloud TTS streams faster than the bot speaks: Cartesia answers a sentence with a burst of
websocket messages, one short piece of audio each (40 ms in the stand-in). Pipecat's TTS service
queues each piece in the playing audio context, and its audio-context task pushes them downstream
one frame at a time: through the TTS failover, into the output transport's queue, through its
process task and into the media sender, which cuts the audio into its own chunks anyway. At 25
phone calls per process, the bursts of every call's reply come due within the same second and
were measured as the tail of the first turn's voice-to-voice (bench/concurrent_calls.py).

`JoinedTTSAudio` (a mixin before the TTS service class) makes the audio-context task take, with
each piece of audio, the pieces of the same context already queued behind it, and push them as
one `TTSAudioRawFrame` (same rate and channels, up to `max_join_s` of audio). Nothing waits for
audio that has not arrived: the first piece of a reply goes as soon as it comes. Any other item
(a word timestamp, a `TTSStoppedFrame`, the context's end) stops the join and comes next, in
order (tests/processors/test_tts_audio.py).

Written against pipecat-ai 1.14's `TTSService._next_audio_context_item` and its
`AudioContextManager` (`_contexts`: one asyncio.Queue per context; `_KEEPALIVE`); without them
each piece goes on its own, as in Pipecat.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pipecat.frames.frames import TTSAudioRawFrame

_NOTHING = object()


class JoinedTTSAudio:
    """Mixin for a Pipecat `TTSService`: queued audio of the playing context leaves as one frame."""

    max_join_s: float = 1.0

    _held: tuple[str, Any] | None = None  # (context id, item) taken from the queue, next in order

    async def _next_audio_context_item(self, context_id: str):
        held, self._held = self._held, None
        if held is not None and held[0] == context_id:
            item = held[1]
        else:  # nothing held, or held for a context that was removed (interrupted) before it
            item = await super()._next_audio_context_item(context_id)  # type: ignore[misc]
        if type(item) is not TTSAudioRawFrame:
            return item
        queue = self._queued_items(context_id)
        if queue is None or queue.empty():
            return item
        keepalive = getattr(type(self._audio_context_manager), "_KEEPALIVE", _NOTHING)  # type: ignore[attr-defined]
        block = 2 * max(item.num_channels, 1)  # bytes per sample, all channels
        limit = int(self.max_join_s * item.sample_rate) * block
        parts, size = [item.audio], len(item.audio)
        while not queue.empty():
            following = queue.get_nowait()
            if following is keepalive:
                continue
            if (
                type(following) is TTSAudioRawFrame
                and following.sample_rate == item.sample_rate
                and following.num_channels == item.num_channels
                and following.context_id == item.context_id
                and size + len(following.audio) <= limit
            ):
                parts.append(following.audio)
                size += len(following.audio)
                continue
            self._held = (context_id, following)
            break
        if len(parts) == 1:
            return item
        item.audio = b"".join(parts)  # the first piece carries them all (its id, pts, metadata)
        item.num_frames = len(item.audio) // block
        return item

    def _queued_items(self, context_id: str) -> asyncio.Queue | None:
        queue = getattr(self._audio_context_manager, "_contexts", {}).get(context_id)  # type: ignore[attr-defined]
        return queue if isinstance(queue, asyncio.Queue) else None

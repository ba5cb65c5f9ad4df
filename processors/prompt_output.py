"""An output transport that passes a frame straight on when there is no audio for it to wait behind.

Pipecat's output transport keeps the frames that go downstream past it (a function call's
`FunctionCallInProgressFrame` and `FunctionCallResultFrame`, `LLMFullResponseEndFrame`, ...) in
order with the bot's audio: each goes into the audio queue and leaves, once the audio before it
has been written, from the task that writes the audio. On its way the frame waits for the
transport's input task, its process task, then the audio task inside `asyncio.wait_for`: four or
five turns of the event loop. A turn of the loop is short on an idle server, but at 25 phone calls
per process each one runs every call's audio and takes milliseconds. A function call's result has
to reach the assistant aggregator, after the transport, before the LLM runs again: measured at 50
phone calls on two workers, this one step took 10 ms at the median and 106 ms at p95, against
2-3 ms for a step between two other processors. A turn with two function calls pays it twice.

When the audio queue is empty and the audio task has finished with everything it took from it
(`_unfinished_tasks` of the queue is 0: `task_done()` runs once a frame is written and pushed on),
nothing is ahead of the frame, so the audio task would hand it on next, unchanged. `PromptSyncFrames`
does that at once: the media sender's own handling of the frame (a transport message is sent, a
DTMF tone written, ...), then the push downstream. Audio, images, `TTSStoppedFrame`, interruptions
and frames with a presentation time still take Pipecat's way, as does every frame while audio is
queued or being written (tests/processors/test_prompt_output.py).

`PromptFirstAudio` does the same for the first audio of each thing the bot says. Pipecat's media
sender writes audio only in whole chunks (`audio_out_10ms_chunks`): the first chunk waits until the
TTS has delivered that much audio, and the TTS's second piece reaches the transport only after
its websocket reader, its audio-context task and the transport's input have each had a turn of
the loop. When the bot is silent and the sender idle, what is held (at least half a chunk: Twilio
must not run dry before the next chunk) goes out now as a shorter chunk; the rest keeps to whole
chunks. Measured at 50 phone calls, this step (the transport taking the first audio, to its
write) took 45 ms at p95 before, on a loaded machine.

Written against pipecat-ai 1.14's `BaseOutputTransport` (its `_media_senders`, and each sender's
`_audio_task`, `_audio_queue`, `_handle_frame`, `_bot_speaking`, `_buffered_audio_bytes`, `_take_audio_chunk`
and `_enqueue_audio_chunk`): if a sender lacks them, frames take Pipecat's way.
"""

from __future__ import annotations

from pipecat.frames.frames import (
    Frame,
    InterruptionFrame,
    MixerControlFrame,
    OutputAudioRawFrame,
    OutputImageRawFrame,
    SpriteFrame,
    TTSStoppedFrame,
)
from pipecat.transports.base_output import BaseOutputTransport

# What BaseOutputTransport._handle_frame gives the media sender other than through `handle_sync_frame`.
_NOT_SYNC = (InterruptionFrame, OutputAudioRawFrame, OutputImageRawFrame, SpriteFrame, MixerControlFrame, TTSStoppedFrame)


def idle(sender: object) -> bool:
    """The media sender's audio task is running and has nothing queued or in hand."""
    task = getattr(sender, "_audio_task", None)
    queue = getattr(sender, "_audio_queue", None)
    if task is None or task.done() or queue is None or not hasattr(sender, "_handle_frame"):
        return False
    return queue.empty() and getattr(queue, "_unfinished_tasks", 1) == 0


class PromptSyncFrames(BaseOutputTransport):
    """Mixin for a `BaseOutputTransport` subclass (put it first): see the module's docstring."""

    prompt_frames = 0  # frames passed on at once (the rest took Pipecat's way)

    async def _handle_frame(self, frame: Frame):
        if not isinstance(frame, _NOT_SYNC) and not frame.pts:
            sender = self._media_senders.get(frame.transport_destination)
            if sender is not None and idle(sender):
                self.prompt_frames += 1
                await sender._handle_frame(frame)  # noqa: SLF001
                await self.push_frame(frame)
                return
        await super()._handle_frame(frame)


class PromptFirstAudio(BaseOutputTransport):
    """Mixin for a `BaseOutputTransport` subclass (put it first): the first audio of each
    utterance goes out without waiting for a whole chunk (see the module's docstring). A transport
    that paces its writes by the chunk's length must pace a shorter chunk by its own."""

    first_audio_at_once = 0  # utterances whose first audio went out as a shorter chunk

    async def _handle_frame(self, frame: Frame):
        await super()._handle_frame(frame)
        if isinstance(frame, OutputAudioRawFrame) and not frame.pts:
            sender = self._media_senders.get(frame.transport_destination)
            if sender is not None and _holds_first_audio(sender, self.audio_chunk_size // 2):
                audio, uninterruptible = sender._take_audio_chunk()  # noqa: SLF001
                await sender._enqueue_audio_chunk(audio, uninterruptible)  # noqa: SLF001
                self.first_audio_at_once += 1


def _holds_first_audio(sender: object, at_least: int) -> bool:
    """The bot is not speaking, the sender is idle, and it holds at least `at_least` bytes."""
    if getattr(sender, "_bot_speaking", True) or not hasattr(sender, "_take_audio_chunk"):
        return False
    return idle(sender) and getattr(sender, "_buffered_audio_bytes", 0) >= at_least

"""PromptSyncFrames: a frame with no audio ahead of it passes the output transport at once; behind
audio it waits its turn, as in Pipecat. PromptFirstAudio: the first audio of an utterance goes out
without waiting for a whole chunk."""

from __future__ import annotations

import asyncio

from pipecat.frames.frames import (
    FunctionCallResultFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    OutputTransportMessageFrame,
    StartFrame,
    TTSAudioRawFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.tests.utils import SleepFrame, run_test
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import TransportParams

from app.server.twilio import TwilioOutputTransport
from processors.prompt_entry import PromptEntry
from processors.prompt_output import PromptFirstAudio, PromptSyncFrames, idle

RATE = 8000
CHUNK_S = 0.04  # Pipecat's default output chunk: 4 x 10 ms
WRITE_S = 0.03  # how long writing a chunk takes here (a real transport paces its writes)


class Output(PromptSyncFrames, BaseOutputTransport):
    """An output transport that records what it wrote and sent, and when."""

    def __init__(self):
        super().__init__(TransportParams(audio_out_enabled=True, audio_out_sample_rate=RATE, audio_out_end_silence_secs=0))
        self.events: list[str] = []

    async def start(self, frame: StartFrame):
        await super().start(frame)
        await self.set_transport_ready(frame)

    async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        await asyncio.sleep(WRITE_S)
        self.events.append("audio")
        return True

    async def send_message(self, frame):
        self.events.append(f"message {frame.message}")


class Stamp(FrameProcessor):
    """After the transport: notes when each non-audio frame gets there."""

    def __init__(self, output: Output):
        super().__init__(enable_direct_mode=True)  # notes the frame as the transport pushes it
        self.output = output

    async def process_frame(self, frame, direction):
        await super().process_frame(frame, direction)
        if isinstance(frame, (FunctionCallResultFrame, OutputTransportMessageFrame)):
            self.output.events.append(f"passed {type(frame).__name__}")
        await self.push_frame(frame, direction)


def _result() -> FunctionCallResultFrame:
    return FunctionCallResultFrame(function_name="fill_book", tool_call_id="t1", arguments={}, result={"ok": True})


def _audio(seconds: float) -> TTSAudioRawFrame:
    return TTSAudioRawFrame(audio=b"\x10\x00" * int(RATE * seconds), sample_rate=RATE, num_channels=1, context_id="c")


async def _run(frames) -> Output:
    output = Output()
    await run_test(Pipeline([output, Stamp(output)]), frames_to_send=frames)
    return output


async def test_a_frame_with_no_audio_ahead_passes_at_once():
    output = await _run([_result(), OutputTransportMessageFrame(message="hi")])
    assert output.prompt_frames == 2
    # the media sender's own handling still runs (the message is sent), then the frame goes on
    assert output.events == ["passed FunctionCallResultFrame", "message hi", "passed OutputTransportMessageFrame"]


async def test_a_frame_behind_audio_waits_for_the_audio_to_be_written():
    output = await _run([_audio(3 * CHUNK_S), _result()])
    assert output.prompt_frames == 0
    assert output.events == ["audio", "audio", "audio", "passed FunctionCallResultFrame"]


async def test_after_the_audio_is_written_frames_pass_at_once_again():
    class Wait(FrameProcessor):  # holds the next frame until the audio before it has been written
        async def process_frame(self, frame, direction):
            await super().process_frame(frame, direction)
            if isinstance(frame, FunctionCallResultFrame):
                await asyncio.sleep(3 * WRITE_S + 0.1)
            await self.push_frame(frame, direction)

    output = Output()
    await run_test(Pipeline([Wait(), output, Stamp(output)]), frames_to_send=[_audio(2 * CHUNK_S), _result()])
    assert output.events == ["audio", "audio", "passed FunctionCallResultFrame"]
    assert output.prompt_frames == 1


def test_a_sender_without_pipecats_internals_takes_pipecats_way():
    assert idle(object()) is False


async def test_with_prompt_entry_data_frames_enter_at_once_and_interruptions_keep_to_the_queue():
    """The Twilio output (`app.server.twilio.TwilioOutputTransport`): a function call's result and
    the bot's audio are taken from the processor before it at once; an interruption is not."""

    class EntryOutput(PromptEntry, Output):
        prompt_system_frames = TwilioOutputTransport.prompt_system_frames

    output = EntryOutput()
    frames = [_result(), InterruptionFrame(), SleepFrame(0.05), _audio(2 * CHUNK_S), _result()]
    await run_test(Pipeline([output, Stamp(output)]), frames_to_send=frames)
    # The second result entered at once too, and then waited behind the audio, as it should.
    assert output.entered_at_once == 3
    assert output.events == ["passed FunctionCallResultFrame", "audio", "audio", "passed FunctionCallResultFrame"]


class FirstAudioOutput(PromptFirstAudio, Output):
    """The recording output, sending the first audio of an utterance without waiting for a whole chunk."""

    def __init__(self):
        super().__init__()
        self.written: list[int] = []  # the length of each chunk written, in ms

    async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        self.written.append(round(len(frame.audio) / 2 / RATE * 1000))
        return await super().write_audio_frame(frame)


async def _written_before_the_message(output: FirstAudioOutput, frames) -> list[int]:
    """What was written before a message sent 0.1 s after `frames` passed the transport."""
    await run_test(Pipeline([output, Stamp(output)]), frames_to_send=[*frames, SleepFrame(0.1), OutputTransportMessageFrame(message="later")])
    return output.written[: output.events.index("message later")]


async def test_the_first_audio_of_an_utterance_goes_out_without_waiting_for_a_whole_chunk():
    output = FirstAudioOutput()
    assert await _written_before_the_message(output, [_audio(CHUNK_S / 2)]) == [20]  # half a chunk, at once
    assert output.first_audio_at_once == 1


async def test_after_the_first_chunk_the_rest_goes_in_whole_chunks():
    output = FirstAudioOutput()
    written = await _written_before_the_message(output, [_audio(CHUNK_S / 2), SleepFrame(0.01), _audio(CHUNK_S * 2 + CHUNK_S / 2)])
    assert written == [20, 40, 40]  # the last 20 ms waits for more (or the end of the utterance)
    assert output.first_audio_at_once == 1


async def test_less_than_half_a_chunk_waits_for_more():
    output = FirstAudioOutput()
    assert await _written_before_the_message(output, [_audio(CHUNK_S / 4)]) == []
    assert output.first_audio_at_once == 0


async def test_without_it_pipecat_waits_for_a_whole_chunk():
    output = Output()
    await run_test(Pipeline([output, Stamp(output)]), frames_to_send=[_audio(CHUNK_S / 2), SleepFrame(0.1), OutputTransportMessageFrame(message="later")])
    assert output.events[0] == "message later"

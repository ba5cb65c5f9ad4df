"""assemble_call: what a call's pipeline carries depends on who is on the other end."""

from __future__ import annotations

import pytest

from app.config.load import load_bot
from app.pipeline import assemble_call, clock_for
from app.store import Store
from tests.conftest import ROOT


@pytest.mark.parametrize(("transport", "rtvi"), [("webrtc", True), ("daily", True), ("eval", True), ("twilio", False), ("chat", False)])
async def test_rtvi_only_for_clients_that_speak_it(tmp_path, transport, rtvi):
    """The prebuilt browser client and Pipecat's evals read RTVI messages; a phone line does not,
    and RTVI's observer would see every push of every frame of the call for nothing."""
    bot = load_bot(ROOT / "bot.yaml")
    with Store(tmp_path / "calls.db") as store:
        call = assemble_call(bot, store, clock=clock_for(bot, None), transport=transport)
        if rtvi:
            assert call.worker.rtvi is not None
        else:
            with pytest.raises(Exception, match="RTVI is not enabled"):
                call.worker.rtvi


async def test_the_callers_audio_goes_no_further_than_the_user_aggregator(tmp_path):
    from pipecat.frames.frames import InputAudioRawFrame, TextFrame
    from pipecat.processors.aggregators.llm_response_universal import LLMUserAggregator
    from pipecat.tests.utils import run_test

    from app.pipeline import caller_audio_ends_here

    down, _ = await run_test(caller_audio_ends_here(), frames_to_send=[InputAudioRawFrame(b"\0" * 640, 16000, 1), TextFrame("hi")])
    assert [type(f).__name__ for f in down] == ["TextFrame"]
    bot = load_bot(ROOT / "bot.yaml")
    with Store(tmp_path / "calls.db") as store:
        call = assemble_call(bot, store, clock=clock_for(bot, None), transport="twilio")
    def flat(processors):
        for p in processors:
            yield p
            yield from flat(getattr(p, "processors", None) or [])

    processors = list(flat(call.worker.pipeline.processors))
    i = next(i for i, p in enumerate(processors) if isinstance(p, LLMUserAggregator))
    assert [type(p).__name__ for p in processors[i : i + 2]] == ["LLMUserAggregator", "FunctionFilter"]


async def test_the_bots_audio_stops_at_the_output_and_usage_is_metered_without_observers(tmp_path):
    """After the output transport has sent the bot's audio only the assistant aggregator is left,
    and it wants words; and a call has no pipeline observer (each would be handed every frame)."""
    from pipecat.frames.frames import MetricsFrame, OutputAudioRawFrame, TextFrame, TTSAudioRawFrame
    from pipecat.metrics.metrics import LLMTokenUsage, LLMUsageMetricsData
    from pipecat.processors.aggregators.llm_response_universal import LLMAssistantAggregator
    from pipecat.tests.utils import run_test

    from app.pipeline import bot_audio_ends_here

    frames = [OutputAudioRawFrame(b"\0" * 320, 8000, 1), TTSAudioRawFrame(b"\0" * 320, 8000, 1), TextFrame("hi")]
    down, _ = await run_test(bot_audio_ends_here(), frames_to_send=frames)
    assert [type(f).__name__ for f in down] == ["TextFrame"]

    bot = load_bot(ROOT / "bot.yaml")
    with Store(tmp_path / "calls.db") as store:
        call = assemble_call(bot, store, clock=clock_for(bot, None), transport="twilio", audio_rate=8000)
    (processors,) = [p.processors for p in call.worker.pipeline.processors if p.processors]  # inside the worker's wrapper
    i = next(i for i, p in enumerate(processors) if isinstance(p, LLMAssistantAggregator))
    assert type(processors[i - 1]).__name__ == "FunctionFilter"
    assert call.worker._observer._observers == []  # noqa: SLF001 - nothing queued per frame
    # The meter listens to the services themselves: what the brain reports is counted under it.
    (brain,) = call.worker.pipeline.processors_with_metrics()
    tokens = LLMTokenUsage(prompt_tokens=120, completion_tokens=30, total_tokens=150)
    await brain.push_frame(MetricsFrame(data=[LLMUsageMetricsData(processor=brain.name, value=tokens)]))
    assert [(u.input_tokens, u.output_tokens) for u in call.meter.usage.values()] == [(120, 30)]


async def test_calls_on_one_bot_share_its_flow_and_each_books_for_itself(tmp_path, monkeypatch):
    """Pipecat's Flow (the bot's nodes joined to the generated functions) is built once per loaded
    bot; two calls in progress at once each fill and book their own details through it."""
    import asyncio
    from datetime import datetime

    from app.chat import run_chat
    from app.pipeline import bot_flow

    for key in ("ANTHROPIC_API_KEY", "DEEPGRAM_API_KEY", "CARTESIA_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    bot = load_bot(ROOT / "bot.yaml")
    assert bot_flow(bot) is bot_flow(bot) and bot_flow(load_bot(ROOT / "bot.yaml")) is not bot_flow(bot)
    flows = []
    both_ready = asyncio.Barrier(2)

    async def turns(*lines: str):
        await both_ready.wait()  # each caller speaks only once both calls are up
        for line in lines:
            yield line
            await asyncio.sleep(0)

    with Store(tmp_path / "calls.db") as store:
        results = await asyncio.gather(*(
            run_chat(bot, store, turns(f"I'd like a {service} this Saturday at {hour}. I'm {name}, {phone}", "yes"),
                     now=datetime(2026, 11, 23, 10), on_ready=lambda call: flows.append(call.flow))
            for service, hour, name, phone in (("beard trim", "eleven", "Tom Baker", "555 222 3333"), ("haircut", "two", "Ann Lee", "555 444 5555"))
        ))  # fmt: skip
        bookings = {(b.name, b.service, b.time.strftime("%H:%M"), b.phone) for b in store.list_bookings()}
    assert len(flows) == 2 and flows[0] is flows[1] is bot_flow(bot)
    assert [r.node for r in results] == ["booked", "booked"]
    assert bookings == {("Tom Baker", "beard trim", "11:00", "5552223333"), ("Ann Lee", "haircut", "14:00", "5554445555")}


async def test_what_the_flow_queues_enters_at_the_user_aggregator(tmp_path, monkeypatch):
    """A node's messages, tools and LLM run (and its actions' frames) go straight into the user
    aggregator: the caller's side of the pipeline (transport input, STT) never carries them, on the
    way from one answer to the next question. The caller's words and the call's end still enter at
    the top, and the booking is made as before."""
    from datetime import datetime

    from pipecat.frames.frames import EndFrame, LLMMessagesAppendFrame, LLMMessagesUpdateFrame, LLMRunFrame, LLMSetToolsFrame, TranscriptionFrame
    from pipecat.processors.frame_processor import FrameProcessor

    import app.chat
    from app.chat import run_chat

    class Probe(FrameProcessor):
        def __init__(self):
            super().__init__(enable_direct_mode=True)
            self.seen: set[type] = set()

        async def process_frame(self, frame, direction):
            await super().process_frame(frame, direction)
            self.seen.add(type(frame))
            await self.push_frame(frame, direction)

    for key in ("ANTHROPIC_API_KEY", "DEEPGRAM_API_KEY", "CARTESIA_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    probe = Probe()
    real = app.chat.assemble_call
    monkeypatch.setattr(app.chat, "assemble_call", lambda *a, **kw: real(*a, inputs=[probe], **kw))

    async def turns():
        for line in ("I'd like a beard trim this Saturday at eleven. I'm Tom Baker, 555 222 3333", "yes"):
            yield line

    bot = load_bot(ROOT / "bot.yaml")
    with Store(tmp_path / "calls.db") as store:
        result = await run_chat(bot, store, turns(), now=datetime(2026, 11, 23, 10))
        assert [(b.name, b.service) for b in store.list_bookings()] == [("Tom Baker", "beard trim")]
    assert result.node == "booked"
    assert {TranscriptionFrame, EndFrame} <= probe.seen
    assert not probe.seen & {LLMMessagesAppendFrame, LLMMessagesUpdateFrame, LLMSetToolsFrame, LLMRunFrame}


async def test_flow_worker_keeps_the_order_and_sends_the_end_in_at_the_top():
    from pipecat.frames.frames import CancelFrame, EndFrame, LLMRunFrame, TTSSpeakFrame

    from app.pipeline import FlowWorker

    class Recorder:
        def __init__(self):
            self.frames: list = []

        async def queue_frame(self, frame, direction=None):
            self.frames.append(frame)

        def event_handler(self, name):
            return f"handler for {name}"

    worker, entry = Recorder(), Recorder()
    flow_worker = FlowWorker(worker, entry)  # type: ignore[arg-type]
    say, run, end, cancel = TTSSpeakFrame("Goodbye."), LLMRunFrame(), EndFrame(), CancelFrame()
    await flow_worker.queue_frames([say, run])
    await flow_worker.queue_frame(end)
    await flow_worker.queue_frame(cancel)
    assert entry.frames == [say, run]
    assert worker.frames == [end, cancel]
    assert flow_worker.event_handler("on_frame_reached_downstream") == "handler for on_frame_reached_downstream"

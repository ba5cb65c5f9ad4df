"""The lean frame path (processors/frame_path.py): what reaches the next processor, the process and
push event handlers and the worker's observers is what Pipecat's own code delivers; only work for
nobody is skipped."""

from __future__ import annotations

import asyncio
import functools

import pipecat.tests.utils as pipecat_test_utils
import pytest
from loguru import logger
from pipecat.frames.frames import (
    AggregatedTextProgressFrame,
    BotSpeakingFrame,
    ErrorFrame,
    Frame,
    InputAudioRawFrame,
    MetricsFrame,
    TextFrame,
    UserSpeakingFrame,
)
from pipecat.metrics.metrics import TTFBMetricsData
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.processors.frameworks.rtvi.observer import RTVIObserver
from pipecat.pipeline.pipeline import Pipeline
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.tests.utils import SleepFrame, run_test

import processors.frame_path as frame_path
from processors.frame_path import LEAN, PIPECAT, install, pipecat_source_hash


class Echo(FrameProcessor):
    """Passes everything on; a `TextFrame("up")` is also sent back upstream."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)
        if isinstance(frame, TextFrame) and frame.text == "up":
            await self.push_frame(TextFrame("back"), FrameDirection.UPSTREAM)


class Broken(FrameProcessor):
    async def queue_frame(self, frame, direction=FrameDirection.DOWNSTREAM, callback=None):
        if isinstance(frame, TextFrame) and frame.text == "boom":
            raise RuntimeError("boom")
        await super().queue_frame(frame, direction, callback)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)


class Failing(FrameProcessor):
    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TextFrame) and frame.text == "boom":
            raise RuntimeError("boom")
        await self.push_frame(frame, direction)


class Pushes(BaseObserver):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seen: list[tuple[str, str, str]] = []

    async def on_push_frame(self, data: FramePushed) -> None:
        if isinstance(data.frame, TextFrame):
            self.seen.append((data.source.name, data.destination.name, data.frame.text))


def test_installed_over_the_pipecat_it_was_written_for():
    assert pipecat_source_hash() == frame_path.PIPECAT_SHA256
    assert install() is True
    assert all(getattr(FrameProcessor, name) is method for name, method in LEAN.items())


def test_a_different_pipecat_keeps_its_own_code(monkeypatch):
    logs: list[str] = []
    sink = logger.add(lambda m: logs.append(str(m)), level="WARNING")
    for name, method in PIPECAT.items():
        monkeypatch.setattr(FrameProcessor, name, method)
    monkeypatch.setattr(frame_path, "PIPECAT_SHA256", "0" * 64)
    try:
        assert install() is False
    finally:
        logger.remove(sink)
    assert all(getattr(FrameProcessor, name) is method for name, method in PIPECAT.items())
    assert any("left as it is" in line for line in logs)


async def test_frames_go_both_ways_and_handlers_hear_every_process_and_push():
    install()
    echo = Echo()
    heard: dict[str, list[str]] = {}

    def record(event: str):
        def handler(processor, frame):
            if isinstance(frame, TextFrame):
                heard.setdefault(event, []).append(frame.text)

        return handler

    for event in ("on_before_process_frame", "on_after_process_frame", "on_before_push_frame"):
        echo.add_event_handler(event, record(event))

    @echo.event_handler("on_after_push_frame")
    async def _after(processor, frame):  # async handlers too
        record("on_after_push_frame")(processor, frame)

    down, up = await run_test(echo, frames_to_send=[TextFrame("a"), TextFrame("up")], expected_down_frames=[TextFrame, TextFrame], expected_up_frames=[TextFrame])
    assert [f.text for f in down] == ["a", "up"] and [f.text for f in up] == ["back"]
    assert heard["on_before_push_frame"] == heard["on_after_push_frame"] == ["a", "up", "back"]
    assert heard["on_before_process_frame"] == heard["on_after_process_frame"] == ["a", "up"]


async def test_a_processing_error_goes_upstream_and_the_next_frame_is_processed():
    install()
    down, up = await run_test(Failing(), frames_to_send=[TextFrame("boom"), TextFrame("fine")], expected_down_frames=[TextFrame], expected_up_frames=[ErrorFrame])
    assert [f.text for f in down] == ["fine"]
    assert "Error processing frame: boom" in up[0].error


async def test_observers_see_every_push_as_with_pipecats_push():
    install()
    observer = Pushes()
    first, second = Echo(name="first"), Echo(name="second")
    await run_test(Pipeline([first, second]), frames_to_send=[TextFrame("a")], expected_down_frames=[TextFrame], observers=[observer])
    assert ("first", "second", "a") in observer.seen


async def test_with_trace_logging_on_pipecats_push_runs():
    install()
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="TRACE", filter="pipecat.processors.frame_processor")
    try:
        await run_test(Echo(name="traced"), frames_to_send=[TextFrame("a")], expected_down_frames=[TextFrame])
    finally:
        logger.remove(sink)
    assert any("Pushing TextFrame" in line and "from traced" in line for line in lines)


async def test_a_failing_next_processor_becomes_an_error_upstream():
    install()
    first = Echo(name="first")
    down, up = await run_test(Pipeline([first, Broken()]), frames_to_send=[TextFrame("boom"), TextFrame("fine")], expected_down_frames=[TextFrame], expected_up_frames=[ErrorFrame])
    assert [f.text for f in down] == ["fine"]
    assert "boom" in up[0].error


@pytest.fixture(autouse=True)
def _lean_path_left_installed():
    """Whatever a test did, the lean path is left installed, as app/pipeline.py installs it."""
    yield
    install()


def _workers_without_observers(monkeypatch) -> None:
    """`run_test`'s workers with no observer at all (its own have a turn tracker and an idle
    watch), as a phone call's."""
    monkeypatch.setattr(pipecat_test_utils, "PipelineWorker", functools.partial(pipecat_test_utils.PipelineWorker, enable_turn_tracking=False, idle_timeout_secs=None))


class Processed(BaseObserver):
    def __init__(self):
        super().__init__()
        self.seen: list[tuple[str, str]] = []

    async def on_process_frame(self, data) -> None:
        if isinstance(data.frame, TextFrame):
            self.seen.append((data.processor.name, data.frame.text))


async def test_observers_see_every_processed_frame_and_without_them_no_record_is_made(monkeypatch):
    import pipecat.processors.frame_processor as pipecat_frame_processor

    install()
    records = []
    real = pipecat_frame_processor.FrameProcessed
    monkeypatch.setattr(pipecat_frame_processor, "FrameProcessed", lambda **kw: records.append(kw["frame"]) or real(**kw))
    observer = Processed()
    await run_test(Pipeline([Echo(name="first"), Echo(name="second")]), frames_to_send=[TextFrame("a")], observers=[observer])
    assert ("first", "a") in observer.seen and ("second", "a") in observer.seen
    records.clear()
    _workers_without_observers(monkeypatch)
    down, _ = await run_test(Pipeline([Echo(name="first"), Echo(name="second")]), frames_to_send=[TextFrame("b")])
    assert [f.text for f in down if isinstance(f, TextFrame)] == ["b"]
    assert not [f for f in records if isinstance(f, TextFrame)]  # nobody to tell: no record, no clock read


class Makes(FrameProcessor):
    """On a `TextFrame("make")`, pushes one of each observer-only frame both ways, then the text."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TextFrame) and frame.text == "make":
            for make in (BotSpeakingFrame, UserSpeakingFrame, lambda: MetricsFrame(data=[]), _progress):
                await self.push_frame(make(), FrameDirection.DOWNSTREAM)
                await self.push_frame(make(), FrameDirection.UPSTREAM)
        await self.push_frame(frame, direction)


def _progress() -> AggregatedTextProgressFrame:
    return AggregatedTextProgressFrame(segment_id="s", context_id="c", text="Hi there.", text_type="sentence", accumulated_text="Hi", remaining_text="there.")


class Heard(FrameProcessor):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.heard: list[str] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        self.heard.append(f"{type(frame).__name__} {direction.name.lower()}")
        await self.push_frame(frame, direction)


OBSERVER_ONLY = ["BotSpeakingFrame", "UserSpeakingFrame", "MetricsFrame", "AggregatedTextProgressFrame"]


@pytest.mark.parametrize("observed", [False, True])
async def test_frames_for_observers_only_go_no_further_when_nobody_observes(monkeypatch, observed):
    install()
    if not observed:
        _workers_without_observers(monkeypatch)
    before, maker, after = Heard(name="before"), Makes(name="maker"), Heard(name="after")
    pushed: list[str] = []
    maker.add_event_handler("on_before_push_frame", lambda processor, frame: pushed.append(type(frame).__name__))
    down, _ = await run_test(Pipeline([before, maker, after]), frames_to_send=[TextFrame("make")], observers=[Pushes()] if observed else [])
    assert [f.text for f in down if isinstance(f, TextFrame)] == ["make"]
    # The push handlers hear each one (the usage meter counts MetricsFrames there) either way.
    assert [name for name in pushed if name in OBSERVER_ONLY] == [name for name in OBSERVER_ONLY for _ in "ud"]
    made_down = [f"{name} downstream" for name in OBSERVER_ONLY]
    made_up = [f"{name} upstream" for name in OBSERVER_ONLY]
    if observed:  # as Pipecat passes them
        assert [h for h in after.heard if h in made_down] == made_down
        assert [h for h in before.heard if h in made_up] == made_up
    else:
        assert not [h for h in after.heard + before.heard if h.split()[0] in OBSERVER_ONLY]
        assert "TextFrame downstream" in after.heard


async def test_with_rtvis_observer_alone_speaking_pings_and_metrics_stop_at_their_first_push():
    """RTVI's observer (a browser or Daily call's) acts on a frame at its first push, but for the
    aggregated text, which it takes from the output transport: the speaking pings and metrics are
    told to it once and go no further; the text's progress still travels, as in Pipecat."""
    install()
    rtvi = RTVIObserver()
    sent: list[str] = []

    async def send(model, exclude_none: bool = True) -> None:
        sent.append(model.type)

    rtvi.send_rtvi_message = send
    before, maker, after = Heard(name="before"), Makes(name="maker"), Heard(name="after")
    metrics = MetricsFrame(data=[TTFBMetricsData(processor="maker", value=0.1)])
    heard: list[tuple[str, str]] = []

    class Hears(BaseObserver):  # first pushes only: never asks for more
        async def on_push_frame(self, data: FramePushed) -> None:
            heard.append((data.source.name, type(data.frame).__name__))

    down, _ = await run_test(
        Pipeline([before, maker, after]), frames_to_send=[TextFrame("make"), metrics], observers=[rtvi, Hears(observe_every_push=False)]
    )
    assert [f.text for f in down if isinstance(f, TextFrame)] == ["make"]
    stopped = ["BotSpeakingFrame", "UserSpeakingFrame", "MetricsFrame"]
    assert not [h for h in after.heard + before.heard if h.split()[0] in stopped and "make" not in h]
    assert "AggregatedTextProgressFrame downstream" in after.heard and "AggregatedTextProgressFrame upstream" in before.heard
    # The observers were told of each first push: the pings and metrics the maker made, and the
    # metrics sent in (first pushed by the pipeline's source), which RTVI reports.
    assert [name for source, name in heard if source == "maker" and name in stopped] == [name for name in stopped for _ in "ud"]
    assert sent.count("metrics") >= 2


@pytest.mark.parametrize("every_push", [True, False])
async def test_an_observer_that_may_want_every_push_keeps_them_travelling(every_push):
    install()
    rtvi, other = RTVIObserver(), Pushes(observe_every_push=every_push)
    before, maker, after = Heard(name="before"), Makes(name="maker"), Heard(name="after")
    await run_test(Pipeline([before, maker, after]), frames_to_send=[TextFrame("make")], observers=[rtvi, other])
    travelled = "BotSpeakingFrame downstream" in after.heard and "MetricsFrame upstream" in before.heard
    assert travelled is every_push


class LoopTurns:
    """Counts the event loop's turns (a callback that schedules itself for the next one)."""

    def __init__(self):
        self.n = 0
        self._loop = asyncio.get_running_loop()
        self._handle = self._loop.call_soon(self._tick)

    def _tick(self) -> None:
        self.n += 1
        self._handle = self._loop.call_soon(self._tick)

    def stop(self) -> None:
        self._handle.cancel()


class Stamp(FrameProcessor):
    """Notes the loop turn at which each text is pushed on (direct mode: at once) or processed (queued)."""

    def __init__(self, turns: LoopTurns, *, direct: bool):
        super().__init__(enable_direct_mode=direct)
        self.turns = turns
        self.at: dict[str, int] = {}

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TextFrame):
            self.at[frame.text] = self.turns.n
        await self.push_frame(frame, direction)


async def _turns_to_process(texts: list[str]) -> list[int]:
    turns = LoopTurns()
    try:
        sent, queued = Stamp(turns, direct=True), Stamp(turns, direct=False)
        frames: list[Frame] = []
        for text in texts:
            frames += [TextFrame(text), SleepFrame(0.01)]
        down, _ = await run_test(Pipeline([sent, queued]), frames_to_send=frames)
    finally:
        turns.stop()
    assert [f.text for f in down if isinstance(f, TextFrame)] == texts
    return [queued.at[text] - sent.at[text] for text in texts]


async def test_a_data_frame_finding_the_input_task_idle_is_processed_one_loop_turn_sooner(monkeypatch):
    # Pipecat's input task would only move it to the process queue: a loop turn for nothing.
    assert await _turns_to_process(["a", "b", "c"]) == [1, 1, 1]
    monkeypatch.setattr(FrameProcessor, "queue_frame", PIPECAT["queue_frame"])
    assert await _turns_to_process(["a", "b", "c"]) == [2, 2, 2]


async def test_frames_keep_their_order_with_system_frames_among_them():
    # A run of data frames with system frames (caller audio) between them, nothing waited for:
    # some find the input task busy and take the queue, the rest go straight to the process queue.
    class Note(FrameProcessor):
        def __init__(self):
            super().__init__()
            self.texts: list[str] = []

        async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
            await super().process_frame(frame, direction)
            if isinstance(frame, TextFrame):
                self.texts.append(frame.text)
            await self.push_frame(frame, direction)

    notes = [Note(), Note(), Note()]
    texts = [str(i) for i in range(60)]
    frames: list[Frame] = []
    for i, text in enumerate(texts):
        frames.append(TextFrame(text))
        if i % 3 == 0:
            frames.append(InputAudioRawFrame(b"\x00\x00" * 160, 8000, 1))
    down, _ = await run_test(Pipeline(notes), frames_to_send=frames)
    assert [f.text for f in down if isinstance(f, TextFrame)] == texts
    assert all(note.texts == texts for note in notes)
    assert sum(isinstance(f, InputAudioRawFrame) for f in down) == 20

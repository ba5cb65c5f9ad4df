"""How the STT and TTS failovers route frames: past their branches' plumbing, to the same services.

A frame going down reaches the active member straight from the switcher, not through every
branch's pipeline, source and filter; a frame going up that no member acts on goes on from the
switcher. The services see exactly what Pipecat's branches would have given them.
"""

from __future__ import annotations

import pytest
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
    FunctionCallsStartedFrame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    OutputTransportReadyFrame,
    STTMetadataFrame,
    TTSAudioRawFrame,
    UserTurnInferenceCompletedFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.filters.function_filter import FunctionFilter
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.tests.utils import SleepFrame, run_test

from app.config.bot import BotConfig
from processors.stt_failover import STTFailover
from processors.tts_failover import TTSFailover
from tests.processors.fakes import FakeSTT, FakeTTS, Step

OK = Step(chunks=("x", "y"), gap=0.01)


class Seen:
    """Records the frames each of some processors is given to process (any direction)."""

    def __init__(self, *processors: FrameProcessor):
        self.frames: dict[str, list[tuple[type[Frame], FrameDirection]]] = {}
        for p in processors:
            self._watch(p)

    def _watch(self, p: FrameProcessor) -> None:
        log = self.frames.setdefault(p.name, [])
        original = p.process_frame

        async def process_frame(frame: Frame, direction: FrameDirection, original=original) -> None:
            log.append((type(frame), direction))
            await original(frame, direction)

        p.process_frame = process_frame  # type: ignore[method-assign]

    def of(self, name: str, *types: type[Frame]) -> list[tuple[type[Frame], FrameDirection]]:
        return [(t, d) for t, d in self.frames[name] if t in types]


def plumbing(switcher) -> list[FrameProcessor]:
    """The processors of the switcher's branches other than the services themselves."""
    return [p for pipeline in switcher._pipelines for p in pipeline.processors if p not in switcher.services]


async def test_stt_failover_passes_on_upstream_frames_no_stt_acts_on_past_its_branches():
    primary, backup = FakeSTT("A"), FakeSTT("B")
    switcher = STTFailover([primary, backup])
    seen = Seen(primary, backup, *plumbing(switcher))
    up = [BotStartedSpeakingFrame(), UserTurnInferenceCompletedFrame(), FunctionCallsStartedFrame(function_calls=[]), BotStoppedSpeakingFrame()]
    _, received_up = await run_test(
        switcher, frames_to_send=[*up, VADUserStoppedSpeakingFrame(), InterruptionFrame(), SleepFrame(0.05)], frames_to_send_direction=FrameDirection.UPSTREAM,
    )  # fmt: skip
    passed = [type(f) for f in received_up if not isinstance(f, STTMetadataFrame)]  # the STTs' own, at start
    assert passed[:4] == [type(f) for f in up]  # in order, all of them
    assert VADUserStoppedSpeakingFrame in passed and InterruptionFrame in passed
    bypassed = tuple(type(f) for f in up)
    for name in seen.frames:
        assert seen.of(name, *bypassed) == [], name  # neither STT nor any branch processor saw them
    # What an STT acts on still reaches the active one (and, through its branch, only that one).
    assert seen.of("A", VADUserStoppedSpeakingFrame, InterruptionFrame) == [
        (VADUserStoppedSpeakingFrame, FrameDirection.UPSTREAM), (InterruptionFrame, FrameDirection.UPSTREAM),
    ]  # fmt: skip
    assert seen.of("B", VADUserStoppedSpeakingFrame, InterruptionFrame) == []


async def test_tts_failover_hands_frames_going_down_to_the_active_voice_only_and_straight():
    primary, backup = FakeTTS("A", [OK]), FakeTTS("B")
    switcher = TTSFailover([primary, backup], first_audio_s=0.5, stall_s=0.5)
    watched = plumbing(switcher)
    seen = Seen(primary, backup, *watched)
    reply = [LLMFullResponseStartFrame(), LLMTextFrame("Hello there. "), LLMFullResponseEndFrame()]
    received_down, _ = await run_test(switcher, frames_to_send=[*reply, SleepFrame(0.3)])
    assert any(isinstance(f, TTSAudioRawFrame) and f.audio[:1] == b"A" for f in received_down)
    assert not any(isinstance(f, TTSAudioRawFrame) and f.audio[:1] == b"B" for f in received_down)
    kinds = (LLMFullResponseStartFrame, LLMTextFrame, LLMFullResponseEndFrame)
    assert [t for t, _ in seen.of("A", *kinds)] == list(kinds)
    assert seen.of("B", *kinds) == []
    # No branch's entry (pipeline, source, filter) took them: they went to the voice directly.
    # (On the way out, the active branch's gate, exit filter and sink still carry the voice's frames.)
    entries = [p for p in watched if not (isinstance(p, FunctionFilter) and p._direction == FrameDirection.UPSTREAM) and "OutputGate" not in p.name and "Sink" not in p.name]
    assert entries  # the branches' pipelines, sources and entry filters
    for p in entries:
        assert seen.of(p.name, *kinds) == [], p.name


async def test_tts_failover_passes_on_what_the_output_sends_up_past_its_branches():
    primary, backup = FakeTTS("A"), FakeTTS("B")
    switcher = TTSFailover([primary, backup])
    seen = Seen(primary, backup, *plumbing(switcher))
    up = [OutputTransportReadyFrame(), BotStartedSpeakingFrame(), BotStoppedSpeakingFrame()]
    _, received_up = await run_test(switcher, frames_to_send=[*up, SleepFrame(0.05)], frames_to_send_direction=FrameDirection.UPSTREAM)
    # (system frames overtake the control frame in the switcher's own queues, as anywhere in Pipecat)
    assert sorted(type(f).__name__ for f in received_up) == sorted(type(f).__name__ for f in up)
    for name in seen.frames:
        assert seen.of(name, *(type(f) for f in up)) == [], name


CONFIG = BotConfig.model_validate({
    "name": "x", "flow": "f.yaml",
    "stt": [{"provider": "deepgram"}, {"provider": "whisper"}],
    "tts": [{"provider": "cartesia"}, {"provider": "piper"}],
})  # fmt: skip


@pytest.mark.parametrize("slot", ["stt", "tts"])
async def test_the_product_s_services_only_pass_on_the_frames_routed_past_them(monkeypatch, slot):
    """The lists are right for the services frontdesk builds (Deepgram and Whisper, Cartesia and
    Piper): each of those, given such a frame going up, pushes that frame up and nothing else."""
    from app.voice import stt_slot, tts_slot

    monkeypatch.setenv("DEEPGRAM_API_KEY", "dg-key")
    monkeypatch.setenv("CARTESIA_API_KEY", "ca-key")
    switcher = stt_slot(CONFIG, []) if slot == "stt" else tts_slot(CONFIG)
    assert [type(s).__name__ for s in switcher.services] == (["DeepgramLiveSTT", "EmbeddedWhisperSTT"] if slot == "stt" else ["CartesiaTTS", "EmbeddedPiperTTS"])
    assert switcher._past_members_upstream
    for service in switcher.services:
        for kind in switcher._past_members_upstream:
            frame = _made(kind)
            pushed: list[tuple[Frame, FrameDirection]] = []

            async def push(f: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM) -> None:
                pushed.append((f, direction))

            monkeypatch.setattr(service, "push_frame", push)
            await service.process_frame(frame, FrameDirection.UPSTREAM)
            assert pushed == [(frame, FrameDirection.UPSTREAM)], (service.name, kind.__name__)


def _made(kind: type[Frame]) -> Frame:
    """A frame of `kind` with its required fields filled (these frames carry little)."""
    import dataclasses

    from pipecat.processors.aggregators.llm_context import LLMContext

    known = {"context": LLMContext(), "function_calls": [], "tool_call_id": "t", "function_name": "f", "arguments": {}, "messages": [], "tools": [], "text": ""}
    required = [f.name for f in dataclasses.fields(kind) if f.init and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    return kind(**{name: known.get(name) for name in required})

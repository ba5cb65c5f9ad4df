"""STTFailover on scripted fakes: each fault ends with the caller's words in one final, from the backup.

The caller's audio carries its words (`said`), so a fake STT's transcript shows what audio it was
given: a word lost in the replay is missing from the final, a word fed twice is in it twice. The
VAD frames come back UPSTREAM from `AggregatorVAD`, where Pipecat 1.14's user aggregator sends them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from pipecat.frames.frames import (
    ErrorFrame,
    InputAudioRawFrame,
    InterruptionFrame,
    SystemFrame,
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.service_switcher import ServiceSwitcher, ServiceSwitcherStrategyFailover
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.tests.utils import SleepFrame, run_test

from processors.failover import SETUP_WAIT_S
from processors.stt_failover import STTFailover
from tests.processors.fakes import (
    FRAME_BYTES,
    AggregatorVAD,
    FakeSegmentedSTT,
    FakeSTT,
    Step,
    VADMark,
    answer,
    error,
    hang,
    quiet,
    said,
    stall,
)

WORDS = ("my", "number", "is", "five", "five", "five", "one", "two")
TEXT = " ".join(WORDS)
LEAD, TAIL = 20, 5  # frames of silence before and after the words
PREROLL = 15  # 0.3 s of 20 ms frames: the pre-roll kept before the VAD start
REPLAYED = (PREROLL + len(WORDS) - 2 + TAIL) * FRAME_BYTES  # the VAD start comes two words in


def utterance(*words: str, gap: float = 0.0, stop: bool = True) -> list:
    """Silence, two words, the VAD start, the other words (`gap` apart), silence, the VAD stop."""
    rest = []
    for w in words[2:]:
        rest += [*said(w), *([SleepFrame(gap)] if gap else [])]
    frames = [*quiet(LEAD), *said(*words[:2]), VADMark(speaking=True), SleepFrame(0.05), *rest, *quiet(TAIL)]
    return [*frames, VADMark(speaking=False), SleepFrame(0.05)] if stop else frames


def chain(primary_steps: list[Step], backup: FakeSTT | FakeSegmentedSTT | None = None, **kwargs):
    primary, backup = FakeSTT("A", primary_steps), backup or FakeSTT("B")
    return primary, backup, STTFailover([primary, backup], final_s=0.25, stall_s=0.25, **kwargs)


async def run(failover, frames: list):
    return await run_test(Pipeline([failover, AggregatorVAD()]), frames_to_send=frames)


def finals(down) -> list[str]:
    return [f.text for f in down if isinstance(f, TranscriptionFrame)]


def audio_ids(down) -> list[int]:
    return [f.id for f in down if isinstance(f, InputAudioRawFrame)]


def sent_audio(frames) -> list[int]:
    return [f.id for f in frames if isinstance(f, InputAudioRawFrame)]


async def test_normal_path_one_final_from_the_primary_and_no_switch():
    primary, backup, failover = chain([])
    frames = [*utterance(*WORDS), SleepFrame(0.3)]
    down, up = await run(failover, frames)
    assert finals(down) == [TEXT]
    assert len(primary.finals) == 1 and backup.audio_bytes == 0
    assert failover.switches == []
    assert audio_ids(down) == sent_audio(frames)  # the caller's audio passes on once, in order
    assert [type(f) for f in up if isinstance(f, (VADUserStartedSpeakingFrame, VADUserStoppedSpeakingFrame))] == [
        VADUserStartedSpeakingFrame, VADUserStoppedSpeakingFrame,
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("step", "reason"),
    [(error(401), "error 401"), (error(500), "error 500"), (error(529), "error 529"), (error(429), "error 429"),
     (hang(), "no final within 0.25s"),
     (stall(after=3), "no final within 0.25s"),  # interims stopped, caller stopped: the final is late
     (Step(status=401, stall_after=3), "error 401")],  # connection lost mid-speech
)  # fmt: skip
async def test_fault_ends_with_one_final_of_every_word_from_the_backup(step: Step, reason: str):
    primary, backup, failover = chain([step])
    frames = [*utterance(*WORDS), SleepFrame(0.6)]
    down, up = await run(failover, frames)
    assert finals(down) == [TEXT] and len(backup.finals) == 1
    assert backup.audio_bytes == REPLAYED  # pre-roll and utterance, fed once
    assert audio_ids(down) == sent_audio(frames)  # the fed copies never leave the switcher
    assert failover.switches == [("A", "B", reason)]
    assert failover.breaker(primary).state == "open"
    assert not [f for f in up if isinstance(f, ErrorFrame)]


async def test_a_last_resort_slower_than_the_deadline_is_waited_for():
    # Whisper on a busy CPU takes longer than `final_s`: with nowhere left to go, its final counts.
    primary, backup, failover = chain([hang()], backup=FakeSTT("B", [answer(first_delay=0.6)]))
    down, up = await run(failover, [*utterance(*WORDS), SleepFrame(1.2)])
    assert finals(down) == [TEXT] and len(backup.finals) == 1
    assert failover.switches == [("A", "B", "no final within 0.25s")]
    assert failover.breaker(primary).state == "open" and failover.breaker(backup).state == "closed"


async def test_interims_that_stall_while_the_caller_speaks_switch_mid_utterance():
    primary, backup, failover = chain([stall(after=2)])
    frames = [*utterance(*WORDS, gap=0.08), SleepFrame(0.4)]  # ~0.5 s of speech: the stall shows first
    down, _ = await run(failover, frames)
    assert finals(down) == [TEXT]
    assert failover.switches == [("A", "B", "interims stalled for 0.25s")]
    assert backup.audio_bytes == REPLAYED  # part replayed, the rest live


async def test_error_before_the_vad_start_hands_the_early_words_to_the_backup():
    primary, backup, failover = chain([Step(status=401, stall_after=0)])  # fails on the first word
    down, _ = await run(failover, [*utterance(*WORDS), SleepFrame(0.4)])
    assert finals(down) == [TEXT]
    assert failover.switches == [("A", "B", "error 401")]


async def test_segmented_backup_gets_the_vad_frames_it_transcribes_between():
    primary, backup, failover = chain([hang()], backup=FakeSegmentedSTT("W"))
    down, _ = await run(failover, [*utterance(*WORDS), SleepFrame(0.6)])
    assert finals(down) == [TEXT]
    assert backup.segments == [list(WORDS)]
    assert failover.switches == [("A", "W", "no final within 0.25s")]


async def test_late_final_of_the_failed_stt_is_dropped():
    primary, backup, failover = chain([answer(first_delay=0.4)])  # too late for final_s=0.25
    down, _ = await run(failover, [*utterance(*WORDS), SleepFrame(0.8)])
    assert len(primary.finals) == 1 and len(backup.finals) == 1
    assert finals(down) == [TEXT]
    assert failover.breaker(primary).state == "open"


async def test_caller_resuming_before_the_deadline_resets_it():
    # The first part's final comes 0.3 s after its stop (> final_s), but the caller spoke again
    # 0.05 s after it and goes on for 0.6 s: no fault.
    primary, backup, failover = chain([answer(first_delay=0.3), answer()])
    part2_words = ("one", "two", "three", "four", "five", "six")
    part2 = [VADMark(speaking=True), SleepFrame(0.05)]
    for w in part2_words:
        part2 += [*said(w), SleepFrame(0.1)]
    frames = [*utterance(*WORDS[:4]), *part2, *quiet(TAIL), VADMark(speaking=False), SleepFrame(0.4)]
    down, _ = await run(failover, frames)
    assert failover.switches == [] and backup.audio_bytes == 0
    assert len(finals(down)) == 2 and " ".join(finals(down)).split() == [*WORDS[:4], *part2_words]


async def test_interruption_mid_utterance_drops_nothing():
    primary, backup, failover = chain([hang()])
    frames = utterance(*WORDS, stop=False)
    frames.insert(len(frames) - TAIL, InterruptionFrame())  # the aggregator's barge-in, mid-speech
    down, _ = await run(failover, [*frames, VADMark(speaking=False), SleepFrame(0.6)])
    assert finals(down) == [TEXT]
    assert backup.audio_bytes == REPLAYED


async def test_new_utterance_starts_a_fresh_buffer():
    primary, backup, failover = chain([answer(), hang()])
    second = ("yes", "that", "is", "right")
    down, _ = await run(failover, [*utterance(*WORDS), SleepFrame(0.1), *utterance(*second), SleepFrame(0.6)])
    assert finals(down) == [TEXT, " ".join(second)]
    assert backup.audio_bytes == (PREROLL + len(second) - 2 + TAIL) * FRAME_BYTES


async def test_silence_without_a_final_is_not_held_against_the_stt():
    # A segmented STT sends nothing for an utterance without words: the backup finds none either.
    primary, backup, failover = chain([hang()], backup=FakeSegmentedSTT("W"))
    frames = [*quiet(LEAD), VADMark(speaking=True), SleepFrame(0.05), *quiet(10), VADMark(speaking=False), SleepFrame(0.6)]
    down, up = await run(failover, frames)
    assert finals(down) == [] and backup.segments == [[]]
    assert failover.breaker(primary).state == "closed"
    assert not [f for f in up if isinstance(f, ErrorFrame)]


@dataclass
class At(SystemFrame):
    """Sets the breakers' clock when it reaches `Clock`."""

    now: float = 0.0


class Clock(FrameProcessor):
    """The breakers' clock, moved by `At` frames sent down the pipeline."""

    def __init__(self):
        super().__init__()
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def process_frame(self, frame, direction):
        await super().process_frame(frame, direction)
        if isinstance(frame, At):
            self.now = frame.now
        else:
            await self.push_frame(frame, direction)


async def test_failed_stt_is_probed_after_the_backoff_and_used_again():
    clock = Clock()
    primary, backup, failover = chain([error(500), answer()], backoff_s=5, clock=clock)
    frames = [
        *utterance(*WORDS), SleepFrame(0.3),
        *utterance("two", "words"), SleepFrame(0.3),  # the primary's breaker is open: the backup's
        At(now=5.5), *utterance("three", "words", "now"), SleepFrame(0.3),  # after the back-off: probed
    ]  # fmt: skip
    down, _ = await run_test(Pipeline([clock, failover, AggregatorVAD()]), frames_to_send=frames)
    assert finals(down) == [TEXT, "two words", "three words now"]
    assert len(backup.finals) == 2 and len(primary.finals) == 1  # the probe's final, every word of it
    assert [s[2] for s in failover.switches] == ["error 500", "recovery probe"]
    assert failover.breaker(primary).state == "closed"


async def test_all_failed_reports_one_error_upstream():
    primary, backup, failover = chain([error(500)])
    backup.script.default = error(503)
    down, up = await run(failover, [*utterance(*WORDS), SleepFrame(0.4)])
    assert finals(down) == []
    errors = [f for f in up if isinstance(f, ErrorFrame)]
    assert len(errors) == 1 and "every STT failed" in errors[0].error


async def test_plain_service_switcher_loses_the_utterance_the_failover_keeps():
    # Pipecat's own failover strategy keeps the 500'd STT (it is still "usable"): the words are lost.
    plain_primary, plain_backup = FakeSTT("A", [error(500)]), FakeSTT("B")
    plain = ServiceSwitcher([plain_primary, plain_backup], ServiceSwitcherStrategyFailover)
    down, _ = await run(plain, [*utterance(*WORDS), SleepFrame(0.4)])
    assert finals(down) == [] and plain_backup.audio_bytes == 0

    primary, backup, failover = chain([error(500)])
    down, _ = await run(failover, [*utterance(*WORDS), SleepFrame(0.4)])
    assert finals(down) == [TEXT]


async def test_vad_frames_from_before_the_stt_work_too():
    # A VAD in front of the STT sends its frames downstream, through the STT, instead.
    primary, backup, failover = chain([hang()], backup=FakeSegmentedSTT("W"))
    frames = [*quiet(LEAD), *said(*WORDS[:2]), VADUserStartedSpeakingFrame(), *said(*WORDS[2:]), *quiet(TAIL),
              VADUserStoppedSpeakingFrame(), SleepFrame(0.6)]  # fmt: skip
    down, _ = await run_test(failover, frames_to_send=frames)
    assert finals(down) == [TEXT] and backup.segments == [list(WORDS)]
    assert [type(f) for f in down if isinstance(f, (VADUserStartedSpeakingFrame, VADUserStoppedSpeakingFrame))] == [
        VADUserStartedSpeakingFrame, VADUserStoppedSpeakingFrame,
    ]  # the fed copies stay inside  # fmt: skip


class NeverConnects(FakeSTT):
    """A cloud STT whose setup (its connection) never completes, like Deepgram on a hung handshake."""

    async def setup(self, setup):
        await super().setup(setup)
        await asyncio.sleep(60)


async def test_an_stt_that_cannot_connect_does_not_hold_up_the_call():
    # Pipecat holds the StartFrame until every processor is set up; Deepgram's setup waits for its
    # connection (or its retries, >= 4 s apart). The failover starts without it after SETUP_WAIT_S.
    primary, backup = NeverConnects("A"), FakeSTT("B")
    failover = STTFailover([primary, backup], final_s=0.25, stall_s=0.25)
    started = asyncio.get_running_loop().time()
    frames = [*utterance(*WORDS), SleepFrame(0.6)]
    down, _ = await run_test(Pipeline([failover, AggregatorVAD()]), frames_to_send=frames, start_timeout=SETUP_WAIT_S + 1.0)
    assert asyncio.get_running_loop().time() - started < SETUP_WAIT_S + 2.0
    assert finals(down) == [TEXT]  # every word, from the backup
    assert failover.switches == [("A", "B", "A breaker open")]
    assert failover.breaker(primary).state == "open"

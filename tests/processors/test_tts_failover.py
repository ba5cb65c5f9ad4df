"""TTSFailover on scripted fakes: each fault ends with every sentence voiced exactly once."""

from __future__ import annotations

import asyncio
import time

import pytest
from pipecat.frames.frames import (
    ErrorFrame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
)
from pipecat.tests.utils import SleepFrame, run_test

from processors.tts_failover import TTSFailover, resume_offset
from tests.processors.fakes import FakeTTS, Step, answer, error, hang, stall

SENTENCES = ["First sentence here.", "Second one now.", "Third and last."]
OK = Step(chunks=("x", "y"), gap=0.01)


def response(*sentences: str) -> list:
    return [LLMFullResponseStartFrame(), *(LLMTextFrame(s + " ") for s in sentences), LLMFullResponseEndFrame()]


def heard(down) -> list[str]:
    """Audio by service initial, spoken transcript, and the framing, in order."""
    out = []
    for f in down:
        if isinstance(f, TTSAudioRawFrame):
            out.append(f"audio:{f.audio[:1].decode()}")
        elif isinstance(f, TTSTextFrame):
            out.append(f.text)
        elif isinstance(f, (LLMFullResponseStartFrame, LLMFullResponseEndFrame, TTSStartedFrame, TTSStoppedFrame)):
            out.append(type(f).__name__)
    return out


def chain(primary_steps: list[Step], **kwargs) -> tuple[FakeTTS, FakeTTS, TTSFailover]:
    primary, backup = FakeTTS("A", primary_steps), FakeTTS("B")
    return primary, backup, TTSFailover([primary, backup], first_audio_s=0.25, stall_s=0.25, **kwargs)


@pytest.mark.parametrize(
    ("step", "reason"),
    [(error(500), "error 500"), (error(529), "error 529"), (error(429), "error 429"), (error(401), "error 401"),
     (hang(), "audio stalled for 0.25s")],  # the response's audio had begun: a stall
)  # fmt: skip
async def test_fault_on_the_second_sentence_voices_the_rest_on_the_backup(step: Step, reason: str):
    primary, backup, failover = chain([OK, step])
    down, up = await run_test(failover, frames_to_send=[*response(*SENTENCES), SleepFrame(0.9)])
    assert heard(down) == [
        "LLMFullResponseStartFrame", "TTSStartedFrame", "audio:A", "audio:A", SENTENCES[0],
        "audio:B", "audio:B", SENTENCES[1], "audio:B", "audio:B", SENTENCES[2],
        "TTSStoppedFrame", "LLMFullResponseEndFrame",
    ]  # fmt: skip
    assert backup.spoken == SENTENCES[1:]
    assert failover.switches == [("A", "B", reason)]
    assert not [f for f in up if isinstance(f, ErrorFrame)]


async def test_stall_mid_audio_never_repeats_the_started_sentence():
    primary, backup, failover = chain([OK, stall("a", "b", "c", after=1)])
    down, _ = await run_test(failover, frames_to_send=[*response(*SENTENCES), SleepFrame(0.9)])
    assert heard(down) == [
        "LLMFullResponseStartFrame", "TTSStartedFrame", "audio:A", "audio:A", SENTENCES[0],
        "audio:A", SENTENCES[1],  # cut off: its transcript stands for what was heard
        "audio:B", "audio:B", SENTENCES[2], "TTSStoppedFrame", "LLMFullResponseEndFrame",
    ]  # fmt: skip
    assert backup.spoken == SENTENCES[2:]
    assert failover.switches == [("A", "B", "audio stalled for 0.25s")]


async def test_fault_before_any_audio_voices_everything_on_the_backup_once():
    primary, backup, failover = chain([hang()])
    down, _ = await run_test(failover, frames_to_send=[TTSSpeakFrame("Hello there. How can I help?"), SleepFrame(0.8)])
    assert [h for h in heard(down) if h.startswith("audio")] == ["audio:B", "audio:B"]
    assert backup.spoken == ["Hello there. How can I help?"]
    assert failover.switches == [("A", "B", "no audio within 0.25s")]


async def test_caller_interruption_is_not_a_fault():
    slow = Step(chunks=("x", "y", "z"), gap=0.15)
    primary, backup, failover = chain([slow])
    frames = [*response(*SENTENCES), SleepFrame(0.1), InterruptionFrame(), SleepFrame(0.6)]
    down, _ = await run_test(failover, frames_to_send=frames)
    assert failover.switches == [] and backup.spoken == []
    assert "audio:B" not in heard(down)


async def test_breaker_recovers_after_the_backoff():
    clock = {"now": 0.0}
    primary, backup, failover = chain([error(500)], backoff_s=5, clock=lambda: clock["now"])
    backup.script.on_request = lambda n: clock.update(now=5.5) if n == 2 else None
    frames = [*response("One."), SleepFrame(0.4), *response("Two."), SleepFrame(0.4), *response("Three."), SleepFrame(0.4)]
    down, _ = await run_test(failover, frames_to_send=frames)
    assert primary.spoken == ["One.", "Three."] and backup.spoken == ["One.", "Two."]
    assert heard(down)[-5:-2] == ["audio:A", "audio:A", "Three."]
    assert failover.breaker(primary).state == "closed"
    assert [s[2] for s in failover.switches] == ["error 500", "recovery probe"]


def test_resume_offset_goes_to_the_end_of_the_started_sentence():
    text = "Hi there. It's ten (sharp)! Bye."
    assert resume_offset(text, 0) == 0
    assert text[resume_offset(text, 2):] == " It's ten (sharp)! Bye."
    assert text[resume_offset(text, 8):] == " Bye."
    assert resume_offset(text, 100) == len(text)


async def test_word_timed_stall_says_the_cut_off_sentence_again_in_full():
    # Cartesia reports a sentence's words with its first audio chunk, ahead of the audio: words
    # count as heard only once their audio has come. Cut off after 80 ms of "First sentence here.",
    # the backup says it again from its start, and the transcript holds it once.
    from pipecat.services.cartesia.tts import CartesiaTTSService

    from app.standins.cartesia import CartesiaStandIn, tone
    from app.standins.fault import Fault

    async with CartesiaStandIn(synthesizer=tone) as standin:
        standin.script.then(Fault("stall", after=2))
        cartesia = CartesiaTTSService(api_key=standin.api_key, url=standin.url, settings=CartesiaTTSService.Settings(model="sonic-3", voice="v"))
        backup = FakeTTS("B")
        failover = TTSFailover([cartesia, backup], first_audio_s=0.5, stall_s=0.3)
        down, _ = await run_test(failover, frames_to_send=[*response("First sentence here.", "Second one now."), SleepFrame(1.5)])
    assert backup.spoken == ["First sentence here.", "Second one now."]
    assert [f.text for f in down if isinstance(f, TTSTextFrame)] == ["First sentence here.", "Second one now."]
    assert [switch[1:] for switch in failover.switches] == [("B", "audio stalled for 0.3s")]


async def test_word_timed_words_are_all_told_once_in_order():
    from pipecat.services.cartesia.tts import CartesiaTTSService

    from app.standins.cartesia import CartesiaStandIn, tone

    async with CartesiaStandIn(synthesizer=tone) as standin:
        cartesia = CartesiaTTSService(api_key=standin.api_key, url=standin.url, settings=CartesiaTTSService.Settings(model="sonic-3", voice="v"))
        failover = TTSFailover([cartesia, FakeTTS("B")], first_audio_s=0.5, stall_s=0.3)
        down, _ = await run_test(failover, frames_to_send=[*response("First sentence here.", "Second one"), SleepFrame(2.5)])
    assert [f.text for f in down if isinstance(f, TTSTextFrame)] == "First sentence here. Second one".split()
    assert failover.switches == []


async def test_a_stalled_event_loop_is_not_blamed_on_the_voice():
    """The loop stalls for twice the first-audio deadline just after the request (a busy server):
    the provider was not late, the server was, so there is no failover."""
    slow = Step(chunks=("x", "y"), first_delay=0.15)
    primary, backup, failover = chain([slow])
    asyncio.get_running_loop().call_later(0.05, time.sleep, 0.5)
    down, _ = await run_test(failover, frames_to_send=[TTSSpeakFrame("Hello there."), SleepFrame(0.8)])
    assert failover.switches == [] and backup.spoken == []
    assert [h for h in heard(down) if h.startswith("audio")] == ["audio:A", "audio:A"]


async def test_a_voice_that_is_late_on_a_free_loop_still_fails_over():
    late = Step(chunks=("x", "y"), first_delay=0.5)
    primary, backup, failover = chain([late])
    down, _ = await run_test(failover, frames_to_send=[TTSSpeakFrame("Hello there."), SleepFrame(0.9)])
    assert failover.switches == [("A", "B", "no audio within 0.25s")]
    assert backup.spoken == ["Hello there."]


@pytest.mark.parametrize(
    "slow",
    [answer("x", "y", first_delay=0.5), answer("x", "y", gap=0.5)],  # late first audio; a gap mid-sentence
    ids=["late", "gap"],
)
async def test_a_last_resort_slower_than_the_deadlines_is_waited_for(slow: Step):
    # Piper on a busy CPU, after the cloud voice failed: with nowhere left to go, its audio counts
    # (given up on, the rest of the reply was never said).
    primary, backup = FakeTTS("A", [error(500)]), FakeTTS("B", [slow])
    failover = TTSFailover([primary, backup], first_audio_s=0.25, stall_s=0.25)
    down, up = await run_test(failover, frames_to_send=[*response(*SENTENCES), SleepFrame(1.5)])
    assert backup.spoken == SENTENCES
    assert [f.text for f in down if isinstance(f, TTSTextFrame)] == SENTENCES
    assert failover.switches == [("A", "B", "error 500")]
    assert not [f for f in up if isinstance(f, ErrorFrame)]


async def test_a_voice_down_for_one_call_is_skipped_by_the_next_call_from_its_start():
    """Process-wide breakers: services that name the same provider share one. The first call
    finds Cartesia failing; a call that starts during the back-off goes straight to the backup,
    without asking the failed provider or waiting for it to connect."""

    def call(steps: list[Step], setup_hangs: bool = False) -> tuple[FakeTTS, FakeTTS, TTSFailover]:
        primary, backup = FakeTTS("A", steps), FakeTTS("B")
        primary.provider_key = "tts cartesia default endpoint"  # as app.providers tags Cartesia
        if setup_hangs:  # set up, then connecting to a provider that is down: it would hang
            original_setup = primary.setup

            async def setup(setup):
                await original_setup(setup)
                await asyncio.sleep(3)

            primary.setup = setup
        return primary, backup, TTSFailover([primary, backup], first_audio_s=0.25, stall_s=0.25)

    _, _, first = call([error(500)])
    await run_test(first, frames_to_send=[TTSSpeakFrame("Hello there."), SleepFrame(0.4)])
    assert first.switches == [("A", "B", "error 500")]

    primary, backup, second = call([OK], setup_hangs=True)
    started = asyncio.get_running_loop().time()
    await run_test(second, frames_to_send=[TTSSpeakFrame("Good morning."), SleepFrame(0.3)])
    assert primary.spoken == [] and backup.spoken == ["Good morning."]
    assert asyncio.get_running_loop().time() - started < 0.9  # the call's start did not wait for it


async def test_calls_on_unnamed_services_keep_breakers_of_their_own():
    _, _, first = chain([error(500)])
    await run_test(first, frames_to_send=[TTSSpeakFrame("Hello there."), SleepFrame(0.4)])
    primary, backup, second = chain([OK])
    await run_test(second, frames_to_send=[TTSSpeakFrame("Good morning."), SleepFrame(0.3)])
    assert primary.spoken == ["Good morning."] and second.switches == []

"""LLMFailover on scripted fakes: each fault ends with exactly one complete answer downstream."""

from __future__ import annotations

import pytest
from pipecat.frames.frames import (
    EagerEndOfTurnCancelFrame,
    ErrorFrame,
    InterruptionFrame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    ManuallySwitchServiceFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.tests.utils import SleepFrame, run_test

from processors.llm_failover import NOTICE, LLMFailover
from tests.processors.fakes import FakeLLM, Step, answer, error, hang, stall

BACKUP = ["The backup ", "answers in full."]


def turn(text: str = "what time do you open") -> LLMContextFrame:
    return LLMContextFrame(LLMContext(messages=[{"role": "user", "content": text}]))


def reply(down) -> list[str]:
    """The framing and text that went downstream."""
    kinds = {LLMFullResponseStartFrame: "<start>", LLMFullResponseEndFrame: "<end>"}
    return [kinds.get(type(f), getattr(f, "text", "")) for f in down if type(f) in kinds or isinstance(f, LLMTextFrame)]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def chain(primary_steps: list[Step], **kwargs) -> tuple[FakeLLM, FakeLLM, LLMFailover]:
    primary = FakeLLM("primary", primary_steps)
    backup = FakeLLM("backup", default=answer(*BACKUP))
    return primary, backup, LLMFailover([primary, backup], first_token_s=0.3, stall_s=0.3, **kwargs)


@pytest.mark.parametrize(
    ("step", "reason"),
    [(error(500), "error 500"), (error(529), "error 529"), (error(429), "error 429"), (error(401), "error 401"),
     (hang(), "no first token within 0.3s")],
)  # fmt: skip
async def test_fault_before_any_text_gives_the_backups_answer_alone(step: Step, reason: str):
    switched: list[tuple[str, str, str]] = []
    primary, backup, failover = chain([step], on_switch=lambda *a: switched.append(a))
    down, up = await run_test(failover, frames_to_send=[turn(), SleepFrame(0.8)])
    assert reply(down) == ["<start>", *BACKUP, "<end>"]
    assert switched == failover.switches == [("primary", "backup", reason)]
    assert failover.breaker(primary).state == "open" and failover.breaker(backup).state == "closed"
    assert not [f for f in up if isinstance(f, ErrorFrame)]  # answered here, not passed on


async def test_stall_mid_reply_restarts_on_the_backup_with_a_notice():
    primary, backup, failover = chain([stall("We open ", "at nine ", "on weekdays.", after=2)])
    down, _ = await run_test(failover, frames_to_send=[turn(), SleepFrame(0.9)])
    # The partly spoken reply is closed; the backup's is a reply of its own, opening with the notice.
    assert reply(down) == ["<start>", "We open ", "at nine ", "<end>", "<start>", NOTICE, *BACKUP, "<end>"]
    assert failover.switches == [("primary", "backup", "stalled for 0.3s mid-reply")]


async def test_late_output_of_the_failed_llm_never_reaches_the_caller():
    # The primary answers after its deadline: by then the backup has the turn.
    primary, backup, failover = chain([answer("Too late.", first_delay=0.5)])
    down, _ = await run_test(failover, frames_to_send=[turn(), SleepFrame(1.0)])
    assert reply(down) == ["<start>", *BACKUP, "<end>"]


async def test_caller_interruption_mid_reply_is_not_a_fault():
    primary, backup, failover = chain([answer("One. ", "Two. ", "Three.", gap=0.2)])
    frames = [turn(), SleepFrame(0.1), InterruptionFrame(), SleepFrame(0.6)]
    down, _ = await run_test(failover, frames_to_send=frames)
    assert failover.switches == [] and failover.breaker(primary).state == "closed"
    assert "Three." not in reply(down) and backup.script.requests == 0


async def test_breaker_skips_the_failed_llm_then_probes_it_after_the_backoff():
    clock = Clock()
    primary, backup, failover = chain([error(503), answer("Primary is back.")], backoff_s=5, clock=clock)
    states: list[str] = []

    def after_request(n: int) -> None:  # the backup's second turn: then 6 s pass
        states.append(failover.breaker(primary).state)
        if n == 2:
            clock.now = 6.0

    backup.script.on_request = after_request
    frames = [turn(), SleepFrame(0.5), turn("and on sunday"), SleepFrame(0.4), turn("and on monday"), SleepFrame(0.4)]
    down, _ = await run_test(failover, frames_to_send=frames)
    assert states == ["open", "open"]  # the second turn skipped the primary
    assert primary.script.requests == 2 and backup.script.requests == 2
    assert reply(down)[-3:] == ["<start>", "Primary is back.", "<end>"]
    assert failover.breaker(primary).state == "closed"
    assert [s[2] for s in failover.switches] == ["error 503", "recovery probe"]


async def test_manual_switch_to_an_open_breaker_picks_the_next_available():
    local = FakeLLM("local", default=answer("Local answer."))
    primary = FakeLLM("primary", [error(500)])
    backup = FakeLLM("backup", default=answer(*BACKUP))
    failover = LLMFailover([primary, backup, local], first_token_s=0.3, stall_s=0.3)
    frames = [
        ManuallySwitchServiceFrame(service=local), turn(), SleepFrame(0.3),  # the router's fast path
        ManuallySwitchServiceFrame(service=primary), turn(), SleepFrame(0.5),  # LLM: fails over
        ManuallySwitchServiceFrame(service=local), turn(), SleepFrame(0.3),
        ManuallySwitchServiceFrame(service=primary), turn(), SleepFrame(0.3),  # breaker open: backup
    ]  # fmt: skip
    down, _ = await run_test(failover, frames_to_send=frames)
    assert reply(down) == ["<start>", "Local answer.", "<end>", "<start>", *BACKUP, "<end>",
                           "<start>", "Local answer.", "<end>", "<start>", *BACKUP, "<end>"]  # fmt: skip
    assert primary.script.requests == 1
    assert [s[2] for s in failover.switches] == ["error 500", "primary breaker open"]


async def test_every_llm_failing_closes_the_response_and_reports_upstream():
    primary, backup = FakeLLM("primary", [error(500)]), FakeLLM("backup", [error(502)])
    failover = LLMFailover([primary, backup], first_token_s=0.3)
    down, up = await run_test(failover, frames_to_send=[turn(), SleepFrame(0.5)])
    assert reply(down) == ["<start>", "<end>"]
    assert any("every LLM failed" in f.error for f in up if isinstance(f, ErrorFrame))


async def test_functions_register_on_every_member_as_flows_needs():
    primary, backup, failover = chain([])

    async def handler(params) -> None: ...

    failover.register_function("book", handler)
    assert all("book" in llm._functions for llm in (primary, backup))


# -- early starts (a speculative context: the caller's interim words) ---------------------------


def early(text: str = "what time do you open") -> LLMContextFrame:
    return LLMContextFrame(LLMContext(messages=[{"role": "user", "content": text}]), speculation=True)


async def test_an_early_start_is_held_until_confirmed_and_a_long_hold_is_no_fault():
    primary, backup, failover = chain([answer("We open at nine.")])
    # Held for 0.5 s, longer than the 0.3 s first-token deadline: the LLM answered, its reply waits.
    frames = [UserStartedSpeakingFrame(), early(), SleepFrame(0.5), UserStoppedSpeakingFrame(), SleepFrame(0.3)]
    down, _ = await run_test(failover, frames_to_send=frames)
    assert reply(down) == ["<start>", "We open at nine.", "<end>"]
    stopped = next(i for i, f in enumerate(down) if isinstance(f, UserStoppedSpeakingFrame))
    assert stopped < next(i for i, f in enumerate(down) if isinstance(f, LLMFullResponseStartFrame))
    assert failover.switches == [] and primary.script.requests == 1 and backup.script.requests == 0


async def test_a_withdrawn_early_start_is_never_heard_and_the_turn_runs_again():
    primary, backup, failover = chain([answer("To the interim words.", first_delay=0.1), answer("To the final words.")])
    frames = [UserStartedSpeakingFrame(), early(), SleepFrame(0.2), EagerEndOfTurnCancelFrame(), UserStoppedSpeakingFrame(), turn("what time do you close"), SleepFrame(0.3)]  # fmt: skip
    down, _ = await run_test(failover, frames_to_send=frames)
    assert reply(down) == ["<start>", "To the final words.", "<end>"]
    assert failover.switches == [] and primary.script.requests == 2


async def test_a_fault_during_an_early_start_is_replayed_on_the_backup_once_confirmed():
    primary, backup, failover = chain([error(500)])
    frames = [UserStartedSpeakingFrame(), early(), SleepFrame(0.3), UserStoppedSpeakingFrame(), SleepFrame(0.3)]
    down, _ = await run_test(failover, frames_to_send=frames)
    assert reply(down) == ["<start>", *BACKUP, "<end>"]
    assert failover.switches == [("primary", "backup", "error 500")] and backup.script.requests == 1


async def test_a_fault_during_a_withdrawn_early_start_leaves_the_turn_to_the_backup():
    primary, backup, failover = chain([error(500)])
    frames = [UserStartedSpeakingFrame(), early(), SleepFrame(0.3), EagerEndOfTurnCancelFrame(), UserStoppedSpeakingFrame(), turn("and on sunday"), SleepFrame(0.3)]  # fmt: skip
    down, _ = await run_test(failover, frames_to_send=frames)
    assert reply(down) == ["<start>", *BACKUP, "<end>"] and backup.script.requests == 1


async def test_no_early_start_on_the_last_service():
    local = FakeLLM("local", default=answer("Local answer."))
    primary = FakeLLM("primary", default=answer("Primary answer."))
    failover = LLMFailover([primary, local], first_token_s=0.3, stall_s=0.3)
    frames = [ManuallySwitchServiceFrame(service=local), UserStartedSpeakingFrame(), early(), SleepFrame(0.2)]
    down, up = await run_test(failover, frames_to_send=frames)
    assert [f for f in up if isinstance(f, EagerEndOfTurnCancelFrame)]  # declined: the turn runs when final
    assert reply(down) == [] and local.script.requests == primary.script.requests == 0


async def test_every_llm_hears_the_turn_boundaries_so_an_early_start_after_a_local_turn_is_held():
    # The previous turn went to the local brain (the router's fast path); the primary, inactive
    # then, still learns that a new turn has started, so its gate holds the early reply.
    local = FakeLLM("local", default=answer("Local answer."))
    primary = FakeLLM("primary", default=answer("Primary answer."))
    failover = LLMFailover([primary, local], first_token_s=0.3, stall_s=0.3)
    frames = [
        UserStartedSpeakingFrame(), UserStoppedSpeakingFrame(), ManuallySwitchServiceFrame(service=local), turn(), SleepFrame(0.1),
        UserStartedSpeakingFrame(), ManuallySwitchServiceFrame(service=primary), early(), SleepFrame(0.2),
    ]  # fmt: skip
    down, _ = await run_test(failover, frames_to_send=frames)
    assert reply(down) == ["<start>", "Local answer.", "<end>"]  # the early reply still held

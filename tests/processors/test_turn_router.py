"""TurnRouter on frame sequences: a switch frame ahead of each caller turn whose brain changes."""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace

import pytest
from pipecat.frames.frames import LLMContextFrame, LLMUpdateSettingsFrame, ManuallySwitchServiceFrame
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.tests.utils import SleepFrame, run_test

from app.brain.service import LocalBrainService
from app.config.load import load_bot
from app.flows.session import CallSession
from app.store import Store
from processors.turn_router import Models, TurnRouter
from tests.conftest import ROOT


def context(*messages: dict) -> LLMContextFrame:
    return LLMContextFrame(LLMContext(messages=list(messages)))


def user(text: str) -> dict:
    return {"role": "user", "content": text}


@pytest.fixture
def session(tmp_path):
    """A call at the booking form, asked for the service."""
    bot = load_bot(ROOT / "bot.yaml")
    with Store(tmp_path / "db.sqlite") as store:
        session = CallSession(bot, store, call_id="c1", clock=lambda: datetime(2026, 11, 23, 10))
        session.flow_manager = SimpleNamespace(current_node="book", state={})
        session.enter_if_new()
        session.question("book")
        yield session


async def test_routes_each_caller_turn_and_keeps_follow_up_runs_on_the_same_brain(session):
    llm, fast = LocalBrainService(session), LocalBrainService(session)
    router = TurnRouter(session, llm=llm, fast=fast, mode="conservative")
    frames = [
        context(user("a haircut please")),  # simple: switch to the fast path
        context(user("a haircut please"), {"role": "tool", "tool_call_id": "x", "content": "{}"}),  # follow-up: stays
        context(user("my sister says the colorist is great but should I get highlights or a full color")),  # to the LLM
    ]
    down, _ = await run_test(
        router,
        frames_to_send=frames,
        expected_down_frames=[ManuallySwitchServiceFrame, LLMContextFrame, LLMContextFrame, ManuallySwitchServiceFrame, LLMContextFrame],
    )
    assert down[0].service is fast and down[3].service is llm
    assert [d.path for d in router.decisions] == ["fast", "llm"]
    assert session.counters["route:fast"] == 1 and session.counters["route:llm"] == 1
    assert session.counters["route:fast:value for 'service'"] == 1


async def test_a_light_model_is_set_ahead_of_simple_llm_turns_and_reset_for_the_others(session):
    llm, fast = LocalBrainService(session), LocalBrainService(session)
    router = TurnRouter(session, llm=llm, fast=fast, mode="conservative", models=Models("main-model", "light-model"))
    frames = [
        context(user("hmm let me think")),  # light: the model changes, the LLM stays active
        context(user("hmm let me think"), {"role": "tool", "tool_call_id": "x", "content": "{}"}),  # follow-up: as it was
        context(user("yes please")),  # light again: nothing to change
        context(user("a haircut please")),  # fast: the LLM keeps its model
        context(user("what do you recommend")),  # main: back to the LLM, on the main model
    ]
    down, _ = await run_test(
        router,
        frames_to_send=frames,
        expected_down_frames=[
            LLMUpdateSettingsFrame, LLMContextFrame, LLMContextFrame, LLMContextFrame,
            ManuallySwitchServiceFrame, LLMContextFrame,
            ManuallySwitchServiceFrame, LLMUpdateSettingsFrame, LLMContextFrame,
        ],
    )  # fmt: skip
    updates = [f for f in down if isinstance(f, LLMUpdateSettingsFrame)]
    assert [(u.delta.model, u.service) for u in updates] == [("light-model", llm), ("main-model", llm)]
    assert [d.path for d in router.decisions] == ["light", "light", "fast", "llm"]
    assert session.counters["route:light"] == 2 and session.counters["route:llm"] == 1
    assert session.counters["route:light:short answer the parser missed"] == 1
    assert session.counters["route:light:yes/no-ish reply"] == 1


async def test_an_early_start_is_routed_at_once_and_counted_only_when_its_turn_stands(session):
    """With `early_llm`, the LLM may start on the interim words (a speculative context). It is
    routed then, so the right brain starts, but counted as a turn only if the final transcript
    confirms it: a restart would otherwise count the caller's turn twice."""
    from pipecat.frames.frames import EagerEndOfTurnCancelFrame, UserStoppedSpeakingFrame

    llm, fast = LocalBrainService(session), LocalBrainService(session)
    router = TurnRouter(session, llm=llm, fast=fast, mode="conservative")
    question = "should I get highlights or a full color with my haircut"

    def early(text: str) -> LLMContextFrame:
        return LLMContextFrame(LLMContext(messages=[user(text)]), speculation=True)

    # The turn's end comes a while after the early start (the silence wait): SleepFrames keep the
    # system frames from overtaking the contexts, as in a call.
    frames = [
        early(question), SleepFrame(0.05), UserStoppedSpeakingFrame(),  # confirmed: one turn
        early("what about"), SleepFrame(0.05), EagerEndOfTurnCancelFrame(), UserStoppedSpeakingFrame(),
        context(user(question)),  # restarted on the final words: one turn
    ]  # fmt: skip
    down, _ = await run_test(router, frames_to_send=frames)
    assert [type(f).__name__ for f in down if isinstance(f, LLMContextFrame)] == ["LLMContextFrame"] * 3
    assert [d.path for d in router.decisions] == ["llm", "llm"]
    assert session.counters["route:llm"] == 2

"""The turn router's decisions: which caller turns the local brain takes, per mode."""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace

import pytest

from app.brain.route import Route, route
from app.config.load import load_bot
from app.flows.session import CallSession
from app.store import Store
from tests.conftest import ROOT


@pytest.fixture
def session(tmp_path):
    bot = load_bot(ROOT / "bot.yaml")
    with Store(tmp_path / "db.sqlite") as store:
        yield CallSession(bot, store, call_id="c1", clock=lambda: datetime(2026, 11, 23, 10))


def at(session: CallSession, node: str) -> CallSession:
    """The session as the brain leaves it after asking the node's current question."""
    session.flow_manager = SimpleNamespace(current_node=node, state={})
    session.enter_if_new()
    session.question(node)
    return session


@pytest.mark.parametrize(
    ("node", "utterance", "reason"),
    [
        ("greeting", "I'd like to book an appointment", "intent phrase"),
        ("book", "a haircut please", "value for 'service'"),
        ("book", "", "nothing heard"),
        ("book", "can you repeat that", "global intent"),
        ("book", "what are your opening hours", "faq"),
        ("greeting", "hello", "greeting"),
        ("book", "thank you", "thanks"),
    ],
)
def test_simple_turns_take_the_fast_path(session, node, utterance, reason):
    decision = route(at(session, node), utterance, "conservative")
    assert (decision.fast, decision.reason) == (True, reason)


@pytest.mark.parametrize(
    ("node", "utterance"),
    [
        ("book", "my sister said your colorist is great but I'm not sure whether I want the full color or just highlights"),
        ("greeting", "do you do wedding updos for a party of five on a sunday"),
        ("book", "hmm let me think"),
    ],
)
def test_other_turns_go_to_the_llm(session, node, utterance):
    decision = route(at(session, node), utterance, "conservative")
    assert decision.fast is False and decision.reason == "no confident local answer"


def test_modes_differ_on_values_given_out_of_order(session):
    utterance = "Wednesday at two thirty"  # asked for the service, told the day and time
    assert route(at(session, "book"), utterance, "conservative").fast is False
    assert route(session, utterance, "aggressive") == route(session, utterance, "aggressive")
    assert route(session, utterance, "aggressive").reason == "slot values"


def test_off_sends_everything_to_the_llm(session):
    assert route(at(session, "book"), "a haircut please", "off").fast is False


def test_yes_to_a_read_back_is_fast(session):
    at(session, "book").progress["book"].awaiting_confirm = True
    assert route(session, "yes", "conservative").reason == "yes/no to read-back"
    assert route(session, "yes that's right but move it to Thursday", "conservative").fast is False


def test_routing_changes_nothing_in_the_session(session):
    at(session, "book")
    before = (dict(session.values), {k: vars(v).copy() for k, v in session.progress.items()}, list(session.pending), dict(session.counters))
    for utterance in ["a haircut please", "Wednesday at two", "yes", "", "hours?"]:
        route(session, utterance, "aggressive")
    after = (dict(session.values), {k: vars(v).copy() for k, v in session.progress.items()}, list(session.pending), dict(session.counters))
    assert after == before


@pytest.fixture
def checkout(tmp_path):
    """A pizza order call at the checkout form."""
    text = (ROOT / "bot.yaml").read_text().replace("flow: flows/scheduling.yaml", f"flow: {ROOT / 'flows/ordering.yaml'}")
    (tmp_path / "bot.yaml").write_text(text)
    with Store(tmp_path / "db.sqlite") as store:
        yield at(CallSession(load_bot(tmp_path / "bot.yaml"), store, call_id="c2", clock=lambda: datetime(2026, 11, 23, 10)), "checkout")


def test_an_order_change_at_the_checkout_is_fast_only_when_aggressive(checkout):
    assert route(checkout, "actually add a sprite", "aggressive") == Route(True, "order edit")
    assert not route(checkout, "actually add a sprite", "conservative").fast


@pytest.mark.parametrize(
    ("node", "utterance", "path", "reason"),
    [
        ("book", "hmm let me think", "light", "short answer the parser missed"),
        ("book", "this Saturday", "light", "one slot value"),  # asked for the service
        ("book", "yes please", "light", "yes/no-ish reply"),
        ("book", "hi there how are you", "light", "small talk"),
        ("greeting", "good morning how are you doing today", "light", "small talk"),
        ("greeting", "yes please", "light", "yes/no-ish reply"),
        ("book", "Thursday at three with Ann", "llm", "several slot values"),
        ("book", "what do you recommend", "llm", "question"),
        ("book", "do you do perms", "llm", "question"),
        ("book", "hi, what do you charge for a perm", "llm", "question"),
        ("book", "hmm I'm not sure what I want, what would you recommend for thin hair", "llm", "long turn"),
        ("greeting", "my hair is a mess", "llm", "not understood"),
        # what the local brain takes stays on the fast path
        ("book", "a haircut please", "fast", "value for 'service'"),
        ("book", "what are your opening hours", "fast", "faq"),
        ("greeting", "hello", "fast", "greeting"),
    ],
)
def test_light_model_takes_the_simple_llm_turns(session, node, utterance, path, reason):
    decision = route(at(session, node), utterance, "conservative", light=True)
    assert (decision.path, decision.reason) == (path, reason)


@pytest.mark.parametrize(
    ("utterance", "path", "reason"),
    [
        ("yes that all sounds right to me", "light", "yes/no-ish reply"),
        ("no the name is Ann Lee", "light", "one-slot correction"),
        ("hold on a second", "light", "short answer the parser missed"),
        ("move it to Thursday at three", "llm", "several slot values"),
        ("wait what time was that", "llm", "question"),
        ("yes", "fast", "yes/no to read-back"),
    ],
)
def test_light_model_at_the_read_back(session, utterance, path, reason):
    at(session, "book").progress["book"].awaiting_confirm = True
    decision = route(session, utterance, "conservative", light=True)
    assert (decision.path, decision.reason) == (path, reason)


@pytest.mark.parametrize("mode", ["conservative", "aggressive"])
def test_light_changes_only_the_llm_turns(session, mode):
    at(session, "book")
    for utterance in ["a haircut please", "Wednesday at two", "yes", "", "hours?", "hmm let me think", "what do you recommend"]:
        plain, weighed = route(session, utterance, mode), route(session, utterance, mode, light=True)
        if plain.fast:
            assert weighed == plain
        else:
            assert plain.reason == "no confident local answer" and not weighed.fast
    assert route(session, "hmm let me think", "off", light=True) == Route(False, "routing off")


def test_an_order_change_at_the_checkout_goes_to_the_main_model(checkout):
    assert route(checkout, "actually add a sprite", "conservative", light=True) == Route(False, "order change")
    assert route(checkout, "yes", "conservative", light=True) == Route(False, "yes/no-ish reply", light=True)

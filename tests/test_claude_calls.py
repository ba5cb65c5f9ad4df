"""Whole calls with Claude in the brain chain, on the Anthropic stand-in (Pipecat's real
AnthropicLLMService and the real SDK over loopback), answering as the local brain would.

The turn router must send most scheduling turns to the local brain and still end with the same
booking as with routing off; a Claude that fails in any way must hand its turns to the local brain
with the caller hearing each answer once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest

from app.chat import run_chat
from app.config.load import load_bot
from app.providers.brain import VOICE_RULES
from app.pipeline import CallAssembly
from app.standins.anthropic import API_KEY, AnthropicStandIn, Reply, local_brain_responder
from app.standins.fault import Fault
from app.store import Store
from processors.llm_failover import NOTICE
from tests.conftest import ROOT

NOW = datetime(2026, 11, 23, 10)  # a Monday
STEPS = ["I'd like to book an appointment", "a haircut", "this Saturday", "eleven", "Tom Baker", "555 222 3333", "yes"]
BOOKING = {"type": "booking", "name": "Tom Baker", "service": "haircut", "date": "2026-11-28", "time": "11:00", "phone": "5552223333"}
GREETING = "Thanks for calling Shear Delight. Would you like to book, reschedule or cancel an appointment?"
MAIN, LIGHT = "claude-sonnet-4-6", "claude-haiku-4-5"


async def said(turns: list[str]) -> AsyncIterator[str]:
    for turn in turns:
        yield turn


def bot_yaml(tmp_path: Path, routing: str, light_model: str | None = None) -> Path:
    text = (ROOT / "bot.yaml").read_text().replace("flow: flows/scheduling.yaml", f"flow: {ROOT / 'flows/scheduling.yaml'}")
    if light_model:
        text = text.replace(f"model: {MAIN}", f"model: {MAIN}\n    light_model: {light_model}")
    path = tmp_path / f"bot-{routing}{'-light' if light_model else ''}.yaml"
    path.write_text(text + f"\nrouting: {routing}\nfailover:\n  backoff_s: 60\n")
    return path


async def call_claude(tmp_path: Path, claude: AnthropicStandIn, routing: str, turns: list[str] = STEPS, light_model: str | None = None):
    """One chat call with Claude first in the chain; returns (result, bot lines, stored booking)."""
    holder: list[CallAssembly] = []
    claude.responder = local_brain_responder(lambda: holder[0].session, lambda: holder[0].context.get_messages())
    bot = load_bot(bot_yaml(tmp_path, routing, light_model))
    with Store(tmp_path / f"{routing}{'-light' if light_model else ''}.db") as store:
        result = await run_chat(bot, store, said(turns), now=NOW, on_ready=holder.append)
        bookings = store.list_bookings()
    return result, [t["text"] for t in result.transcript if t["role"] == "bot"], bookings


@pytest.fixture
def claude_env(monkeypatch):
    """Starts a stand-in Claude and points ANTHROPIC_API_KEY / ANTHROPIC_BASE_URL at it."""

    async def start(**kwargs) -> AnthropicStandIn:
        claude = AnthropicStandIn(**kwargs)
        await claude.start()
        monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)
        monkeypatch.setenv("ANTHROPIC_BASE_URL", claude.base_url)
        return claude

    return start


async def test_routing_sends_most_turns_to_the_local_brain_and_books_the_same(tmp_path, claude_env):
    claude = await claude_env()
    try:
        off, off_lines, off_bookings = await call_claude(tmp_path, claude, "off")
        off_requests = len(claude.script.requests)
        claude.script.requests.clear()
        on, on_lines, on_bookings = await call_claude(tmp_path, claude, "conservative")
        on_requests = len(claude.script.requests)
    finally:
        await claude.stop()
    assert off.outcome == on.outcome == BOOKING
    assert len(off_bookings) == len(on_bookings) == 1
    assert off_lines == on_lines  # the caller cannot tell the difference
    # Every caller turn and every function result went to Claude with routing off...
    assert off.counters.get("route:fast", 0) == 0 and off_requests >= len(STEPS)
    # ...with routing on, most caller turns skip it.
    assert on.counters["route:fast"] > len(STEPS) / 2
    assert on.counters["route:fast"] > on.counters.get("route:llm", 0)
    assert on_requests < off_requests / 2


# Small talk and a wordy yes go to the light model, values for two slots at once to the main one.
MIXED = ["hi there how are you", "I'd like to book an appointment", "Saturday at eleven", "a haircut", "Tom Baker", "555 222 3333", "yes that all sounds right to me"]  # fmt: skip


def blocks(message: dict) -> list[dict]:
    """A wire message's content as content blocks (a plain string is one text block)."""
    content = message["content"]
    return content if isinstance(content, list) else [{"type": "text", "text": content}]


def caller_text(body: dict) -> str | None:
    """The caller turn a request answers: the last caller line in its messages (None: the opening)."""
    for message in reversed(body.get("messages") or []):
        said = [b["text"] for b in blocks(message) if message["role"] == "user" and b.get("type") == "text" and b["text"] in MIXED]
        if said:
            return said[-1]
    return None


async def test_light_model_answers_the_simple_llm_turns_and_books_the_same(tmp_path, claude_env):
    claude = await claude_env()
    try:
        plain, plain_lines, plain_bookings = await call_claude(tmp_path, claude, "conservative", MIXED)
        plain_models = {r["model"] for r in claude.script.requests}
        claude.script.requests.clear()
        light, light_lines, light_bookings = await call_claude(tmp_path, claude, "conservative", MIXED, light_model=LIGHT)
        asked: dict[str | None, set[str]] = {}
        for request in claude.script.requests:
            asked.setdefault(caller_text(request), set()).add(request["model"])
    finally:
        await claude.stop()
    assert plain.outcome == light.outcome == BOOKING and len(plain_bookings) == len(light_bookings) == 1
    assert plain_lines == light_lines
    assert plain_models == {MAIN} and plain.counters["route:llm"] == 3 and "route:light" not in plain.counters
    # Each turn's requests (its follow-up runs too) named one model; the opening line the main one.
    assert asked == {None: {MAIN}, MIXED[0]: {LIGHT}, MIXED[2]: {MAIN}, MIXED[-1]: {LIGHT}}
    assert (light.counters["route:fast"], light.counters["route:light"], light.counters["route:llm"]) == (4, 2, 1)
    assert light.counters["route:light:small talk"] == light.counters["route:light:yes/no-ish reply"] == 1


@pytest.mark.parametrize(
    "fault",
    [Fault("refuse"), Fault("fail", status=500), Fault("fail", status=529), Fault("fail", status=429), Fault("hang"), Fault("stall", after=2)],
    ids=["401", "500", "529", "429", "hang", "stall"],
)
async def test_a_failing_claude_hands_the_call_to_the_local_brain(tmp_path, claude_env, fault):
    claude = await claude_env()
    claude.script.set(default=fault)
    try:
        result, lines, bookings = await call_claude(tmp_path, claude, "off")
    finally:
        await claude.stop()
    assert result.outcome == BOOKING and len(bookings) == 1
    if fault.kind == "stall":  # words were already out: that reply is closed, the caller told, the answer whole
        assert lines[:2] == ["Thanks for calling Shear Delight. Would", NOTICE + GREETING]
        lines = lines[1:]
    else:
        assert lines[0] == GREETING  # heard once, from the backup
    assert len(lines) == len(STEPS) + 1  # one answer per caller turn: nothing repeated, nothing lost
    assert result.counters["failover:llm"] >= 1
    assert len(claude.script.requests) == 1  # the breaker keeps the failed provider out after that


CHATTY = (
    "**Welcome to Shear Delight!** We've been cutting hair on Main St. since 1998 🙂\n\n"
    "## Our services\n1. Haircut: $40\n2. Color: from $80\n\n"
    "See https://example.com/prices for more. Dr. J. Smith founded it. She still works Saturdays. "
    + "And there is much more to say. " * 40
)


async def test_claude_reply_is_cleaned_and_cut_before_the_caller_hears_it(tmp_path, claude_env):
    claude = await claude_env(words_per_chunk=1, chunk_gap_s=0.005)
    holder: list[CallAssembly] = []
    brain = local_brain_responder(lambda: holder[0].session, lambda: holder[0].context.get_messages())

    def responder(body: dict):
        asked = holder[0].context.get_messages()[-1]
        return Reply(text=CHATTY) if asked.get("content") == "tell me about the salon" else brain(body)

    claude.responder = responder
    bot = load_bot(bot_yaml(tmp_path, "off"))
    with Store(tmp_path / "db.sqlite") as store:
        try:
            result = await run_chat(bot, store, said(["tell me about the salon"]), now=NOW, on_ready=holder.append)
        finally:
            await claude.stop()
    lines = [t["text"] for t in result.transcript if t["role"] == "bot"]
    assert lines[1] == (
        "Welcome to Shear Delight! We've been cutting hair on Main St. since 1998. Our services: Haircut: $40 and Color: from $80."
    )
    spoken = holder[0].context.get_messages()[-1]
    assert spoken["role"] == "assistant" and spoken["content"] == lines[1]  # the context keeps only what was said
    assert result.counters["guard:cut"] == 1 and result.counters["guard:markdown"] >= 1


def texts_of(body: dict) -> str:
    """All the text of a request's messages, whatever their role."""
    return "\n".join(b.get("text", "") for message in body.get("messages") or [] for b in blocks(message) if isinstance(b, dict))


async def test_the_first_nodes_instructions_reach_claude_after_the_greeting(tmp_path, claude_env):
    """The flow's node instructions go in the context as developer messages: an initial *system*
    message in the context is dropped by Pipecat's Anthropic adapter once there is more than one
    message (the service's system instruction, the persona and voice rules, takes its place), so
    Claude answered the caller's first turn without the first node's instructions."""
    claude = await claude_env()
    try:
        await call_claude(tmp_path, claude, "off", STEPS[:1])
    finally:
        await claude.stop()
    opening, first_turn = claude.script.requests[0], claude.script.requests[1]
    assert "I'd like to book an appointment" in texts_of(first_turn)
    for body in (opening, first_turn):
        assert f"Say this to the caller, briefly and in your own words: {GREETING}" in texts_of(body)
        assert "phone call" in str(body["system"])  # the persona and voice rules, as the system prompt


async def test_claudes_system_prompt_is_the_persona_and_voice_rules_alone(tmp_path, claude_env):
    """Flows registers node functions as never cancelled by a barge-in, which Pipecat reads as
    async tools and explains at length in the system prompt; a flow's results never come late."""
    claude = await claude_env()
    try:
        await call_claude(tmp_path, claude, "off", STEPS[:3])
    finally:
        await claude.stop()
    bot = load_bot(bot_yaml(tmp_path, "off"))
    rules = VOICE_RULES.format(n=bot.config.voice.max_sentences)
    prompts = {" ".join(block["text"] for block in blocks({"content": body["system"]})) for body in claude.script.requests}
    assert prompts == {f"{bot.config.persona}\n\n{rules}"}
    assert len(claude.script.requests) >= 5  # the greeting's, then a function call and its text per turn

"""Early LLM start on voice calls: Deepgram, Claude and Cartesia on their stand-ins (Pipecat's real
services over loopback), the caller's interim transcript ahead of the final one.

With `turn: early_llm: true` the Claude request for a turn starts at the caller's VAD stop, on the
interim words; the final transcript confirms it (the reply is released, heard once) or restarts it
(the speculative request is cancelled, the answer is to the final words, the context holds only
them, and no function call ran from the speculation). With the switch off nothing starts before
the final transcript."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.config.load import load_bot
from app.simulate.caller import CallerTurn
from app.simulate.run import Simulation, SimulationResult
from app.standins import cartesia as cartesia_standin
from app.standins.anthropic import API_KEY, AnthropicStandIn, Received, local_brain_responder
from app.standins.cartesia import CartesiaStandIn, ToneSynthesizer
from app.standins.deepgram import DeepgramStandIn, ScriptedTranscriber
from app.standins.fault import Fault
from app.store import Store
from tests import test_voice_failover as voice
from tests.conftest import ROOT

HOURS = "What are your opening hours"
HOURS_ANSWER = "We're open Tuesday to Saturday, from nine in the morning to six in the evening."
BOOK = voice.BOOK  # the brain answers it with a function call (service, day and time for the booking)
FINAL_LATENCY_S = 1.0  # Deepgram's final this long after the VAD stop: the early start is well ahead


class InterimTranscriber(ScriptedTranscriber):
    """Finals from `finals`, one per utterance; every interim of utterance i says `interims[i]`."""

    def __init__(self, finals: list[str], interims: list[str]):
        super().__init__(finals)
        self.interims = list(interims)

    def interim(self, audio: bytes, sample_rate: int) -> str:
        with self._lock:
            done = len(self.heard)
        return self.interims[done] if done < len(self.interims) else ""


def bot_file(tmp_path: Path, deepgram: str, claude: str, cartesia: str, early_llm: bool) -> Path:
    """bot.yaml on the three stand-ins; every caller turn goes to Claude (`routing: off`); turns end
    on silence; Deepgram's final and Claude's first token may take 3 s before they count as failed."""
    text = (ROOT / "bot.yaml").read_text().replace("flow: flows/scheduling.yaml", f"flow: {ROOT / 'flows/scheduling.yaml'}")
    assert voice.STT_BLOCK in text and voice.TTS_BLOCK in text and voice.CLAUDE_LINE in text
    text = text.replace(voice.CLAUDE_LINE, f"{voice.CLAUDE_LINE}    base_url: {claude}\n")
    text = text.replace(voice.STT_BLOCK, f"stt:\n  - provider: deepgram\n    base_url: {deepgram}\n  - provider: whisper\n")
    text = text.replace(voice.TTS_BLOCK, f"tts:\n  - provider: cartesia\n    base_url: {cartesia}\n  - provider: piper\n")
    path = tmp_path / "bot.yaml"
    path.write_text(
        text + f"\nrouting: off\nturn:\n  detector: silence\n  early_llm: {str(early_llm).lower()}\n"
        "failover:\n  backoff_s: 60\n  stt_final_ms: 3000\n  llm_first_token_ms: 3000\n"
    )
    return path


@dataclass
class Call:
    result: SimulationResult
    simulation: Simulation
    requests: list[Received]  # Claude's, the greeting's excluded (it opens the call)

    @property
    def lines(self) -> list[str]:
        return [t["text"] for t in self.result.chat.transcript if t["role"] == "bot"]

    @property
    def finals_at(self) -> list[float]:
        """When each final transcript left the STT (monotonic)."""
        return [at for at, text in self.simulation.timeline.transcripts if text.strip()]

    @property
    def caller_said(self) -> list[str]:
        """The caller's words the context holds."""
        return [m["content"] for m in self.result.context if m.get("role") == "user" and isinstance(m.get("content"), str)]


@pytest.fixture
async def standins(monkeypatch) -> AsyncIterator[tuple[DeepgramStandIn, AnthropicStandIn, CartesiaStandIn]]:
    monkeypatch.setenv("DEEPGRAM_API_KEY", voice.DEEPGRAM_KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)
    monkeypatch.setenv("CARTESIA_API_KEY", cartesia_standin.API_KEY)
    async with (
        DeepgramStandIn(api_key=voice.DEEPGRAM_KEY, final_latency_s=FINAL_LATENCY_S) as deepgram,
        AnthropicStandIn() as claude,
        CartesiaStandIn(synthesizer=ToneSynthesizer(seconds_per_char=0.02)) as cartesia,
    ):
        yield deepgram, claude, cartesia


async def place_call(tmp_path: Path, standins, *, said: str, final: str, interim: str, early_llm: bool = True, llm_latency_s: float = 0.0) -> Call:
    """One call: after the greeting the caller says `said` (its audio), Deepgram's interims say
    `interim` and its final `final`; Claude answers as the local brain would, after `llm_latency_s`."""
    deepgram, claude, cartesia = standins
    deepgram.transcriber = InterimTranscriber([final], [interim])
    bot = load_bot(bot_file(tmp_path, deepgram.base_url, claude.base_url, cartesia.url, early_llm))
    with Store(tmp_path / "calls.db") as store:
        simulation = Simulation(bot, store, now=voice.NOW)
        claude.responder = local_brain_responder(lambda: simulation.call.session, lambda: simulation.call.context.get_messages())
        claude.script.set(default=Fault(latency_s=llm_latency_s), faults=[Fault()])  # the greeting at once
        result = await simulation.run([CallerTurn(say=said)])
    await asyncio.sleep(0)
    return Call(result, simulation, claude.received[1:])


def function_calls(request: Received) -> list[str]:
    """The tools called in the request's messages (what ran before it was made)."""
    return [b["name"] for m in request.body["messages"] if isinstance(m["content"], list) for b in m["content"] if b.get("type") == "tool_use"]


async def test_an_interim_the_final_confirms_starts_claude_before_the_final_and_is_heard_once(tmp_path, standins):
    call = await place_call(tmp_path, standins, said=HOURS, final=HOURS + ".", interim=HOURS.lower())
    [final_at] = call.finals_at
    [request] = call.requests  # one request for the turn: the early one, confirmed
    assert request.at < final_at - 0.5 and not request.cancelled
    assert call.lines.count(HOURS_ANSWER) == 1 and call.lines[1].startswith(HOURS_ANSWER)
    _, claude, cartesia = standins
    assert [" ".join(t.strip() for t in c.transcripts if t.strip()) for c in cartesia.contexts] == call.lines  # each once
    assert call.caller_said == [HOURS + "."]  # the final words, as Deepgram sent them
    counters = call.result.chat.counters
    assert [counters.get(f"early_llm:{e}", 0) for e in ("started", "confirmed", "restarted")] == [1, 1, 0]


async def test_with_the_switch_off_claude_starts_only_after_the_final(tmp_path, standins):
    call = await place_call(tmp_path, standins, said=HOURS, final=HOURS + ".", interim=HOURS.lower(), early_llm=False)
    [final_at] = call.finals_at
    [request] = call.requests
    assert request.at > final_at
    assert call.lines.count(HOURS_ANSWER) == 1
    assert not [k for k in call.result.chat.counters if k.startswith("early_llm")]


async def test_an_interim_the_final_contradicts_is_cancelled_and_the_final_words_answered(tmp_path, standins):
    # Claude takes 1.6 s: the early request (on the wrong words) is still in flight when the final
    # transcript says otherwise, 1 s after the VAD stop.
    call = await place_call(tmp_path, standins, said=HOURS, final=HOURS, interim=BOOK, llm_latency_s=1.6)
    [final_at] = call.finals_at
    early, answer = call.requests
    assert early.at < final_at and early.cancelled and early.answered_at is None
    assert answer.at > final_at and not answer.cancelled
    assert call.lines[1].startswith(HOURS_ANSWER)
    assert call.caller_said == [HOURS] and not any(BOOK in str(m.get("content")) for m in call.result.context)
    assert call.result.chat.node == "greeting" and not call.result.chat.slots.get("service")


async def test_a_function_call_the_early_start_asks_for_never_runs_when_the_final_differs(tmp_path, standins):
    # Claude answers at once: the early reply (to the wrong words) is a function call, reached long
    # before the final transcript. Pipecat withdraws it instead of running it.
    call = await place_call(tmp_path, standins, said=HOURS, final=HOURS, interim=BOOK)
    [final_at] = call.finals_at
    early, answer = call.requests
    assert early.at < final_at and early.reply.tool_calls  # it asked for a function...
    assert answer.at > final_at and not function_calls(answer)  # ...that never ran
    assert call.lines[1].startswith(HOURS_ANSWER)
    assert call.caller_said == [HOURS] and call.result.chat.node == "greeting"


async def test_a_confirmed_early_start_runs_its_function_call_once_the_final_confirms_it(tmp_path, standins):
    call = await place_call(tmp_path, standins, said=BOOK, final=BOOK, interim=BOOK)
    [final_at] = call.finals_at
    early, *after = call.requests
    assert early.at < final_at and [c.name for c in early.reply.tool_calls] == ["book_appointment"]
    # The early reply's function call waited for the final words, then ran: the next request (the
    # function's result) comes after them, and each function of the turn ran once.
    assert after[0].at > final_at and function_calls(after[0]) == ["book_appointment"]
    assert function_calls(after[-1]) == ["book_appointment", "fill_book"] and len(after) == 2
    assert call.lines[1:] == [voice.ASK_NAME]
    assert call.caller_said == [BOOK]

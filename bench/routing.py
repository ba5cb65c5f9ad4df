"""Turn routing: what sending simple caller turns to the local brain saves against Claude.

Scripted text calls of both shipped flows (the step-by-step conversations of tests/test_chat.py
and bench/voice_latency.py, the same calls in the same order on a fresh database per mode) run
through `run_chat` with Claude first in the brain chain, played by the Anthropic stand-in at a
published-like latency (first byte after 0.3 s, three words every 20 ms) and answering as the
local brain would. For routing off / conservative / aggressive, and conservative with a
`light_model` (`conservative+light`):

- the share of caller turns on the fast path and, with a light model, on the light model (the
  call's `route:fast` / `route:light` / `route:llm` counters); Claude requests by the model they
  named. The stand-in answers every model alike, at the same latency: the light path's time here
  says nothing of a lighter model's speed, only its share and the outcome count;
- Claude requests per call (the stand-in's request log; the call's opening line is no caller turn
  and goes to Claude in every mode, so one request per call is the floor);
- per caller turn, the time from queuing the caller's text to the bot's first text out (the first
  LLMTextFrame or TTSSpeakFrame the transcript sees, what TTS would start on) and to its first
  whole line (`on_bot`): p50/p95, and what each mode saves against routing off (p50 difference
  and ratio). About 0.5 s of it is the chat path closing the turn (Pipecat's
  ExternalUserTurnStopStrategy waits its timeout for late transcripts), the same in every mode, so
  `brain_first_text_ms` (from the user aggregator's context to the first text) is reported too;
- whether each call ends as it does with routing off (outcome and final node; bot lines too):
  mismatches are listed, not hidden.

Then the cost of one routing decision: `route(session, utterance, mode)` timed over realistic
utterances at the nodes they are said at (target: median <= 1 ms), and the decision time the
routers measured inside the calls.

    .venv/bin/python bench/routing.py     # writes bench/results/routing.json, prints a table
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

from loguru import logger

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.simulate.stats import pct  # noqa: E402

from pipecat.frames.frames import LLMContextFrame, LLMTextFrame, TranscriptionFrame, TTSSpeakFrame  # noqa: E402

from app.brain.route import route  # noqa: E402
from app.chat import run_chat  # noqa: E402
from app.config.load import load_bot  # noqa: E402
from app.flows.session import CallSession  # noqa: E402
from app.pipeline import CallAssembly  # noqa: E402
from app.standins.anthropic import API_KEY, AnthropicStandIn, local_brain_responder  # noqa: E402
from app.standins.fault import Fault, Script  # noqa: E402
from app.store import Store  # noqa: E402
from processors.turn_router import TurnRouter  # noqa: E402

NOW = datetime(2026, 11, 23, 10)  # a Monday
MODES = ("off", "conservative", "aggressive", "conservative+light")  # <routing>[+light]: with a light_model
MAIN_MODEL, LIGHT_MODEL = "claude-sonnet-4-6", "claude-haiku-4-5"
FIRST_BYTE_S, WORDS_PER_CHUNK, CHUNK_GAP_S = 0.3, 3, 0.02
FLOWS = {"scheduling": "flows/scheduling.yaml", "ordering": "flows/ordering.yaml"}
# Played in this order on one database per (flow, mode): later calls find what earlier ones stored.
CALLS = {
    "scheduling": {
        "book_step_by_step": ["I'd like to book an appointment", "a haircut", "this Saturday", "eleven", "Tom Baker", "555 222 3333", "yes"],
        "invalid_values_and_correction": [
            "I'd like to make an appointment", "a haircut please", "Sunday", "Wednesday", "seven in the evening", "two thirty",
            "Jane Doe", "555 123", "five five five one two three four five six seven", "actually make it Thursday", "yes",
        ],
        # The first call's haircut holds 11:00-11:45 on Saturday: 10:15 and 11:45 are offered.
        "taken_time": ["I want a haircut on Saturday at 11am", "11:45", "Ann Lee", "555 999 8888", "yes"],
        "repeat_and_start_over": ["book a haircut", "can you repeat that", "start over", "cancel"],
        # Small talk and a wordy yes (light model), a day and time at once (main model).
        "small_talk_and_hedges": [
            "hi there how are you", "I'd like to book an appointment", "Friday at ten", "a blowout", "Lee Park", "555 444 1212",
            "yes that all sounds right to me",
        ],
    },
    "ordering": {
        "cart_edits_delivery": [
            "two large pepperonis and a coke", "and a medium margherita with extra mushrooms", "actually remove the coke",
            "make the margherita a large", "that's all", "delivery please", "12 Oak Street", "Ann Lee", "555 321 7654", "yes",
        ],
        "missing_size_pickup": ["a veggie pizza and garlic bread", "small", "nothing else", "I'll pick it up", "Bo Chen", "555 000 1234", "yes"],
        "edits_by_reference": ["a pepperoni pizza", "make it a large", "that's it", "pickup", "Max Roe", "555 222 1111", "actually add a sprite", "yes"],
    },
}  # fmt: skip
# Realistic utterances for the decision-cost run: (flow, node, utterances said there).
DECISIONS = [
    ("scheduling", "greeting", [
        "I'd like to book an appointment", "I need to reschedule", "cancel my appointment", "hi there", "what are your hours",
        "hello, can I book a beard trim this Saturday at eleven? I'm Tom Baker, 555 222 3333", "thanks",
        "my sister says the colorist is great but should I get highlights or a full color",
    ]),
    ("scheduling", "book", [
        "a haircut please", "this Saturday", "eleven", "Tom Baker", "555 222 3333", "five five five one two three four five six seven",
        "book a beard trim this Saturday at eleven, I'm Tom Baker, 555 222 3333", "can you repeat that", "a person please",
        "how much is a blowout", "hmm I'm not sure what I want, what would you recommend for thin hair",
    ]),
    ("ordering", "order", [
        "two large pepperonis and a coke", "and a medium margherita with extra mushrooms", "actually remove the coke",
        "make the margherita a large", "that's all", "large", "what's on the veggie pizza", "do you have gluten free crust",
    ]),
    ("ordering", "checkout", ["delivery please", "I'll pick it up", "12 Oak Street", "Ann Lee", "555 321 7654", "yes", "actually add a sprite"]),
]  # fmt: skip
DECISION_REPEATS = 200


def split_mode(mode: str) -> tuple[str, bool]:
    """`conservative+light` -> ("conservative", True): the routing mode, and whether a light model is set."""
    routing, _, light = mode.partition("+")
    return routing, light == "light"


def bot_file(directory: Path, flow: str, mode: str) -> Path:
    routing, light = split_mode(mode)
    text = (ROOT / "bot.yaml").read_text().replace("flow: flows/scheduling.yaml", f"flow: {ROOT / FLOWS[flow]}")
    if light:
        text = text.replace(f"model: {MAIN_MODEL}", f"model: {MAIN_MODEL}\n    light_model: {LIGHT_MODEL}")
    path = directory / f"bot-{flow}-{mode}.yaml"
    path.write_text(text + f"\nrouting: {routing}\nfailover:\n  backoff_s: 60\n")
    return path


def stats(values: list[float]) -> dict:
    return {"p50": pct(values, 50), "p95": pct(values, 95), "n": len(values)}


def find_router(processor) -> TurnRouter | None:
    if isinstance(processor, TurnRouter):
        return processor
    for child in getattr(processor, "processors", None) or []:
        found = find_router(child)
        if found is not None:
            return found
    return None


class TurnClock:
    """Per caller turn: when its text was queued, when the user aggregator closed the turn (its
    context out), the bot's first text frame and first whole line."""

    def __init__(self) -> None:
        self.turns: list[dict] = []
        self._current: dict | None = None

    def attach(self, call: CallAssembly) -> None:
        queue_frames, observe = call.worker.queue_frames, call.transcript._observe
        user = call.aggregators.user()
        push_frame = user.push_frame

        async def queued(frames, *args, **kwargs):
            if any(isinstance(f, TranscriptionFrame) for f in frames):
                self._current = {"queued": time.perf_counter(), "context": None, "text": None, "line": None, "bot": []}
                self.turns.append(self._current)
            return await queue_frames(frames, *args, **kwargs)

        def seen(frame) -> None:
            turn = self._current
            if turn is not None and turn["text"] is None:
                if isinstance(frame, (LLMTextFrame, TTSSpeakFrame)) and frame.text.strip():
                    turn["text"] = time.perf_counter()
            observe(frame)

        async def pushed(frame, *args, **kwargs):
            turn = self._current
            if turn is not None and turn["context"] is None and isinstance(frame, LLMContextFrame):
                turn["context"] = time.perf_counter()
            return await push_frame(frame, *args, **kwargs)

        call.worker.queue_frames = queued
        user.push_frame = pushed
        call.transcript._observe = seen

    def on_bot(self, line: str) -> None:
        if self._current is not None:
            if self._current["line"] is None:
                self._current["line"] = time.perf_counter()
            self._current["bot"].append(line)


async def said(turns: list[str]) -> AsyncIterator[str]:
    for turn in turns:
        yield turn


async def one_call(claude: AnthropicStandIn, bot, store: Store, turns: list[str]) -> dict:
    holder: list[CallAssembly] = []
    clock = TurnClock()
    claude.responder = local_brain_responder(lambda: holder[0].session, lambda: holder[0].context.get_messages())
    claude.script.requests.clear()

    def ready(call: CallAssembly) -> None:
        holder.append(call)
        clock.attach(call)

    started = time.perf_counter()
    result = await run_chat(bot, store, said(turns), now=NOW, on_bot=clock.on_bot, on_ready=ready)
    wall = time.perf_counter() - started
    router = find_router(holder[0].worker.pipeline)
    decisions = router.decisions if router else []
    ms = lambda t, key, since="queued": round((t[key] - t[since]) * 1000, 1) if t[key] is not None and t[since] is not None else None  # noqa: E731
    per_turn = [
        {"caller": text, "first_text_ms": ms(t, "text"), "first_line_ms": ms(t, "line"),
         "turn_close_ms": ms(t, "context"), "brain_first_text_ms": ms(t, "text", "context"),
         "path": decisions[i].path if router and i < len(decisions) else "llm", "bot": t["bot"]}
        for i, (text, t) in enumerate(zip(turns, clock.turns))
    ]  # fmt: skip
    counters = result.counters
    return {
        "caller_turns": len(clock.turns),
        "route_fast": counters.get("route:fast", 0),
        "route_light": counters.get("route:light", 0),
        "route_llm": counters.get("route:llm", 0),
        "fast_reasons": {k.removeprefix("route:fast:"): v for k, v in counters.items() if k.startswith("route:fast:")},
        "light_reasons": {k.removeprefix("route:light:"): v for k, v in counters.items() if k.startswith("route:light:")},
        "claude_requests": len(claude.script.requests),
        "claude_requests_by_model": dict(Counter(r.get("model") for r in claude.script.requests)),
        "failover_switches": counters.get("failover:llm", 0),
        "guard": {k: v for k, v in counters.items() if k.startswith("guard:")},
        "outcome": result.outcome,
        "node": result.node,
        "bot_lines": [t["text"] for t in result.transcript if t["role"] == "bot"],
        "turns": per_turn,
        "decision_us": [round(router.decision_s / len(decisions) * 1e6, 1)] if router and decisions else [],
        "wall_s": round(wall, 2),
    }


async def run_calls(claude: AnthropicStandIn, workdir: Path) -> dict:
    runs: dict = {}
    for flow, calls in CALLS.items():
        for mode in MODES:
            bot = load_bot(bot_file(workdir, flow, mode))
            with Store(workdir / f"{flow}-{mode}.db") as store:
                for name, turns in calls.items():
                    runs[(flow, mode, name)] = await one_call(claude, bot, store, turns)
                    r = runs[(flow, mode, name)]
                    print(f"  {flow:<10} {mode:<18} {name:<30} fast {r['route_fast']}/{r['caller_turns']}, light {r['route_light']}, "
                          f"{r['claude_requests']} requests, {r['wall_s']} s", file=sys.stderr)  # fmt: skip
    return runs


def summarize(runs: dict) -> dict:
    out: dict = {}
    for flow, calls in CALLS.items():
        out[flow] = {}
        for mode in MODES:
            rs = [runs[(flow, mode, name)] for name in calls]
            turns = [t for r in rs for t in r["turns"]]
            caller_turns = sum(r["caller_turns"] for r in rs)
            fast = sum(r["route_fast"] for r in rs)
            light = sum(r["route_light"] for r in rs)
            by_path = {
                path: {"n": len(ts), "first_text_p50_ms": pct([t["first_text_ms"] for t in ts if t["first_text_ms"] is not None], 50)}
                for path in ("fast", "light", "llm")
                if (ts := [t for t in turns if t["path"] == path])
            }
            out[flow][mode] = {
                "calls": len(rs),
                "caller_turns": caller_turns,
                "fast_share": round(fast / caller_turns, 3) if caller_turns else None,
                "light_share": round(light / caller_turns, 3) if caller_turns else None,
                "route_fast": fast,
                "route_light": light,
                "route_llm": sum(r["route_llm"] for r in rs),
                "fast_reasons": dict(sum((Counter(r["fast_reasons"]) for r in rs), Counter()).most_common()),
                "light_reasons": dict(sum((Counter(r["light_reasons"]) for r in rs), Counter()).most_common()),
                "claude_requests_per_call": round(sum(r["claude_requests"] for r in rs) / len(rs), 2),
                "claude_requests_by_model": dict(sum((Counter(r["claude_requests_by_model"]) for r in rs), Counter())),
                "claude_requests": {name: runs[(flow, mode, name)]["claude_requests"] for name in calls},
                "first_text_ms": stats([t["first_text_ms"] for t in turns if t["first_text_ms"] is not None]),
                "first_line_ms": stats([t["first_line_ms"] for t in turns if t["first_line_ms"] is not None]),
                "turn_close_ms": stats([t["turn_close_ms"] for t in turns if t["turn_close_ms"] is not None]),
                "brain_first_text_ms": stats([t["brain_first_text_ms"] for t in turns if t["brain_first_text_ms"] is not None]),
                "first_text_p50_ms_by_path": by_path,
                "unanswered_turns": sum(1 for t in turns if t["first_line_ms"] is None),
                "failover_switches": sum(r["failover_switches"] for r in rs),
                "guard": dict(sum((Counter(r["guard"]) for r in rs), Counter())),
                "wall_s": round(sum(r["wall_s"] for r in rs), 1),
            }
        base = out[flow]["off"]
        for mode in MODES[1:]:
            m = out[flow][mode]
            saved = {}
            for key in ("first_text_ms", "first_line_ms", "brain_first_text_ms"):
                off_p50, p50 = base[key]["p50"], m[key]["p50"]
                saved[key] = {"p50_saved_ms": round(off_p50 - p50, 1), "p50_ratio": round(p50 / off_p50, 3) if off_p50 else None}
            m["saved_vs_off"] = saved
            mismatches = []
            for name in CALLS[flow]:
                a, b = runs[(flow, "off", name)], runs[(flow, mode, name)]
                if a["outcome"] != b["outcome"] or a["node"] != b["node"]:
                    mismatches.append({"call": name, "what": "outcome", "off": {"outcome": a["outcome"], "node": a["node"]},
                                       mode: {"outcome": b["outcome"], "node": b["node"]}})  # fmt: skip
                elif a["bot_lines"] != b["bot_lines"]:
                    diff = [{"off": x, mode: y} for x, y in zip(a["bot_lines"], b["bot_lines"]) if x != y]
                    if len(a["bot_lines"]) != len(b["bot_lines"]):
                        diff.append({"off_lines": len(a["bot_lines"]), f"{mode}_lines": len(b["bot_lines"])})
                    mismatches.append({"call": name, "what": "bot lines (same outcome)", "diff": diff[:4],
                                       "guard": {"off": a["guard"], mode: b["guard"]}})  # fmt: skip
            m["same_outcome_as_off"] = not any(x["what"] == "outcome" for x in mismatches)
            m["mismatches"] = mismatches
    return out


def decision_cost() -> dict:
    samples: dict[str, list[float]] = {"conservative": [], "aggressive": [], "conservative+light": []}
    per_utterance = []
    with tempfile.TemporaryDirectory() as tmp:
        bots = {flow: load_bot(bot_file(Path(tmp), flow, "conservative")) for flow in FLOWS}
        with Store(Path(tmp) / "decisions.db") as store:
            for flow, node, utterances in DECISIONS:
                session = CallSession(bots[flow], store, call_id=f"d-{node}", clock=lambda: NOW)
                session.flow_manager = SimpleNamespace(current_node=node, state={})  # as tests/processors/test_turn_router.py
                session.enter_if_new()
                session.question(node)
                for text in utterances:
                    row = {"node": node, "utterance": text}
                    for mode in samples:
                        routing, light = split_mode(mode)
                        route(session, text, routing, light=light)  # warm caches
                        times = []
                        for _ in range(DECISION_REPEATS):
                            t0 = time.perf_counter_ns()
                            decision = route(session, text, routing, light=light)
                            times.append((time.perf_counter_ns() - t0) / 1000)
                        samples[mode] += times
                        row[mode] = {"path": decision.path, "reason": decision.reason, "median_us": round(statistics.median(times), 1)}
                    per_utterance.append(row)
    out: dict = {"repeats": DECISION_REPEATS, "utterances": len(per_utterance), "target_us": 1000}
    for mode, times in samples.items():
        out[mode] = {"median_us": round(statistics.median(times), 1), "p95_us": pct(times, 95), "max_us": round(max(times), 1)}
    out["ok"] = all(out[m]["median_us"] <= 1000 for m in samples)
    slowest = max(per_utterance, key=lambda r: r["aggressive"]["median_us"])
    out["slowest_utterance"] = {"node": slowest["node"], "utterance": slowest["utterance"], "median_us": slowest["aggressive"]["median_us"]}
    out["per_utterance"] = per_utterance
    return out


def table(summary: dict, cost: dict) -> str:
    rows = [
        "| flow | routing | fast-path turns | light-model turns | Claude req/call | caller text -> first bot text p50 / p95 | of which brain p50 / p95 | p50 saved vs off | same outcome |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for flow in CALLS:
        for mode in MODES:
            m = summary[flow][mode]
            saved, brain = (m.get("saved_vs_off", {}).get(k) for k in ("first_text_ms", "brain_first_text_ms"))
            saved_s = f"{saved['p50_saved_ms']:.0f} ms (x{saved['p50_ratio']:.2f}; brain x{brain['p50_ratio']:.2f})" if saved else "-"
            same = "-" if mode == "off" else ("yes" if not m["mismatches"] else ("lines differ" if m["same_outcome_as_off"] else "NO"))
            rows.append(
                f"| {flow} | {mode} | {m['route_fast']}/{m['caller_turns']} ({m['fast_share']:.0%}) | "
                f"{m['route_light']}/{m['caller_turns']} ({m['light_share']:.0%}) | {m['claude_requests_per_call']:.1f} | "
                f"{m['first_text_ms']['p50']:.0f} / {m['first_text_ms']['p95']:.0f} ms | "
                f"{m['brain_first_text_ms']['p50']:.0f} / {m['brain_first_text_ms']['p95']:.0f} ms | "
                f"{saved_s} | {same} |"
            )
    rows.append("")
    rows.append(
        f"Routing decision: median {cost['conservative']['median_us']} µs (conservative), {cost['aggressive']['median_us']} µs (aggressive), "
        f"{cost['conservative+light']['median_us']} µs (conservative+light), "
        f"p95 {cost['aggressive']['p95_us']} µs, over {cost['utterances']} utterances x {cost['repeats']} (target <= 1 ms: {'ok' if cost['ok'] else 'MISSED'})"
    )
    return "\n".join(rows)


async def main() -> dict:
    started = time.perf_counter()
    claude = AnthropicStandIn(script=Script(default=Fault(latency_s=FIRST_BYTE_S)), words_per_chunk=WORDS_PER_CHUNK, chunk_gap_s=CHUNK_GAP_S)
    await claude.start()
    os.environ["ANTHROPIC_API_KEY"] = API_KEY
    os.environ["ANTHROPIC_BASE_URL"] = claude.base_url
    try:
        with tempfile.TemporaryDirectory() as tmp:
            runs = await run_calls(claude, Path(tmp))
    finally:
        await claude.stop()
    summary = summarize(runs)
    cost = decision_cost()
    in_call = [u for r in runs.values() for u in r["decision_us"]]
    cost["in_call_mean_us_per_call"] = {"median": round(statistics.median(in_call), 1), "max": max(in_call)} if in_call else None
    return {
        "claude_standin": {"first_byte_s": FIRST_BYTE_S, "words_per_chunk": WORDS_PER_CHUNK, "chunk_gap_s": CHUNK_GAP_S},
        "latency_note": (
            "per caller turn, text chat (no STT/TTS): from queuing the caller's text to the bot's first text frame (first_text) and "
            "first whole line (first_line); turn_close is the part spent before the user aggregator sends the context (Pipecat's "
            "ExternalUserTurnStopStrategy waits its 0.5 s timeout for late transcripts, the same in every mode); brain_first_text is "
            "from that context to the first text frame"
        ),
        "flows": summary,
        "decision_cost": cost,
        "calls": {f"{flow}/{mode}/{name}": {k: v for k, v in r.items() if k not in ("bot_lines", "decision_us")} for (flow, mode, name), r in runs.items()},
        "wall_s": round(time.perf_counter() - started, 1),
    }


if __name__ == "__main__":
    logger.remove()
    logger.add(sys.stderr, level="WARNING", filter=lambda r: not r["name"].startswith("pipecat"))
    out = asyncio.run(main())
    path = ROOT / "bench" / "results" / "routing.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(table(out["flows"], out["decision_cost"]))
    print(f"\nwall {out['wall_s']} s; details in {path.relative_to(ROOT)}")

"""Voice-to-voice overhead of the pipeline over the providers' own latency, on loopback stand-ins
of the production providers.

    .venv/bin/python bench/production_overhead.py [--variants zero,published,published_early,published_conservative,published_observed]
                                                  [--out bench/results/production_overhead.json]

The scripted calls of bench/voice_latency.py (both shipped flows, 24 caller turns) are placed
through `app.simulate.run.Simulation` (Silero VAD, real-time pacing, the simulated sound card) with
Pipecat's real DeepgramSTTService, AnthropicLLMService and CartesiaTTSService first in their chains
(Whisper / local brain / Piper behind them, as in production), each talking over loopback to a
stand-in:

- Deepgram (`DeepgramStandIn`): a `ScriptedTranscriber` of the call's exact caller lines (perfect,
  instant transcription); its final `final_latency_s` after the end of the utterance (Pipecat sends
  `Finalize` at the VAD stop; the stand-in also endpoints on 0.3 s of quiet by itself); an interim
  every 0.5 s of audio while the utterance is open, holding the words spoken by then (`PacedTranscriber`:
  each line's words spread evenly over its speech, a word heard once it has ended).
- Claude (`AnthropicStandIn`): answers as the local brain would, first byte `latency_s` after each
  request, the whole reply streamed at once (chunk gap 0: streaming speed is not counted).
- Cartesia (`CartesiaStandIn`): a cheap tone, first audio `first_audio_latency_s` after a
  context's first message.

bot.yaml: `turn: {detector: silence, silence_timeout_s: 0}` (the smallest the config allows, so the
figures measure the pipeline, not the turn-taking policy; `vad_stop_secs` stays at its 0.2 s),
`early_llm` as the variant says, and `routing: off` (every caller turn goes to Claude). Variants:

- `zero`: every stand-in at zero added latency: what is left is the pipeline alone;
- `published`: Deepgram final 0.15 s, Claude first token 0.3 s, Cartesia first audio 0.09 s;
- `published_early`: the same with `early_llm: true` (Claude starts on the interim transcript at
  the VAD stop; the final confirms or restarts it). With it, Claude's time overlaps Deepgram's, so
  the providers' time below (their sum) overstates the critical path and the overhead reads low;
  compare voice-to-voice. The `early_llm` counters say how many early starts the final confirmed;
- `published_conservative`: `published` with `routing: conservative` (fewer Claude round trips);
- `published_observed`: `published` with RTVI's observer on the call, as a browser or Daily call
  has it (here with no client to send its messages to): Pipecat then hands it every push of every
  frame (`processors/frame_path.py`).

The calls of the other variants have no observer, as a phone call: the stages are timed as the
services push (`app.simulate.run.Timeline`).

Every variant but `published_early` sets `early_llm: false` (unset, it is on with Deepgram's interims).

Per caller turn: voice_to_voice (end of caller speech -> first audible bot audio, as
`app.simulate.run` measures it) and the providers' time for that turn: STT + TTS + the time each
Claude request on the turn's critical path (made after the caller's speech ended, answered before
the turn's first audio) took the stand-in to its first byte: its latency plus its own work
(composing the local brain's reply, counting usage), which a real model's first-token time holds
too, and which is not the pipeline's. Overhead
= voice_to_voice - providers' time, reported three ways: as is; minus the nominal turn-stop wait
(`vad_stop_secs` + `silence_timeout_s` of the bot.yaml used); and from the VAD stop as observed
(VADUserStoppedSpeakingFrame), with the per-stage split (STT after the VAD stop, brain, TTS).

Measurement hygiene: the caller's lines are synthesized to WAV before the calls (`Simulation.speak`
synthesizes the next line on the event loop right after a turn's speech ended, blocking the loop for
0.2-0.5 s of the time being measured); one unmeasured warm-up call runs first; the caller takes its
turn after 0.4 s of bot silence (app.simulate: 0.8 s) and the bot's tone is 10 ms per character, to
keep the three variants to about five minutes. Event-loop stalls over 50 ms are counted per variant.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from loguru import logger

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.simulate.stats import pct  # noqa: E402

from app.config.load import LoadedBot, load_bot  # noqa: E402
import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
from pipecat.frames.frames import Frame, UserStoppedSpeakingFrame, VADUserStoppedSpeakingFrame  # noqa: E402
from pipecat.processors.frameworks.rtvi.observer import RTVIObserver  # noqa: E402
from pipecat.processors.aggregators.llm_response_universal import LLMUserAggregator  # noqa: E402

from app.simulate.caller import RATE, CallerTurn, synthesize  # noqa: E402
from app.simulate.run import Simulation, Timeline, trailing_quiet_s  # noqa: E402
from app.standins import anthropic as anthropic_standin  # noqa: E402
from app.standins import cartesia as cartesia_standin  # noqa: E402
from app.standins.anthropic import AnthropicStandIn, local_brain_responder  # noqa: E402
from app.standins.cartesia import CartesiaStandIn, ToneSynthesizer  # noqa: E402
from app.standins.deepgram import DeepgramStandIn, ScriptedTranscriber  # noqa: E402
from app.standins.fault import Fault  # noqa: E402
from app.store import Store  # noqa: E402
from app.voice import warm_up  # noqa: E402
from bench.voice_latency import CALLS  # noqa: E402
from bench.machine import describe as describe_machine  # noqa: E402

NOW = datetime(2026, 11, 23, 10)  # a Monday
DEEPGRAM_KEY = "standin-deepgram-key"
PUBLISHED = {"stt_s": 0.15, "llm_s": 0.30, "tts_s": 0.09}  # Deepgram final, Claude first token, Cartesia first audio
ZERO = {"stt_s": 0.0, "llm_s": 0.0, "tts_s": 0.0}
VARIANTS = {
    "zero": dict(latency=ZERO, routing="off", early_llm=False),
    "published": dict(latency=PUBLISHED, routing="off", early_llm=False),
    "published_early": dict(latency=PUBLISHED, routing="off", early_llm=True),
    "published_conservative": dict(latency=PUBLISHED, routing="conservative", early_llm=False),
    "published_observed": dict(latency=PUBLISHED, routing="off", early_llm=False, observed=True),
}
SILENCE_TIMEOUT_S = 0.0  # the smallest `turn.silence_timeout_s` allows
TONE = ToneSynthesizer(seconds_per_char=0.01)  # short bot lines: the same first audio, a faster bench
IDLE_S = 0.4  # the caller speaks after this much bot silence (app.simulate: 0.8)
PAUSE_S = 0.1  # and this pause
PREROLL_S = 0.22  # the Deepgram stand-in's utterance audio starts this long before the first loud window
QUIET_RMS = 200  # int16 RMS of a 20 ms window below which the caller's clip is quiet (app.simulate's SILENT_RMS)
TRAILING: dict[str, float] = {}  # caller line -> ms of quiet at the end of its speech, before the clip's 0.2 s pad
SPEECH_S: dict[str, float] = {}  # caller line -> seconds from its first loud window to its last

STT_BLOCK = "stt:\n  - provider: whisper\n    model: tiny.en\n"
TTS_BLOCK = "tts:\n  - provider: piper\n    voice: en_US-joe-medium\n"


def bot_file(directory: Path, flow: str, routing: str, deepgram: str, cartesia: str, early_llm: bool = False) -> Path:
    text = (ROOT / "bot.yaml").read_text().replace("flow: flows/scheduling.yaml", f"flow: {ROOT / flow}")
    if STT_BLOCK not in text or TTS_BLOCK not in text:
        raise SystemExit("bot.yaml's stt:/tts: blocks changed: update STT_BLOCK / TTS_BLOCK")
    text = text.replace(STT_BLOCK, f"stt:\n  - provider: deepgram\n    base_url: {deepgram}\n  - provider: whisper\n")
    text = text.replace(TTS_BLOCK, f"tts:\n  - provider: cartesia\n    base_url: {cartesia}\n  - provider: piper\n")
    for key in ("turn", "routing", "failover"):
        text = re.sub(rf"(?ms)^{key}:.*?\n(?=\S|\Z)", "", text)
    early = str(early_llm).lower()
    text += f"\nturn:\n  detector: silence\n  silence_timeout_s: {SILENCE_TIMEOUT_S}\n  early_llm: {early}\nrouting: {routing}\nfailover:\n  backoff_s: 60\n"
    path = directory / f"bot-{Path(flow).stem}-{routing}{'-early' if early_llm else ''}.yaml"
    path.write_text(text)
    return path


class PacedTranscriber(ScriptedTranscriber):
    """Interims hold the words spoken by the end of the audio so far: the line's words spread evenly
    over its speech (`SPEECH_S`), which starts after the stand-in's 0.2 s pre-roll."""

    def interim(self, audio: bytes, sample_rate: int) -> str:
        with self._lock:
            line = self.transcripts[0] if self.transcripts else self.default
        words = line.split()
        spoken_s = len(audio) / 2 / sample_rate - PREROLL_S
        speech_s = SPEECH_S.get(line) or 1.0
        return " ".join(words[: max(0, min(len(words), int(len(words) * spoken_s / speech_s)))])


class TimedSimulation(Simulation):
    """A Simulation that keeps when each caller turn's speech ended and when the VAD reported its
    stop (monotonic), and takes the caller's next turn after `IDLE_S` of bot silence."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.ends: list[float] = []
        self.timeline = VADTimeline()

    async def speak(self, turn, samples, task, reply_mark):
        started, ended = await super().speak(turn, samples, task, reply_mark)
        if self.line.speech_ended_at is None:
            # The call ended (the flow's last line) before the clip's closing 0.2 s of silence had
            # played, so the microphone never marked its end: take it from the clip's length.
            first = next((at for at, _ in self.line.recorded if at >= started), started)
            ended = first + len(samples) / RATE - trailing_quiet_s(samples)
        self.ends.append(ended)
        return started, ended

    async def bot_finished(self, since: float, call: asyncio.Task, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not call.done():
            if self.audible_since(since) is not None and time.monotonic() - self.last_audible_end() > IDLE_S:
                return
            await asyncio.sleep(0.02)


class VADTimeline(Timeline):
    """The simulation's Timeline, plus when the VAD reported each end of speech."""

    def __init__(self):
        super().__init__()
        self.vad_stops: list[float] = []
        # The user aggregator's UserStoppedSpeakingFrame: the caller's turn closed (with an early LLM
        # start confirmed, no context goes out then: it went out at the VAD stop).
        self.turn_stops: list[float] = []
        self._seen: set[int] = set()

    def note(self, source: object, frame: Frame) -> None:
        super().note(source, frame)
        if frame.id in self._seen:
            return
        if isinstance(frame, VADUserStoppedSpeakingFrame):
            self._seen.add(frame.id)
            self.vad_stops.append(time.monotonic())
        elif isinstance(frame, UserStoppedSpeakingFrame) and isinstance(source, LLMUserAggregator):
            self._seen.add(frame.id)
            self.turn_stops.append(time.monotonic())


def caller_audio(directory: Path, lines: list[str]) -> list[CallerTurn]:
    """The caller's turns as WAV files, synthesized before the call: `Simulation.speak` would
    synthesize each turn on the event loop right after the previous turn's speech ended, blocking
    the loop for 0.2-0.5 s of the time being measured (app/simulate/run.py, `speak`)."""
    turns = []
    for line in lines:
        path = directory / (re.sub(r"[^a-z0-9]+", "_", line.lower()).strip("_") + ".wav")
        if not path.exists():
            samples = synthesize(line)
            sf.write(str(path), samples, RATE, subtype="PCM_16")
            speech = samples[: len(samples) - int(0.2 * RATE)].astype(np.float64)
            window = int(0.02 * RATE)
            loud = [i for i in range(0, len(speech) - window, window) if np.sqrt(np.mean(speech[i : i + window] ** 2)) > QUIET_RMS]
            TRAILING[line] = round((len(speech) - (loud[-1] + window)) / RATE * 1000, 1) if loud else 0.0
            SPEECH_S[line] = (loud[-1] + window - loud[0]) / RATE if loud else 0.0
        turns.append(CallerTurn(wav=str(path), pause_s=PAUSE_S))
    return turns


def stats(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    return {"p50": pct(values, 50), "p95": pct(values, 95), "min": round(min(values), 1), "max": round(max(values), 1), "n": len(values)}


async def one_call(
    bot: LoadedBot, store: Store, lines: list[str], workdir: Path, latency: dict, deepgram: DeepgramStandIn, claude: AnthropicStandIn, observed: bool = False
) -> tuple[list[dict], dict]:
    transcriber = PacedTranscriber(lines)
    deepgram.transcriber = transcriber
    simulation = TimedSimulation(bot, store, now=NOW, observers=[RTVIObserver()] if observed else None)
    claude.responder = local_brain_responder(lambda: simulation.call.session, lambda: simulation.call.context.get_messages())
    first_request = len(claude.received)
    result = await simulation.run(caller_audio(workdir, lines))
    answered = [r for r in claude.received[first_request:] if r.answered_at is not None]
    turns = []
    ends = simulation.ends + [float("inf")]
    stops = simulation.timeline.vad_stops
    for i, (line, turn) in enumerate(zip(lines, result.turns)):
        lat = turn["latency_ms"]
        v2v = lat["voice_to_voice"]
        first_audio = ends[i] + v2v / 1000 if v2v is not None else ends[i + 1]
        in_turn = [r for r in answered if ends[i] <= r.at < ends[i + 1]]
        critical = [r for r in in_turn if r.answered_at <= first_audio]
        # The VAD's last stop before the turn's first audio (a pause inside a turn stops it too).
        vad_stop = max((t for t in stops if ends[i] - 0.2 <= t <= first_audio), default=None)
        # When the turn closed after both the VAD stop and the transcript: Pipecat's STT safety net
        # (stt_timeout) holds it when the final transcript is not marked finalized.
        heard = ends[i] + lat["stt"] / 1000 if lat["stt"] is not None else None
        ready = max(heard, vad_stop) if heard is not None and vad_stop is not None else None
        closed = next((t for t in simulation.timeline.turn_stops if ready is not None and ready - 0.001 <= t <= first_audio), None)
        turns.append({
            "caller": line, "latency_ms": lat, "claude_requests": len(in_turn), "claude_before_audio": len(critical),
            "claude_ms": round(1000 * sum(r.took_s for r in critical), 1),
            "vad_stop_ms": round((vad_stop - ends[i]) * 1000, 1) if vad_stop is not None else None,
            "caller_trailing_quiet_ms": TRAILING.get(line),
            "turn_closed_after_ready_ms": round((closed - ready) * 1000, 1) if closed is not None else None,
        })  # fmt: skip
    outcome = result.chat.outcome
    call = {
        "turns": len(result.turns),
        "outcome": outcome and outcome["type"],
        "claude_requests": len(answered),
        "deepgram_utterances": len(transcriber.heard),
        "counters": {k: v for k, v in dict(result.chat.counters).items() if k.startswith(("failover", "route", "guard", "early_llm"))},
        "interrupted_lines": sum(1 for t in result.chat.transcript if t.get("interrupted")),
    }
    if not outcome or len(transcriber.heard) != len(lines) or call["interrupted_lines"]:
        call["transcript"] = result.chat.transcript
    return turns, call


LAGS: list[tuple[float, float]] = []  # (when, seconds): the event loop late by more than 50 ms


async def watch_loop() -> None:
    while True:
        before = time.monotonic()
        await asyncio.sleep(0.01)
        if (lag := time.monotonic() - before - 0.01) > 0.05:
            LAGS.append((before, lag))


async def warm_up_call(workdir: Path, deepgram: DeepgramStandIn, claude: AnthropicStandIn, cartesia: CartesiaStandIn) -> None:
    """One unmeasured call first: the process's first call pays for imports and lazy set-up."""
    flow, lines = "flows/scheduling.yaml", CALLS["flows/scheduling.yaml"][1]
    bot = load_bot(bot_file(workdir, flow, "off", deepgram.base_url, cartesia.url, early_llm=True))
    await warm_up(bot)
    with Store(workdir / "warm-up.db") as store:
        await one_call(bot, store, lines, workdir, ZERO, deepgram, claude)


async def run_variant(name: str, workdir: Path, deepgram: DeepgramStandIn, claude: AnthropicStandIn, cartesia: CartesiaStandIn) -> dict:
    spec = VARIANTS[name]
    latency, routing, early_llm = spec["latency"], spec["routing"], spec["early_llm"]
    deepgram.final_latency_s = latency["stt_s"]
    claude.script.set(default=Fault(latency_s=latency["llm_s"]))
    cartesia.first_audio_latency_s = latency["tts_s"]
    turns: list[dict] = []
    calls: list[dict] = []
    started = time.monotonic()
    turn_wait_s = None
    for flow, scripts in CALLS.items():
        bot = load_bot(bot_file(workdir, flow, routing, deepgram.base_url, cartesia.url, early_llm))
        turn_wait_s = bot.config.turn.vad_stop_secs + bot.config.turn.silence_timeout_s
        silence_s = bot.config.turn.silence_timeout_s
        await warm_up(bot)
        for lines in scripts:
            with Store(workdir / f"{name}.db") as store:
                call_turns, call = await one_call(bot, store, lines, workdir, latency, deepgram, claude, spec.get("observed", False))
            call["flow"] = flow
            turns += call_turns
            calls.append(call)
            print(f"  {name} {flow}: {call['turns']} turns, outcome {call['outcome']}, {call['claude_requests']} Claude requests, {call['deepgram_utterances']} Deepgram utterances, {call['counters']}", file=sys.stderr)
    for t in turns:
        v2v = t["latency_ms"]["voice_to_voice"]
        providers_ms = 1000 * (latency["stt_s"] + latency["tts_s"]) + t["claude_ms"]
        t["providers_ms"] = round(providers_ms, 1)
        t["overhead_ms"] = round(v2v - providers_ms, 1) if v2v is not None else None
        t["overhead_excl_turn_wait_ms"] = round(v2v - providers_ms - 1000 * turn_wait_s, 1) if v2v is not None else None
        # after the VAD's measured stop (+ silence_timeout_s): what the pipeline adds once the turn is over
        vad = t["vad_stop_ms"]
        t["overhead_after_vad_stop_ms"] = round(v2v - providers_ms - vad - 1000 * silence_s, 1) if v2v is not None and vad is not None else None
        lat = t["latency_ms"]
        if v2v is not None and vad is not None and None not in (lat["stt"], lat["brain"], lat["tts_first_audio"]):
            t["stage_overhead_ms"] = {
                "stt_after_vad_stop": round(lat["stt"] - vad - 1000 * latency["stt_s"], 1),
                "brain": round(lat["brain"] - t["claude_ms"], 1),
                "tts_first_audio": round(lat["tts_first_audio"] - 1000 * latency["tts_s"], 1),
            }
    measured = [t for t in turns if t["latency_ms"]["voice_to_voice"] is not None]
    col = lambda key: [t[key] for t in measured]  # noqa: E731
    stage = lambda key: stats([t["latency_ms"][key] for t in measured if t["latency_ms"][key] is not None])  # noqa: E731
    early = {e: sum(c["counters"].get(f"early_llm:{e}", 0) for c in calls) for e in ("started", "confirmed", "restarted", "withdrawn")}
    return {
        "routing": routing,
        "early_llm": early_llm,
        "observer": spec.get("observed", False),
        "early_llm_starts": early,
        "latency_s": latency,
        "turn_wait_s": {"vad_stop_secs": bot.config.turn.vad_stop_secs, "silence_timeout_s": bot.config.turn.silence_timeout_s},
        "turns": len(turns),
        "turns_measured": len(measured),
        "claude_requests_before_audio": {str(n): sum(1 for t in measured if t["claude_before_audio"] == n) for n in sorted({t["claude_before_audio"] for t in measured})},
        "voice_to_voice_ms": stats([t["latency_ms"]["voice_to_voice"] for t in measured]),
        "stages_ms": {key: stage(key) for key in ("stt", "brain", "tts_first_audio")},
        "providers_ms": stats(col("providers_ms")),
        "overhead_ms": stats(col("overhead_ms")),
        "overhead_excl_turn_wait_ms": stats(col("overhead_excl_turn_wait_ms")),
        "vad_stop_after_speech_end_ms": stats([t["vad_stop_ms"] for t in measured if t["vad_stop_ms"] is not None]),
        "overhead_after_vad_stop_ms": stats([t["overhead_after_vad_stop_ms"] for t in measured if t["overhead_after_vad_stop_ms"] is not None]),
        "stage_overhead_ms": {
            key: stats([t["stage_overhead_ms"][key] for t in measured if "stage_overhead_ms" in t])
            for key in ("stt_after_vad_stop", "brain", "tts_first_audio")
        },
        "turn_closed_after_ready_ms": stats([t["turn_closed_after_ready_ms"] for t in measured if t["turn_closed_after_ready_ms"] is not None]),
        "turns_held_by_stt_timeout": sum(1 for t in measured if (t["turn_closed_after_ready_ms"] or 0) > 100),
        "caller_trailing_quiet_ms": stats([t["caller_trailing_quiet_ms"] for t in measured if t["caller_trailing_quiet_ms"] is not None]),
        "event_loop_stalls_over_50ms": {
            "count": len(lags := [lag for at, lag in LAGS if started <= at]),
            "max_ms": round(max(lags) * 1000, 1) if lags else None,
        },
        "calls": calls,
        "per_turn": turns,
        "wall_s": round(time.monotonic() - started, 1),
    }


def table(report: dict) -> str:
    rows = [
        "| variant | routing | early LLM (confirmed / started) | turns | voice-to-voice p50 / p95 | providers' time p50 | overhead p50 / p95 | excl. VAD stop_secs + silence_timeout_s (nominal) | after the measured VAD stop |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    f = lambda s: f"{s['p50']:.0f} / {s['p95']:.0f} ms"  # noqa: E731
    for name in VARIANTS:
        if (v := report["variants"].get(name)) is None:
            continue
        early = f"{v['early_llm_starts']['confirmed']} / {v['early_llm_starts']['started']}" if v["early_llm"] else "off"
        rows.append(
            f"| {name} | {v['routing']} | {early} | {v['turns_measured']} | {f(v['voice_to_voice_ms'])} | {v['providers_ms']['p50']:.0f} ms"
            f" | {f(v['overhead_ms'])} | {f(v['overhead_excl_turn_wait_ms'])} | {f(v['overhead_after_vad_stop_ms'])} |"
        )
    return "\n".join(rows)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--out", default=str(ROOT / "bench/results/production_overhead.json"))
    args = parser.parse_args()
    logger.remove()
    # The observed row's RTVI observer has no RTVI processor to send through (no client): Pipecat logs that as an error.
    logger.add(sys.stderr, level="WARNING", filter=lambda record: "no RTVIProcessor in pipeline" not in record["message"])
    os.environ["DEEPGRAM_API_KEY"] = DEEPGRAM_KEY
    os.environ["CARTESIA_API_KEY"] = cartesia_standin.API_KEY
    os.environ["ANTHROPIC_API_KEY"] = anthropic_standin.API_KEY
    report: dict = {"machine": describe_machine(), "load_average": os.getloadavg(), "variants": {}}
    started = time.monotonic()
    async with (
        DeepgramStandIn(ScriptedTranscriber(), api_key=DEEPGRAM_KEY) as deepgram,
        AnthropicStandIn(words_per_chunk=3, chunk_gap_s=0.0) as claude,
        CartesiaStandIn(synthesizer=TONE) as cartesia,
    ):
        os.environ["ANTHROPIC_BASE_URL"] = claude.base_url
        watcher = asyncio.create_task(watch_loop())
        with tempfile.TemporaryDirectory() as tmp:
            await warm_up_call(Path(tmp), deepgram, claude, cartesia)
            for name in args.variants.split(","):
                LAGS.clear()
                report["variants"][name] = await run_variant(name, Path(tmp), deepgram, claude, cartesia)
        watcher.cancel()
    report["load_average_after"] = os.getloadavg()
    report["wall_s"] = round(time.monotonic() - started, 1)
    report["table"] = table(report)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    summary = {k: {kk: vv for kk, vv in v.items() if kk not in ("per_turn", "calls")} for k, v in report["variants"].items()}
    print(json.dumps(summary, indent=2))
    print(report["table"])


if __name__ == "__main__":
    asyncio.run(main())

"""Voice-to-voice latency of the embedded stack, over scripted calls of both shipped flows.

    .venv/bin/python bench/voice_latency.py [--variants default,fast_silence] [--out bench/results/voice_latency.json]

Each variant is a bot.yaml `turn:` setting; every variant places the same calls through
`frontdesk simulate` (real Whisper, Silero VAD, Piper, real-time pacing) and reports p50/p95 of
voice-to-voice (end of caller speech -> first bot audio) with the median of each stage, and the
peak memory (max RSS) of the process that ran the calls.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import resource
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.config.load import load_bot  # noqa: E402
from app.simulate.caller import CallerTurn  # noqa: E402
from app.simulate.run import simulate  # noqa: E402
from app.store import Store  # noqa: E402
from bench.machine import describe as describe_machine  # noqa: E402

CALLS = {
    "flows/scheduling.yaml": [
        ["I'd like to book an appointment", "a haircut please", "Wednesday", "two thirty in the afternoon", "Jane Doe", "five five five one two three four five six seven", "yes"],
        ["book a beard trim this Saturday at eleven", "I'm Tom Baker", "five five five two two two three three three three", "yes"],
    ],
    "flows/ordering.yaml": [
        ["two large pepperoni pizzas and a coke", "a garlic bread", "that's all", "I'll pick it up", "my name is Ann Lee", "five five five three two one seven six five four", "yes"],
        ["one medium margherita and a sprite", "no that's it", "I'll pick it up", "Bob Stone", "five five five eight six seven five three zero nine", "yes"],
    ],
}
# Each variant adds one idea to the one before, so the difference is what that idea buys.
VARIANTS = {
    "baseline": dict(early_start_s=0, cache="false", silence=0.4),
    "early_stt": dict(early_start_s=0.08, cache="false", silence=0.4),
    "early_stt_cache": dict(early_start_s=0.08, cache="true", silence=0.4),
    "shipped": dict(early_start_s=0.08, cache="true", silence=0.25),
}


def bot_file(directory: Path, flow: str, variant: str) -> Path:
    v = VARIANTS[variant]
    text = (ROOT / "bot.yaml").read_text().replace("flow: flows/scheduling.yaml", f"flow: {ROOT / flow}")
    text = text.replace("  - provider: whisper\n", f"  - provider: whisper\n    early_start_s: {v['early_start_s']}\n")
    text = text.replace("  - provider: piper\n", f"  - provider: piper\n    cache: {v['cache']}\n")
    text = re.sub(r"(?ms)^turn:\n(  .*?\n)*", "", text)
    path = directory / f"{variant}-{Path(flow).stem}.yaml"
    path.write_text(text + f"\nturn:\n  detector: silence\n  silence_timeout_s: {v['silence']}\n")
    return path


def summarize(turns: list[dict]) -> dict:
    def stat(key: str) -> dict:
        values = [t["latency_ms"][key] for t in turns if t["latency_ms"][key] is not None]
        if not values:
            return {}
        q = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else [values[0]] * 99
        return {"p50": round(statistics.median(values), 1), "p95": round(q[94], 1), "n": len(values)}

    return {key: stat(key) for key in ("voice_to_voice", "stt", "brain", "tts_first_audio")}


async def run_variant(variant: str, workdir: Path) -> dict:
    turns: list[dict] = []
    started = time.monotonic()
    for flow, calls in CALLS.items():
        bot = load_bot(bot_file(workdir, flow, variant))
        for lines in calls:
            with Store(workdir / f"{variant}.db") as store:
                result = await simulate(bot, store, [CallerTurn(say=line) for line in lines], now=datetime(2026, 11, 23, 10))
            turns += result.turns
            outcome = result.chat.outcome
            print(f"  {variant} {flow}: {len(result.turns)} turns, outcome {outcome and outcome['type']}", file=sys.stderr)
            if not outcome:
                print("    " + "\n    ".join(f"{t['role']}: {t['text']}" for t in result.chat.transcript), file=sys.stderr)
    slowest = sorted((t for t in turns if t["latency_ms"]["voice_to_voice"] is not None), key=lambda t: -t["latency_ms"]["voice_to_voice"])[:4]
    return {
        "turns": len(turns),
        "latency_ms": summarize(turns),
        "slowest": [{"caller": t["caller"], "voice_to_voice": t["latency_ms"]["voice_to_voice"]} for t in slowest],
        "wall_s": round(time.monotonic() - started, 1),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--out", default=str(ROOT / "bench/results/voice_latency.json"))
    args = parser.parse_args()
    report = {}
    with tempfile.TemporaryDirectory() as tmp:
        for variant in args.variants.split(","):
            report[variant] = await run_variant(variant, Path(tmp))
    report["machine"] = describe_machine()
    report["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())

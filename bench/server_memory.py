"""Peak memory of `frontdesk run` while it serves calls placed by Pipecat's eval client over /ws.

    .venv/bin/python bench/server_memory.py [--sequential 5] [--concurrent 3] [--out bench/results/server_memory.json]

Starts the server in a subprocess (a temporary copy of bot.yaml and flows, its own SQLite file,
a free loopback port, no API keys: local brain, Whisper tiny.en, Piper) and samples its resident
memory (psutil when installed, else /proc/<pid>/status VmRSS; VmHWM is the kernel's high-water
mark) every 50 ms while:

    idle        after start-up and the background warm-up (models loaded, fixed lines synthesized)
    first_call  one call; it also pays for the lazy imports of the voice stack
    sequential  N calls one after another: RSS after each, and the growth per call (leak check)
    concurrent  M calls at once: the peak

Each call is a Pipecat eval scenario in audio mode (see CALLER): the caller's turns are spoken by
Piper and streamed to the bot, which hears them with VAD + Whisper, answers with its local brain
and speaks with Piper in real time; the scenario asserts the bot's replies (`tts_response`). The
call stops before a booking, so repeated calls never compete for a slot. Takes ~3-4 minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the caller's voice factory lives in tests/server/scenarios/speech.py

from bench.machine import describe as describe_machine  # noqa: E402

CALLER = """
name: bench_call
user:
  modality: audio
  speech: {factory: tests.server.scenarios.speech.caller_voice, voice: en_US-joe-medium}
judge:
  modality: audio
  transcription: {factory: tests.server.scenarios.speech.bot_transcriber}  # unused: no `response` asserted
scenarios:
  - name: start_a_booking
    turns:
      - expect:
          - event: tts_response
            text_contains: Would you like to book
      - user: "I'd like to book a haircut."
        expect:
          - event: tts_response
            text_contains: What day would you like
      - user: "Next Thursday."
        expect:
          - event: tts_response
            text_contains: What time would suit you
      - user: "At four in the afternoon."
        expect:
          - event: tts_response
            text_contains: Can I get your name
"""
KEYS = ("ANTHROPIC_API_KEY", "DEEPGRAM_API_KEY", "CARTESIA_API_KEY")
MB = 1024 * 1024


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM in bytes, from /proc/<pid>/status."""
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) * 1024
    return values


def rss(pid: int) -> int:
    try:
        import psutil
    except ImportError:
        return _proc_status(pid)["VmRSS"]
    return psutil.Process(pid).memory_info().rss


class Sampler:
    """Samples one process's RSS every `interval_s` on a thread; `peak_since(mark)` per phase."""

    def __init__(self, pid: int, interval_s: float = 0.05):
        self.pid = pid
        self.samples: list[tuple[float, int]] = []
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append((time.monotonic(), rss(self.pid)))
            except (OSError, KeyError):
                return
            self._stop.wait(self._interval)

    def now(self) -> int:
        return rss(self.pid)

    def peak_between(self, start: float, end: float) -> int:
        return max((value for t, value in self.samples if start <= t <= end), default=self.now())


def _mb(value: float) -> float:
    return round(value / MB, 1)


async def _health(port: int, process: subprocess.Popen, timeout_s: float = 60) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise RuntimeError("the server exited during start-up")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                return json.load(response)
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError("the server did not come up") from None
            await asyncio.sleep(0.2)


async def _settle(sampler: Sampler, port: int, process: subprocess.Popen, quiet_s: float = 1.0) -> int:
    """Wait until no call is active and RSS has stopped moving; the RSS then."""
    while (await _health(port, process))["active_calls"]:
        await asyncio.sleep(0.2)
    await asyncio.sleep(quiet_s)
    return sampler.now()


async def place_call(url: str, scenario_path: Path, cache_dir: Path) -> dict:
    """One call through Pipecat's eval client; whether the bot said what the scenario expects."""
    from pipecat.evals.scenario import EvalScenarioFile
    from pipecat.evals.session import EvalSession, EvalSessionParams

    [scenario] = EvalScenarioFile.load(scenario_path)
    params = EvalSessionParams(default_timeout_ms=30_000, cache_dir=str(cache_dir))
    started = time.monotonic()
    result = await EvalSession.from_scenario(scenario, url, params=params).run()
    return {"passed": result.passed, "seconds": round(time.monotonic() - started, 1), "failures": [str(f) for f in result.failures]}


async def bench(sequential: int, concurrent: int, work: Path) -> dict:
    shutil.copytree(ROOT / "flows", work / "flows")
    bot_text = (ROOT / "bot.yaml").read_text(encoding="utf-8").replace("path: data/frontdesk.db", f"path: {work / 'calls.db'}")
    bot_text += "\nturn:\n  detector: silence   # synthetic speech confuses smart-turn (see DESIGN.md)\n"
    (work / "bot.yaml").write_text(bot_text, encoding="utf-8")
    scenario = work / "bench_call.yaml"
    scenario.write_text(CALLER, encoding="utf-8")
    cache_dir = work / "tts-cache"
    port = _free_port()
    url = f"ws://127.0.0.1:{port}/ws"
    env = {k: v for k, v in os.environ.items() if k not in KEYS}
    log = (work / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "run", str(work / "bot.yaml"), "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        with Sampler(process.pid) as sampler:
            started = time.monotonic()
            await _health(port, process)
            # The warm-up (Whisper, Piper, the fixed lines) runs in the background after start-up.
            await asyncio.sleep(12)
            idle = await _settle(sampler, port, process)
            idle_at = time.monotonic() - started

            t0 = time.monotonic()
            first = await place_call(url, scenario, cache_dir)
            first_peak = sampler.peak_between(t0, time.monotonic())
            after_first = await _settle(sampler, port, process)

            runs, after_each = [], []
            t0 = time.monotonic()
            for _ in range(sequential):
                runs.append(await place_call(url, scenario, cache_dir))
                after_each.append(await _settle(sampler, port, process))
            sequential_peak = sampler.peak_between(t0, time.monotonic())
            growth = [b - a for a, b in zip([after_first, *after_each], after_each)]

            t0 = time.monotonic()
            together = await asyncio.gather(*(place_call(url, scenario, cache_dir) for _ in range(concurrent)))
            concurrent_peak = sampler.peak_between(t0, time.monotonic())
            after_concurrent = await _settle(sampler, port, process)
            hwm = _proc_status(process.pid)["VmHWM"]
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()

    calls = [first, *runs, *together]
    return {
        "date": datetime.now().isoformat(timespec="seconds"),
        "machine": describe_machine(),
        "stack": "frontdesk run bot.yaml (local brain, Whisper tiny.en int8, Silero VAD, Piper en_US-joe-medium), turn.detector silence",
        "client": "pipecat.evals EvalSession over /ws, audio mode (Piper caller voice), 4 caller turns, ~20 s per call",
        "measure": "RSS of the server process (psutil or /proc VmRSS) sampled every 50 ms; vmhwm_mb is the kernel's peak",
        "idle_mb": _mb(idle),
        "idle_after_s": round(idle_at, 1),
        "one_call": {"peak_mb": _mb(first_peak), "over_idle_mb": _mb(first_peak - idle), "after_mb": _mb(after_first), "seconds": first["seconds"]},
        "sequential": {
            "calls": sequential,
            "after_each_mb": [_mb(v) for v in after_each],
            "growth_per_call_mb": [_mb(v) for v in growth],
            "mean_growth_per_call_mb": _mb(statistics.mean(growth)) if growth else None,
            "growth_over_last_calls_mb": _mb(after_each[-1] - after_each[0]) if len(after_each) > 1 else None,
            "peak_mb": _mb(sequential_peak),
        },
        "concurrent": {"calls": concurrent, "peak_mb": _mb(concurrent_peak), "over_idle_mb": _mb(concurrent_peak - idle), "after_mb": _mb(after_concurrent), "seconds": max(c["seconds"] for c in together)},
        "vmhwm_mb": _mb(hwm),
        "calls_passed": sum(c["passed"] for c in calls),
        "calls_placed": len(calls),
        "failures": [f for c in calls for f in c["failures"]],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequential", type=int, default=5, help="calls one after another (leak check)")
    parser.add_argument("--concurrent", type=int, default=3, help="calls at once (peak)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "server_memory.json")
    args = parser.parse_args()
    from loguru import logger

    logger.remove()  # the harness's own debug logs; the server logs to <tmp>/server.log
    logger.add(sys.stderr, level="WARNING")
    with tempfile.TemporaryDirectory(prefix="frontdesk-mem-") as tmp:
        result = asyncio.run(bench(args.sequential, args.concurrent, Path(tmp)))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0 if result["calls_passed"] == result["calls_placed"] else 1


if __name__ == "__main__":
    sys.exit(main())

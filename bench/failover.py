"""Failover latency: from an injected fault's start to the backup's first output, LLM, TTS and STT.

For each fault kind (HTTP 500/429/529/401 pushed as ErrorFrames, a hang before the first byte, a
stall mid-stream) the scripted fakes of tests/processors/fakes.py play the primary; the backup
answers at once, so the figure is what the failover costs: detection (deadline or error) plus
switch and replay. The fault starts at the request (errors, hang) or when the stream stops
(stall). Deadlines are bot.yaml's defaults (`Failover`). Median of 5 runs; writes
bench/results/failover.json and prints it.

STT: a caller's utterance (words carried in the audio, VAD frames sent upstream as 1.14's user
aggregator does) meets a primary that fails at the end of speech (errors), never answers (hang) or
stops its interims two words before the end (stall: the caller stops, so the final deadline
catches it). `median_ms` is from the fault's start to the backup's final transcript of the whole
utterance (replayed); `eos_to_final_ms` from the end of speech to that final, what the caller
waits. `target_ms` applies to the latter: the detection deadline plus 300 ms.

    .venv/bin/python bench/failover.py
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
from pathlib import Path

from loguru import logger

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipecat.frames.frames import LLMContextFrame, LLMFullResponseEndFrame, LLMFullResponseStartFrame, LLMTextFrame  # noqa: E402
from pipecat.pipeline.pipeline import Pipeline  # noqa: E402
from pipecat.processors.aggregators.llm_context import LLMContext  # noqa: E402
from pipecat.tests.utils import SleepFrame, run_test  # noqa: E402

from app.config.bot import Failover  # noqa: E402
from processors.llm_failover import LLMFailover  # noqa: E402
from processors.stt_failover import STTFailover  # noqa: E402
from processors.tts_failover import TTSFailover  # noqa: E402
from tests.processors.fakes import FakeLLM, FakeTTS, Step, answer, error, hang, stall  # noqa: E402
from tests.processors.fakes import AggregatorVAD, FakeSTT, VADMark, quiet, said  # noqa: E402

RUNS = 5
CFG = Failover()
FIRST_TOKEN_S, FIRST_AUDIO_S, STALL_S = CFG.llm_first_token_ms / 1000, CFG.tts_first_audio_ms / 1000, CFG.stall_ms / 1000
STT_FINAL_S = CFG.stt_final_ms / 1000
STT_WORDS = ("my", "number", "is", "five", "five", "five", "one", "two")
KINDS = ["error_500", "error_429", "error_529", "error_401", "hang", "stall"]


def fault(kind: str, *, tts: bool) -> Step:
    if kind.startswith("error_"):
        return error(int(kind.split("_")[1]))
    if kind == "hang":
        return hang()
    return stall("x", "y", "z", after=1) if tts else stall("We open ", "at nine.", after=1)


def deadline(kind: str, *, tts: bool) -> float:
    if kind == "stall":
        return STALL_S
    if kind == "hang":
        return FIRST_AUDIO_S if tts else FIRST_TOKEN_S
    return 0.0


async def llm_once(kind: str) -> float:
    primary = FakeLLM("primary", [fault(kind, tts=False)])
    backup = FakeLLM("backup", default=answer("Backup answer."))
    failover = LLMFailover([primary, backup], first_token_s=FIRST_TOKEN_S, stall_s=STALL_S)
    frame = LLMContextFrame(LLMContext(messages=[{"role": "user", "content": "hi"}]))
    await run_test(failover, frames_to_send=[frame, SleepFrame(deadline(kind, tts=False) + 0.6)])
    return backup.script.begun[0] - primary.script.faults[0]


async def tts_once(kind: str) -> float:
    # A hang or error on the first sentence; a stall mid-audio of the first sentence.
    primary = FakeTTS("A", [fault(kind, tts=True)])
    backup = FakeTTS("B", default=Step(chunks=("b",)))
    failover = TTSFailover([primary, backup], first_audio_s=FIRST_AUDIO_S, stall_s=STALL_S)
    frames = [LLMFullResponseStartFrame(), LLMTextFrame("One sentence. "), LLMTextFrame("Another one."), LLMFullResponseEndFrame()]
    await run_test(failover, frames_to_send=[*frames, SleepFrame(deadline(kind, tts=True) + 0.6)])
    return backup.script.begun[0] - primary.script.faults[0]


def stt_fault(kind: str) -> Step:
    if kind.startswith("error_"):
        return error(int(kind.split("_")[1]))  # at the end of speech, as an HTTP STT's request fails
    if kind == "hang":
        return hang()
    return stall(after=len(STT_WORDS) - 2)


async def stt_once(kind: str) -> tuple[float, float]:
    primary, backup = FakeSTT("primary", [stt_fault(kind)]), FakeSTT("backup")
    failover = STTFailover([primary, backup], final_s=STT_FINAL_S, stall_s=STALL_S)
    speech = []
    for word in STT_WORDS[2:]:
        speech += [*said(word), SleepFrame(0.06)]
    frames = [*quiet(20), *said(*STT_WORDS[:2]), VADMark(speaking=True), *speech, *quiet(10), VADMark(speaking=False)]
    down, _ = await run_test(Pipeline([failover, AggregatorVAD()]), frames_to_send=[*frames, SleepFrame(STT_FINAL_S + 0.6)])
    assert [f.text for f in down if type(f).__name__ == "TranscriptionFrame"] == [" ".join(STT_WORDS)], kind
    final = backup.finals[0]
    return final - primary.script.faults[0], final - primary.ends[0]


async def stt_results() -> dict:
    out = {}
    for kind in KINDS:
        samples = [await stt_once(kind) for _ in range(RUNS)]
        target = (0.0 if kind.startswith("error_") else STT_FINAL_S) + 0.3
        to_final = statistics.median(s[0] for s in samples)
        eos = statistics.median(s[1] for s in samples)
        out[kind] = {"median_ms": round(to_final * 1000, 1), "eos_to_final_ms": round(eos * 1000, 1), "target_ms": round(target * 1000),
                     "ok": eos <= target, "samples_ms": [round(s[0] * 1000, 1) for s in samples]}  # fmt: skip
    return out


async def main() -> dict:
    results: dict = {"runs": RUNS, "deadlines_s": {"llm_first_token": FIRST_TOKEN_S, "tts_first_audio": FIRST_AUDIO_S, "stall": STALL_S}}
    for name, once, tts in (("llm", llm_once, False), ("tts", tts_once, True)):
        results[name] = {}
        for kind in KINDS:
            samples = [await once(kind) for _ in range(RUNS)]
            target = deadline(kind, tts=tts) + 0.3
            median = statistics.median(samples)
            results[name][kind] = {"median_ms": round(median * 1000, 1), "target_ms": round(target * 1000), "ok": median <= target,
                                   "samples_ms": [round(s * 1000, 1) for s in samples]}  # fmt: skip
    results["deadlines_s"]["stt_final"] = STT_FINAL_S
    results["stt"] = await stt_results()
    return results


if __name__ == "__main__":
    logger.remove()
    logger.add(sys.stderr, level="ERROR", filter=lambda r: not r["name"].startswith("pipecat"))
    out = asyncio.run(main())
    path = ROOT / "bench" / "results" / "failover.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))

"""Reply guard cost: microseconds per streamed token, over the corpus of tests/processors.

Each corpus reply is cut into tokens of 1 to 8 characters (about what an LLM streams) and fed
through `ReplyGuard.process_frame` as `LLMTextFrame`s between response start and end frames, with
the item's sentence limit; frames it pushes are collected instead of queued. The output is checked
against the corpus. Frames are built before the clock starts. Median of 7 runs; writes
bench/results/reply_guard.json and prints it. Target: at most 50 µs per token.

    .venv/bin/python bench/reply_guard.py
"""

from __future__ import annotations

import asyncio
import json
import platform
import random
import statistics
import sys
import time
from importlib.metadata import version
from pathlib import Path

import yaml
from loguru import logger

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipecat.frames.frames import (  # noqa: E402
    Frame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
)
from pipecat.processors.frame_processor import FrameDirection  # noqa: E402

from processors.reply_guard import ReplyGuard  # noqa: E402

RUNS = 7
TARGET_US = 50.0
CORPUS = yaml.safe_load((ROOT / "tests/processors/reply_corpus.yaml").read_text(encoding="utf-8"))
OUT = ROOT / "bench/results/reply_guard.json"


class _Collecting(ReplyGuard):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.out: list[Frame] = []

    async def push_frame(self, frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM):
        self.out.append(frame)


def _tokens(text: str, rnd: random.Random) -> list[str]:
    out, i = [], 0
    while i < len(text):
        n = rnd.randint(1, 8)
        out.append(text[i : i + n])
        i += n
    return out


async def _run(seed: int) -> tuple[float, int]:
    """One pass over the corpus: (seconds inside process_frame, tokens fed)."""
    rnd = random.Random(seed)
    work = []
    for item in CORPUS:
        tokens = [LLMTextFrame(t) for t in _tokens(item["reply"], rnd)]
        frames = [LLMFullResponseStartFrame(), *tokens, LLMFullResponseEndFrame()]
        work.append((item, _Collecting(max_sentences=item.get("max_sentences", 3)), frames))
    tokens = sum(len(frames) - 2 for _, _, frames in work)
    down = FrameDirection.DOWNSTREAM
    start = time.perf_counter()
    for _, guard, frames in work:
        for frame in frames:
            await guard.process_frame(frame, down)
    elapsed = time.perf_counter() - start
    for item, guard, _ in work:
        said = "".join(f.text for f in guard.out if isinstance(f, LLMTextFrame))
        assert said == item["spoken"], (said, item["spoken"])
    return elapsed, tokens


async def main() -> dict:
    logger.remove()
    await _run(0)  # warm-up: imports, regex and sentencex caches
    runs = [await _run(seed) for seed in range(1, RUNS + 1)]
    per_token = [elapsed / tokens * 1e6 for elapsed, tokens in runs]
    result = {
        "us_per_token": round(statistics.median(per_token), 2),
        "target_us_per_token": TARGET_US,
        "within_target": statistics.median(per_token) <= TARGET_US,
        "runs_us_per_token": [round(x, 2) for x in per_token],
        "tokens_per_run": round(statistics.mean(t for _, t in runs)),
        "replies": len(CORPUS),
        "token_chars": "1-8, random",
        "python": platform.python_version(),
        "pipecat": version("pipecat-ai"),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main()), indent=2))

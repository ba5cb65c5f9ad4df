"""What machine a benchmark ran on, and how fast it was running at the time.

The machines these benchmarks run on differ from day to day (and a shared machine's speed from
hour to hour), so every result file records the CPU and a speed probe beside its figures:
`speed_probe_ms` is the median time of `sum(range(100000))`, a pure-interpreter loop that tracks
how fast the event loops' Python work runs (1.1 ms on the 2026-11-29 Xeon, 2.0-3.2 ms on the AMD
EPYC of 2026-11-28).
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from pathlib import Path


def speed_probe_ms(runs: int = 30) -> float:
    """Median milliseconds of `sum(range(100000))` over `runs` tries."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        sum(range(100000))
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 2)


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str | None:
    """The first `model name` in /proc/cpuinfo; None where there is none (not Linux, or an ARM kernel)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            return value.strip()
    return None


def l2_cache(cache_dir: Path = Path("/sys/devices/system/cpu/cpu0/cache")) -> str | None:
    """CPU 0's level-2 cache size as the kernel writes it ("2048K"); None where it is not exposed."""
    for index in sorted(cache_dir.glob("index*")):
        try:
            if (index / "level").read_text().strip() == "2":
                return (index / "size").read_text().strip()
        except OSError:
            continue
    return None


def describe() -> dict:
    """The machine block every bench result file carries."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "cpu_model": cpu_model(),
        "l2_per_core": l2_cache(),
        "speed_probe_ms": speed_probe_ms(),
    }

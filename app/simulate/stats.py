"""Percentiles as the simulator's reports and the benchmarks quote them."""

from __future__ import annotations

import statistics


def pct(values: list[float], q: int) -> float | None:
    """The q-th percentile (inclusive method), rounded to 0.1; None for no values."""
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 1)
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 1)

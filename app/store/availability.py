"""Opening hours and the slot arithmetic bookings need. Pure: no I/O.

Times are handled as minutes since midnight; an appointment occupies [start, start + duration).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, time

Interval = tuple[int, int]  # [start, end) in minutes since midnight


@dataclass(frozen=True)
class OpeningHours:
    """What a flow says about the business."""

    days: frozenset[int]  # weekday numbers, Monday=0
    open: time
    close: time
    step_min: int = 15  # granularity for offering alternatives (grid anchored at `open`)
    capacity: int = 1  # appointments that may overlap (chairs)

    def __post_init__(self) -> None:
        if not isinstance(self.days, frozenset):
            object.__setattr__(self, "days", frozenset(self.days))
        if not self.days <= frozenset(range(7)):
            raise ValueError(f"opening days must be weekday numbers 0-6, got {sorted(self.days)}")
        if minutes(self.open) >= minutes(self.close):
            raise ValueError(f"opening time {self.open:%H:%M} must be before closing time {self.close:%H:%M}")
        if self.step_min < 1:
            raise ValueError("step_min must be at least 1")
        if self.capacity < 1:
            raise ValueError("capacity must be at least 1")


def minutes(t: time) -> int:
    return t.hour * 60 + t.minute


def clock(m: int) -> time:
    return time(m // 60, m % 60)


def within_hours(d: date, start: int, duration_min: int, hours: OpeningHours) -> bool:
    """The day is open and the whole appointment lies between opening and closing."""
    return (
        d.weekday() in hours.days
        and minutes(hours.open) <= start
        and start + duration_min <= minutes(hours.close)
    )


def fits(start: int, duration_min: int, taken: Sequence[Interval], capacity: int) -> bool:
    """Fewer than `capacity` of `taken` overlap at every instant of [start, start + duration)."""
    end = start + duration_min
    overlapping = [(s, e) for s, e in taken if s < end and start < e]
    if len(overlapping) < capacity:
        return True
    # The overlap count only rises at a start, so its maximum is at `start` or at a later start.
    points = {start} | {s for s, _ in overlapping if s > start}
    return all(sum(s <= p < e for s, e in overlapping) < capacity for p in points)


def free_starts(d: date, duration_min: int, hours: OpeningHours, taken: Sequence[Interval]) -> list[int]:
    """Every free start on the step grid of day `d`, in time order."""
    if d.weekday() not in hours.days:
        return []
    last = minutes(hours.close) - duration_min
    grid: Iterable[int] = range(minutes(hours.open), last + 1, hours.step_min)
    return [s for s in grid if fits(s, duration_min, taken, hours.capacity)]


def by_distance(starts: Iterable[int], requested: int) -> list[int]:
    """Closest to `requested` first; of two equally close, the earlier."""
    return sorted(starts, key=lambda s: (abs(s - requested), s))

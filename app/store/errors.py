"""The store's exceptions, under frontdesk's root error."""

from __future__ import annotations

from datetime import date, time

from app.errors import FrontdeskError


class StoreError(FrontdeskError):
    """The database refused an operation or is in a state this code cannot use."""


class SlotTaken(StoreError):
    """The requested appointment is not free; `alternatives` are the nearest free starts, closest first."""

    def __init__(self, alternatives: list[tuple[date, time]], message: str = "that time is not available"):
        self.alternatives = alternatives
        super().__init__(message)


class BookingNotFound(StoreError):
    """No booking has the given id."""

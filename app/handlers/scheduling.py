"""The salon's booking handlers: availability, booking, finding, moving and cancelling."""

from __future__ import annotations

from datetime import date, time
from typing import Any

from app.brain.speech import join_words, say_date, say_time
from app.flows.handlers import HandlerContext
from app.store import SlotTaken

DEFAULT_DURATION_MIN = 30


def _duration(ctx: HandlerContext, service: str | None = None) -> int:
    durations = ctx.data.get("durations_min", {})
    return int(durations.get(service or ctx.slots.get("service"), DEFAULT_DURATION_MIN))


def _offer(ctx: HandlerContext, d: date, alternatives: list[tuple[date, time]]) -> str:
    if not alternatives:
        return "I'm afraid we're fully booked around then. Could you try another day?"
    words = [say_time(t) if day == d else f"{say_date(day, ctx.now.date())} at {say_time(t)}" for day, t in alternatives]
    return f"I can do {join_words(words, 'or')}. Would one of those work?"


def check_availability(ctx: HandlerContext) -> dict[str, Any] | None:
    """Validator for `time`: refuse a start that is taken, offering the nearest free times."""
    d, t = ctx.slots.get("date"), ctx.value
    if not isinstance(d, date) or not isinstance(t, time) or ctx.hours is None:
        return None  # checked again when the other half arrives
    exclude = ctx.state.get("booking_id")
    duration = _duration(ctx, ctx.state.get("booking_service") if exclude else None)
    if ctx.store.is_free(d, t, duration, ctx.hours, exclude_booking=exclude):
        return None
    alternatives = ctx.store.nearest_free(d, t, duration, ctx.hours, n=2, exclude_booking=exclude)
    return {"ok": False, "message": f"Sorry, {say_time(t)} on {say_date(d, ctx.now.date())} is taken. {_offer(ctx, d, alternatives)}"}


def create_booking(ctx: HandlerContext) -> dict[str, Any]:
    s = ctx.slots
    assert ctx.hours is not None, "the scheduling flow declares its hours"
    try:
        booking = ctx.store.create_booking(
            call_id=ctx.call_id, name=s["name"], service=s["service"], d=s["date"], t=s["time"],
            duration_min=_duration(ctx), phone=s["phone"], hours=ctx.hours,
        )  # fmt: skip
    except SlotTaken as taken:  # someone else booked it since the check
        return {"say": f"Sorry, that time was just taken. {_offer(ctx, s['date'], taken.alternatives)}", "clear": ["time"]}
    ctx.state["booking_id"] = booking.id
    ctx.set_outcome(_booking_outcome("booking", booking))
    return {"booking_id": booking.id}


def find_booking(ctx: HandlerContext) -> dict[str, Any]:
    bookings = ctx.store.bookings_by_phone(ctx.slots["phone"], on_or_after=ctx.now.date())
    if not bookings:
        return {"found": False}
    booking = bookings[0]
    ctx.state["booking_id"] = booking.id
    ctx.state["booking_service"] = booking.service
    when = f"{say_date(booking.date, ctx.now.date())} at {say_time(booking.time)}"
    return {"found": True, "booking_id": booking.id, "set": {"booking_service": booking.service, "booking_when": when}}


def reschedule_booking(ctx: HandlerContext) -> dict[str, Any]:
    assert ctx.hours is not None
    d, t = ctx.slots["date"], ctx.slots["time"]
    try:
        booking = ctx.store.reschedule_booking(ctx.state["booking_id"], d, t, ctx.hours)
    except SlotTaken as taken:
        return {"say": f"Sorry, that time was just taken. {_offer(ctx, d, taken.alternatives)}", "clear": ["time"]}
    ctx.set_outcome(_booking_outcome("reschedule", booking))
    return {"booking_id": booking.id}


def cancel_booking(ctx: HandlerContext) -> dict[str, Any]:
    if not ctx.slots.get("cancel_ok"):
        return {"cancelled": False}
    booking = ctx.store.cancel_booking(ctx.state["booking_id"])
    ctx.set_outcome(_booking_outcome("cancellation", booking))
    return {"cancelled": True}


def _booking_outcome(kind: str, booking) -> dict[str, Any]:
    return {
        "type": kind,
        "name": booking.name,
        "service": booking.service,
        "date": booking.date.isoformat(),
        "time": booking.time.strftime("%H:%M"),
        "phone": booking.phone,
    }

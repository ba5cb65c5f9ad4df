"""Persistent state: call records, bookings and orders in SQLite, with numbered schema migrations."""

from app.store.availability import OpeningHours
from app.store.db import Booking, OrderRecord, Store
from app.store.errors import BookingNotFound, SlotTaken, StoreError

__all__ = ["Booking", "BookingNotFound", "OpeningHours", "OrderRecord", "SlotTaken", "Store", "StoreError"]

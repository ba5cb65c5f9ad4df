"""Deterministic, offline understanding of what callers say: slot values, yes/no, orders.

`normalize` reads one whole answer as a slot's type; `extract` finds values for several slots in
a free utterance; `parse_order` turns an order into cart edits. Pure functions: the current time
is always a parameter.
"""

from app.brain.normalize.datetimes import parse_date, parse_datetime, parse_time
from app.brain.normalize.extract import extract
from app.brain.normalize.numbers import words_to_number
from app.brain.normalize.orders import CartEdit, Catalog, OrderLine, parse_order
from app.brain.normalize.phone import spoken_digits
from app.brain.normalize.slots import SLOT_TYPES, Match, SlotSpec, normalize
from app.brain.normalize.yesno import classify_yes_no

__all__ = [
    "SLOT_TYPES",
    "CartEdit",
    "Catalog",
    "Match",
    "OrderLine",
    "SlotSpec",
    "classify_yes_no",
    "extract",
    "normalize",
    "parse_date",
    "parse_datetime",
    "parse_order",
    "parse_time",
    "spoken_digits",
    "words_to_number",
]

"""The caller's order: lines from the menu's catalog, edits applied in order, prices and read-back."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.brain.normalize import CartEdit
from app.brain.speech import count_words, join_words, plural, say_money
from app.flows.model import Catalog


@dataclass
class Line:
    item: str
    size: str | None
    quantity: int
    extras: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        return {"item": self.item, "size": self.size, "quantity": self.quantity, "extras": list(self.extras)}


@dataclass
class Cart:
    catalog: Catalog
    lines: list[Line] = field(default_factory=list)

    # --- reading --------------------------------------------------------------------------------

    def unit_price(self, line: Line) -> float:
        item = self.catalog.items[line.item]
        base = item.price if isinstance(item.price, float | int) else item.price.get(line.size or "", 0.0)
        return float(base) + sum(self.catalog.extras[e].price for e in line.extras)

    @property
    def total(self) -> float:
        return round(sum(self.unit_price(line) * line.quantity for line in self.lines), 2)

    def needs_size(self) -> Line | None:
        return next((line for line in self.lines if line.size is None and self.sized(line.item)), None)

    def sized(self, item: str) -> bool:
        return isinstance(self.catalog.items[item].price, dict)

    def describe(self, line: Line) -> str:
        name = line.item if not self.sized(line.item) or line.item.endswith("pizza") else f"{line.item} pizza"
        words = f"{count_words(line.quantity)} {line.size + ' ' if line.size else ''}{plural(name, line.quantity)}"
        if line.extras:
            words += f" with {join_words(line.extras)}"
        return words

    def summary(self) -> str:
        return join_words([self.describe(line) for line in self.lines]) or "nothing yet"

    def spoken_total(self) -> str:
        return say_money(self.total, self.catalog.currency)

    def as_json(self) -> list[dict]:
        return [line.as_json() for line in self.lines]

    # --- editing --------------------------------------------------------------------------------

    def find(self, item: str, size: str | None = None) -> Line | None:
        matches = [line for line in self.lines if line.item == item and (size is None or line.size == size)]
        return matches[-1] if matches else None

    def apply(self, edit: CartEdit) -> str | None:
        """Apply one edit; returns what changed, in words, or None when it named nothing in the cart."""
        if edit.action == "clear":
            self.lines.clear()
            return "I've cleared your order"
        if edit.line is None:  # "make it a large", "hold the onions": the line said last
            if not self.lines or edit.action != "change":
                return None
            return self._change(self.lines[-1], edit)
        wanted = edit.line
        if edit.action == "add":
            extras = [e for e in wanted.extras if self.catalog.items[wanted.item].extras]
            size = wanted.size if self.sized(wanted.item) else None
            same = next((l for l in self.lines if l.item == wanted.item and l.size == size and l.extras == extras), None)
            if same:
                same.quantity += wanted.quantity
                line = Line(wanted.item, size, wanted.quantity, extras)
            else:
                line = Line(wanted.item, size, wanted.quantity, extras)
                self.lines.append(line)
            return f"{self.describe(line)}"
        line = self.find(wanted.item, wanted.size) or self.find(wanted.item)
        if line is None:
            return None
        if edit.action == "remove":
            self.lines.remove(line)
            return f"I've taken off the {plural(line.item, line.quantity) if line.quantity > 1 else line.item}"
        return self._change(line, edit)

    def _change(self, line: Line, edit: CartEdit) -> str:
        if edit.size and self.sized(line.item):
            line.size = edit.size
        if edit.quantity:
            line.quantity = edit.quantity
        for extra in edit.add_extras:
            if extra not in line.extras and self.catalog.items[line.item].extras:
                line.extras.append(extra)
        for extra in edit.remove_extras:
            if extra in line.extras:
                line.extras.remove(extra)
        return f"that's now {self.describe(line)}"

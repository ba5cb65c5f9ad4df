"""Located problems: `file:line:col: message` with a hint, collected and reported together."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, order=True)
class Span:
    """A place in a source file; line and column are 1-based, as editors show them."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True)
class Diagnostic:
    span: Span
    message: str
    hint: str | None = None
    code: str = "error"

    def format(self) -> str:
        text = f"{self.span}: {self.message}"
        if self.hint:
            text += f"\n    hint: {self.hint}"
        return text


@dataclass
class Diagnostics:
    """An accumulator passed through every pass, so one run reports every problem."""

    items: list[Diagnostic] = field(default_factory=list)

    def add(self, span: Span, message: str, hint: str | None = None, code: str = "error") -> None:
        self.items.append(Diagnostic(span, message, hint, code))

    def extend(self, other: list[Diagnostic]) -> None:
        self.items.extend(other)

    def __bool__(self) -> bool:
        return bool(self.items)

    def sorted(self) -> list[Diagnostic]:
        return sorted(self.items, key=lambda d: (d.span, d.message))


def display_path(path: Path) -> str:
    """The path as a user typed it: relative to the working directory when it is below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)

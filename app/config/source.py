"""YAML read with the position of every key and value kept, and pydantic errors mapped back to them.

Parsing keeps positions the way Home Assistant's loader does, but beside the data rather than
inside it: `Document.data` is plain Python for pydantic, and `Document.span(path)` answers where
any value (or `key_span(path)`, any key) was written, so even a semantic error found long after
parsing is reported at its line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from app.config.diagnostics import Diagnostic, Span, display_path

Path_ = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


@dataclass
class Document:
    """One parsed YAML file: its data and where each part of it was written."""

    file: str
    data: Any
    value_spans: dict[Path_, Span] = field(default_factory=dict)
    key_spans: dict[Path_, Span] = field(default_factory=dict)
    problems: list[Diagnostic] = field(default_factory=list)

    def span(self, path: Path_) -> Span:
        """Where the value at `path` starts; falls back to the nearest enclosing value."""
        for i in range(len(path), -1, -1):
            if (span := self.value_spans.get(tuple(path[:i]))) is not None:
                return span
        return Span(self.file, 1, 1)

    def key_span(self, path: Path_) -> Span:
        """Where the key of the mapping entry at `path` is written (the value's span otherwise)."""
        return self.key_spans.get(tuple(path)) or self.span(path)


class Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans: only true/false are booleans, so `yes`, `no`, `on` and
    `off` stay words (a flow's examples list says [yes, no] and means the words)."""


Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _mark(file: str, node: yaml.Node) -> Span:
    return Span(file, node.start_mark.line + 1, node.start_mark.column + 1)


class _Builder:
    """Turns a composed YAML node tree into plain data, recording spans by path."""

    def __init__(self, doc: Document):
        self.doc = doc
        self.constructor = Loader("")

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.doc.value_spans[path] = _mark(self.doc.file, node)
        if isinstance(node, yaml.MappingNode):
            result: dict[Any, Any] = {}
            self.constructor.flatten_mapping(node)
            for key_node, value_node in node.value:
                key = self.constructor.construct_object(key_node, deep=True)
                if not isinstance(key, (str, int, float, bool)):
                    self.doc.problems.append(
                        Diagnostic(_mark(self.doc.file, key_node), "a mapping key must be a plain scalar")
                    )
                    continue
                key = str(key) if not isinstance(key, str) else key
                if key in result:
                    first = self.doc.key_spans[path + (key,)]
                    self.doc.problems.append(
                        Diagnostic(
                            _mark(self.doc.file, key_node),
                            f"duplicate key '{key}' (first written at line {first.line})",
                            "YAML keeps only the last one; remove or rename one of them",
                        )
                    )
                self.doc.key_spans[path + (key,)] = _mark(self.doc.file, key_node)
                result[key] = self.build(value_node, path + (key,))
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
        return self.constructor.construct_object(node, deep=True)


def parse_yaml(text: str, file: str) -> Document:
    """Parse YAML text; a syntax error becomes a located problem in the returned document."""
    doc = Document(file=file, data=None)
    try:
        node = yaml.compose(text, Loader=Loader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        doc.problems.append(
            Diagnostic(Span(file, line, col), f"YAML syntax error: {e.problem or e}", _syntax_hint(e))
        )
        return doc
    if node is None:
        doc.data = {}
        doc.value_spans[()] = Span(file, 1, 1)
        return doc
    try:
        doc.data = _Builder(doc).build(node, ())
    except yaml.constructor.ConstructorError as e:
        mark = e.problem_mark
        span = Span(file, mark.line + 1, mark.column + 1) if mark else Span(file, 1, 1)
        doc.problems.append(Diagnostic(span, f"YAML error: {e.problem}"))
    return doc


def load_yaml(path: Path) -> Document:
    """Read and parse one file, naming it as the user would (relative to the working directory)."""
    file = display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        doc = Document(file=file, data=None)
        doc.problems.append(Diagnostic(Span(file, 1, 1), f"cannot read file: {e.strerror or e}"))
        return doc
    return parse_yaml(text, file)


def _syntax_hint(error: yaml.MarkedYAMLError) -> str | None:
    problem = str(error.problem or "")
    if "\\t" in problem or "\t" in problem or "tab" in problem:
        return "indent with spaces, not tabs"
    if "mapping values are not allowed" in problem:
        return "quote a value that contains ': ', or check the indentation of the line above"
    if "could not find expected ':'" in problem:
        return "each entry of a mapping needs 'key: value'"
    return "check the indentation and quoting around this line"


def _data_path(data: Any, loc: tuple) -> tuple[Path_, bool]:
    """The part of a pydantic location that exists in the data (union and validator tags dropped).

    Returns the path and whether the whole location was found (a missing or unknown key is not)."""
    path: list[str | int] = []
    current = data
    complete = True
    for i, part in enumerate(loc):
        if isinstance(current, dict) and part in current:
            current = current[part]
            path.append(part)
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            current = current[part]
            path.append(part)
        elif i == len(loc) - 1:
            complete = False
            path.append(part)
    return tuple(path), complete


def validate(model: type[M], doc: Document, path: Path_ = (), data: Any = None) -> tuple[M | None, list[Diagnostic]]:
    """Validate the data at `path` of `doc` into `model`; every error is mapped to its span."""
    value = doc.data if data is None else data
    try:
        return model.model_validate(value), []
    except ValidationError as e:
        return None, [_diagnostic(doc, path, value, err) for err in e.errors(include_url=False)]


def _diagnostic(doc: Document, base: Path_, data: Any, err: dict[str, Any]) -> Diagnostic:
    loc, _ = _data_path(data, tuple(err["loc"]))
    full = base + loc
    kind = err["type"]
    where = ".".join(str(p) for p in loc)
    if kind == "extra_forbidden":
        return Diagnostic(
            doc.key_span(full), f"unknown key '{loc[-1]}'", "check the spelling; see the README's reference"
        )
    if kind == "missing":
        owner = ".".join(str(p) for p in loc[:-1])
        span = doc.key_span(full[:-1]) if loc[:-1] else doc.span(base)
        return Diagnostic(span, f"{owner + ': ' if owner else ''}missing required key '{loc[-1]}'")
    if kind == "union_tag_invalid":
        tag = str(err.get("ctx", {}).get("discriminator", "")).strip("'")
        expected = str(err.get("ctx", {}).get("expected_tags", "")).replace("'", "")
        path = full + (tag,)
        return Diagnostic(doc.span(path), f"{where}.{tag}: unknown {tag} '{err.get('ctx', {}).get('tag')}'", f"one of: {expected}")
    message = err["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    return Diagnostic(doc.span(full), f"{where}: {message}" if where else message)

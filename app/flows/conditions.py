"""Conditions on slot values, as written in `when:` and `if:` (`fulfilment == 'delivery'`).

A small, safe subset of Python expressions, parsed with `ast` and evaluated by walking the tree:
names (slots, or `result.field` of the last handler), literals, comparisons (`== != < <= > >=
in not in`), `and`, `or`, `not`. Nothing is executed.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_COMPARE = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}


@dataclass(frozen=True)
class Condition:
    source: str
    tree: ast.Expression

    @property
    def names(self) -> frozenset[str]:
        """Top-level names the condition reads (`result` for `result.found`)."""
        return frozenset(n.id for n in ast.walk(self.tree) if isinstance(n, ast.Name))

    def evaluate(self, values: Mapping[str, Any]) -> bool:
        return bool(_eval(self.tree.body, values))


def parse_condition(source: str) -> Condition:
    """Parse a condition; raises ValueError naming what is not allowed."""
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as e:
        raise ValueError(f"condition '{source}' is not valid: {e.msg}") from None
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED):
            raise ValueError(f"condition '{source}' uses {type(node).__name__}, which is not allowed; use names, literals, comparisons, and/or/not")
        if isinstance(node, ast.Attribute) and not isinstance(node.value, ast.Name):
            raise ValueError(f"condition '{source}': only one level of '.' is allowed (result.field)")
    return Condition(source, tree)


_ALLOWED = (
    ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.Compare, ast.Name,
    ast.Load, ast.Attribute, ast.Constant, ast.List, ast.Tuple, *_COMPARE,
)  # fmt: skip


def _eval(node: ast.AST, values: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.BoolOp):
        results = (_eval(v, values) for v in node.values)
        return all(results) if isinstance(node.op, ast.And) else any(results)
    if isinstance(node, ast.UnaryOp):
        return not _eval(node.operand, values)
    if isinstance(node, ast.Compare):
        left = _eval(node.left, values)
        for op, right_node in zip(node.ops, node.comparators):
            right = _eval(right_node, values)
            try:
                if not _COMPARE[type(op)](left, right):
                    return False
            except TypeError:
                return False
            left = right
        return True
    if isinstance(node, ast.Name):
        return values.get(node.id)
    if isinstance(node, ast.Attribute):
        owner = values.get(node.value.id)  # type: ignore[attr-defined]
        return owner.get(node.attr) if isinstance(owner, Mapping) else getattr(owner, node.attr, None)
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_eval(e, values) for e in node.elts]
    raise ValueError(f"unsupported expression {type(node).__name__}")

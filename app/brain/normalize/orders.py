"""Orders said aloud, as edits to a cart: 'two large pepperonis and a coke', 'remove the coke',
'make the pepperoni a medium', 'actually two cokes', 'add olives to the veggie', 'clear my order'.

The utterance is read as clauses (split at 'and', commas, 'then', 'also'); a clause that only
names extras ('and olives') or only a size ('..., large') continues the one before. A clause's
verb decides the edit; a clause without one repeats a remove/change verb before it, else adds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.brain.normalize.choice import cached
from app.brain.normalize.numbers import match_number
from app.brain.normalize.text import Tok, match_phrase, phrase_index, stem, tokenize


@dataclass(frozen=True)
class OrderLine:
    item: str  # catalog item key
    size: str | None = None  # catalog size key
    quantity: int = 1
    extras: tuple[str, ...] = ()  # catalog extra keys


@dataclass(frozen=True)
class Catalog:
    items: dict[str, tuple[str, ...]]  # item key -> synonyms
    sizes: dict[str, tuple[str, ...]]  # size key -> synonyms
    extras: dict[str, tuple[str, ...]]  # extra key -> synonyms
    sized_items: frozenset[str] = frozenset()  # items that take a size


@dataclass(frozen=True)
class CartEdit:
    action: str  # 'add' | 'remove' | 'change' | 'clear'
    line: OrderLine | None = None  # add: the new line; remove/change: which item (size when said); None: the last line
    size: str | None = None  # change: the new size
    quantity: int | None = None  # change: the new quantity
    add_extras: tuple[str, ...] = ()
    remove_extras: tuple[str, ...] = ()


_CLEAR = re.compile(
    r"\b(?:(?:clear|cancel|reset|scrap|scratch|delete|empty|wipe|restart|redo|remove|forget|drop)\s+(?:out\s+)?"
    r"(?:(?:the|my|this|that|our|whole|entire|of)\s+)*(?:order|cart|basket|everything|it all|all of it|all that|the lot)\b"
    r"|start\s+(?:(?:the|my|this|our|whole)\s+)*order\s+(?:over|again)|start\s+over\s+(?:with|on)\s+(?:the\s+|my\s+)?order"
    r"|start\s+(?:a\s+)?new\s+order|start\s+(?:all\s+)?over\s+from\s+scratch)"
)
_VERBS = {
    "remove": "remove|take off|take away|cancel|delete|drop|scratch|get rid of|forget|forget about|lose|don't want|do not want|"
    "don't need|no longer want|leave out|leave off|ditch|skip",
    "change": "make|change|switch|swap|turn|upgrade|downgrade|update|replace",
    "add": "add|also|another|i'll have|i'd like|i would like|i want|can i get|can i have|could i get|could i have|get me|"
    "give me|i'll take|throw in|put|i'll get|let me get|let me have|we'll have|we'd like|plus|and also",
    "fix": "actually|sorry|wait|oops|correction|i meant|i mean|no wait|make that instead",
}
_MARKS = {
    "with": "with|topped with|w|along with",
    "without": "without|hold the|minus|no|leave off the|skip the|but no|and no|instead of|rather than|not",
    "to": "to|into|for",
    "on": "on|onto|on the|in|from|off|off of|out of",
    "sep": "and|then|also|plus|and then|as well as",
}
_PHRASES = phrase_index([p for g in (*_VERBS.values(), *_MARKS.values()) for p in g.split("|")])
_KIND: dict[tuple[str, ...], tuple[str, str]] = {}
for _group in (_MARKS, _VERBS):  # verbs win where a phrase is in both ('also', 'plus')
    for _name, _ps in _group.items():
        for _p in _ps.split("|"):
            _KIND[tuple(_p.split())] = ("verb", _name) if _group is _VERBS else (_name, _name)
for _p in ("also", "plus", "and also"):
    _KIND[tuple(_p.split())] = ("verb", "add")
_PIZZA = frozenset({"pizza", "pie"})


@dataclass(slots=True)
class _El:
    kind: str  # qty size item extra verb with without to on sep other
    value: str | int
    i: int
    explicit: bool = True  # for qty: a number said, not just 'a'


Table = dict[str, list[tuple[tuple[str, ...], str, str]]]


def _table(catalog: Catalog) -> Table:
    return cached(catalog, lambda: _build_table(catalog))


def _build_table(catalog: Catalog) -> Table:
    """Items, extras and sizes as stemmed phrases keyed by first word, longest first."""
    table: Table = {}
    for kind, options in (("item", catalog.items), ("extra", catalog.extras), ("size", catalog.sizes)):
        for key, synonyms in options.items():
            for phrase in (key, *synonyms):
                parts = tuple(stem(t.text) for t in tokenize(phrase.replace("_", " ")))
                if parts:
                    table.setdefault(parts[0], []).append((parts, kind, key))
    for entries in table.values():
        entries.sort(key=lambda e: -len(e[0]))  # stable: items before extras before sizes on ties
    return table


def _elements(toks: tuple[Tok, ...], table: Table) -> list[_El]:
    stems = [stem(t.text) for t in toks]
    out: list[_El] = []
    n, k = len(toks), 0
    while k < n:
        tok = toks[k]
        if tok.brk and out and out[-1].kind != "sep":
            out.append(_El("sep", ",", k))
        got = _catalog_match(stems, toks, k, table)
        if got:
            kind, key, j = got
            out.append(_El(kind, key, k))
            k = j
            continue
        if stems[k] in _PIZZA or tok.text in ("extra", "the", "my", "that", "it", "them", "those", "some", "of"):
            k += 1
            continue
        j = match_phrase(toks, k, n, _PHRASES)
        if j > k:
            kind, name = _KIND[tuple(t.text for t in toks[k:j])]
            if kind == "without" and tok.text == "no" and (j >= n or toks[j].brk):
                k = j  # 'no, ...' is an interjection
                continue
            out.append(_El(kind, name, k))
            if tok.text == "another":
                out.append(_El("qty", 1, k))
            k = j
            continue
        if tok.text in ("take", "taking") and _later(toks, k, ("off", "out", "away")):
            out.append(_El("verb", "remove", k))
            k += 1
            continue
        qty = _quantity(toks, k)
        if qty:
            value, j, explicit = qty
            out.append(_El("qty", value, k, explicit))
            k = j
            continue
        k += 1
    return out


def _catalog_match(stems: list[str], toks: tuple[Tok, ...], k: int, table: Table) -> tuple[str, str, int] | None:
    for parts, kind, key in table.get(stems[k], ()):
        j = k + len(parts)
        if j <= len(stems) and all(stems[k + m] == p for m, p in enumerate(parts)) and not any(toks[k + m].brk for m in range(1, len(parts))):
            return kind, key, j
    return None


def _later(toks: tuple[Tok, ...], k: int, words: tuple[str, ...]) -> bool:
    for m in range(k + 1, min(len(toks), k + 7)):
        if toks[m].brk:
            return False
        if toks[m].text in words:
            return True
    return False


def _quantity(toks: tuple[Tok, ...], k: int) -> tuple[int, int, bool] | None:
    """(count, token after, said as a number) for 'a', 'two', 'a couple of', 'a dozen', '3'."""
    n, w = len(toks), toks[k].text
    j = k + (w in ("a", "an") and k + 1 < n and toks[k + 1].text in ("couple", "pair"))
    if toks[j].text in ("couple", "pair"):
        j += 1
        return 2, j + (j < n and toks[j].text == "of"), True
    if w in ("a", "an") and not (k + 1 < n and toks[k + 1].text in ("dozen", "hundred")):
        return 1, k + 1, False
    got = match_number(toks, k)
    if got and isinstance(got[0], int) and 1 <= got[0] <= 100:
        return got[0], got[1], True
    return None


def _clauses(els: list[_El]) -> list[list[_El]]:
    clauses: list[list[_El]] = [[]]
    for el in els:
        if el.kind == "sep":
            if clauses[-1]:
                clauses.append([])
        else:
            clauses[-1].append(el)
    merged: list[list[_El]] = []
    dangling: list[_El] = []  # "one medium, margherita": a size said before a pause, then the item
    for clause in clauses:
        kinds = {e.kind for e in clause}
        if clause and kinds <= {"size", "qty"} and "size" in kinds and not (merged and any(e.kind == "item" for e in merged[-1])):
            dangling += clause
            continue
        if dangling and "item" in kinds:
            clause, dangling = dangling + clause, []
            kinds = {e.kind for e in clause}
        extras_only = "extra" in kinds and kinds <= {"extra", "with", "without", "qty"} and all(not e.explicit for e in clause if e.kind == "qty")
        size_only = kinds == {"size"} or (kinds == {"size", "qty"} and all(not e.explicit for e in clause if e.kind == "qty"))
        if merged and (extras_only or size_only) and any(e.kind == "item" for e in merged[-1]):
            merged[-1].extend(clause)
        elif clause:
            merged.append(clause)
    if dangling:
        merged.append(dangling)
    return merged


def parse_order(text: str, catalog: Catalog) -> list[CartEdit]:
    """Cart edits for an order; [] when nothing in it names the catalog."""
    flat = " ".join(t.text for t in tokenize(text))
    if _CLEAR.search(flat):
        return [CartEdit("clear")]
    table = _table(catalog)
    edits: list[CartEdit] = []
    carried: str | None = None
    for clause in _clauses(_elements(tokenize(text), table)):
        verbs = [e.value for e in clause if e.kind == "verb"]
        verb = next((v for v in verbs if v in ("remove", "change")), None) or next((v for v in verbs if v == "add"), None)
        verb = verb or ("fix" if "fix" in verbs else None) or carried
        edits.extend(_clause_edits(clause, verb, catalog))
        carried = verb if verb in ("remove", "change") else None
    return edits


def _clause_edits(clause: list[_El], verb: str | None, catalog: Catalog) -> list[CartEdit]:
    items = [e for e in clause if e.kind == "item"]
    pos, neg = _extras(clause)
    first_item = items[0].i if items else None
    if verb == "remove":
        if items and (pos or neg):
            return [CartEdit("change", _target(clause, items[0], catalog), remove_extras=pos + neg)]
        if items:
            return [CartEdit("remove", _target(clause, it, catalog)) for it in items]
        return [CartEdit("change", None, remove_extras=pos + neg)] if pos or neg else []
    removed = [it for it in items if _after_no(clause, it)]
    edits = [CartEdit("remove", _target(clause, it, catalog)) for it in removed]
    items = [it for it in items if it not in removed]
    if verb == "change":
        return edits + _change(clause, items, pos, neg, catalog)
    qtys = [e for e in clause if e.kind == "qty" and e.explicit]
    if verb == "fix" and items and qtys and qtys[0].i < items[0].i:
        line = _target(clause, items[0], catalog)
        return edits + [CartEdit("change", line, quantity=int(qtys[0].value))]
    leading = [e for e in clause if e.kind == "extra" and (first_item is None or e.i < first_item)]
    if items and leading and any(e.kind in ("to", "on") and leading[-1].i < e.i < items[0].i for e in clause):
        line = _target(clause, items[0], catalog, size_before_only=True)
        add = tuple(e for e in pos if e in {x.value for x in leading})
        rem = tuple(e for e in neg if e in {x.value for x in leading})
        return edits + [CartEdit("change", line, add_extras=add, remove_extras=rem)]
    if not items:
        return edits + ([CartEdit("change", None, add_extras=pos, remove_extras=neg)] if pos or neg else [])
    return edits + _adds(clause, items, catalog)


def _extras(clause: list[_El]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Extras said with 'with' (or none) and with 'no' / 'without' / 'hold the'."""
    pos: list[str] = []
    neg: list[str] = []
    negative = False
    for e in clause:
        if e.kind == "without":
            negative = True
        elif e.kind in ("with", "item", "verb"):
            negative = False
        elif e.kind == "extra":
            (neg if negative else pos).append(str(e.value))
    return tuple(dict.fromkeys(pos)), tuple(dict.fromkeys(neg))


def _after_no(clause: list[_El], item: _El) -> bool:
    before = [e for e in clause if e.i < item.i and e.kind not in ("qty", "size")]
    return bool(before) and before[-1].kind == "without"


def _target(clause: list[_El], item: _El, catalog: Catalog, size_before_only: bool = False) -> OrderLine:
    """Which line an edit is about: the item, and a size said just before it."""
    prev = [e for e in clause if e.i < item.i]
    size = prev[-1].value if prev and prev[-1].kind == "size" else None
    if size is None and len(prev) >= 2 and prev[-1].kind == "qty" and prev[-2].kind == "size":
        size = prev[-2].value
    return OrderLine(str(item.value), str(size) if size and item.value in catalog.sized_items else None)


def _change(clause: list[_El], items: list[_El], pos: tuple[str, ...], neg: tuple[str, ...], catalog: Catalog) -> list[CartEdit]:
    qty = next((int(e.value) for e in clause if e.kind == "qty" and e.explicit), None)
    if len(items) >= 2 and items[0].value != items[1].value:  # 'swap the coke for a sprite'
        old, new = items[0], items[1]
        sizes = [e for e in clause if e.kind == "size" and e.i > old.i]
        size = str(sizes[0].value) if sizes and new.value in catalog.sized_items else None
        quantity = next((int(e.value) for e in clause if e.kind == "qty" and e.explicit and e.i > old.i), 1)
        return [CartEdit("remove", _target(clause, old, catalog)), CartEdit("add", OrderLine(str(new.value), size, quantity, pos))]
    sizes_after = [e for e in clause if e.kind == "size" and items and e.i > items[0].i]
    sizes_before = [e for e in clause if e.kind == "size" and (not items or e.i < items[0].i)]
    if not items:
        size = str(sizes_before[-1].value) if sizes_before else None
        if size or qty or pos or neg:
            return [CartEdit("change", None, size=size, quantity=qty, add_extras=pos, remove_extras=neg)]
        return []
    item = items[0]
    if sizes_after:
        line, size = _target(clause, item, catalog), str(sizes_after[-1].value)
    else:
        line = OrderLine(str(item.value))
        size = str(sizes_before[-1].value) if sizes_before else None
    if item.value not in catalog.sized_items:
        size = None
    if size is None and qty is None and not pos and not neg:
        return []
    return [CartEdit("change", line, size=size, quantity=qty, add_extras=pos, remove_extras=neg)]


def _adds(clause: list[_El], items: list[_El], catalog: Catalog) -> list[CartEdit]:
    edits: list[CartEdit] = []
    for n, item in enumerate(items):
        lo = items[n - 1].i if n else -1
        hi = items[n + 1].i if n + 1 < len(items) else 10**9
        before = [e for e in clause if lo < e.i < item.i]
        after = [e for e in clause if item.i < e.i < hi]
        cut = next((k for k, e in enumerate(after) if e.kind == "qty"), len(after))
        qtys = [e for e in before if e.kind == "qty"]
        sizes = [e for e in before if e.kind == "size"] or [e for e in after[:cut] if e.kind == "size"]
        size = str(sizes[-1].value) if sizes and item.value in catalog.sized_items else None
        extras, negative = [], False
        for e in after[:cut]:
            if e.kind == "without":
                negative = True
            elif e.kind == "with":
                negative = False
            elif e.kind == "extra" and not negative:
                extras.append(str(e.value))
        quantity = int(qtys[-1].value) if qtys else 1
        edits.append(CartEdit("add", OrderLine(str(item.value), size, quantity, tuple(dict.fromkeys(extras)))))
    return edits

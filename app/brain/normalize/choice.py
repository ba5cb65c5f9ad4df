"""One of a slot's choices, by its key or a synonym; plurals tolerated ('beard trims', 'haircuts')."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from app.brain.normalize.text import Tok, stem, strip_filler, tokenize

Index = dict[str, list[tuple[tuple[str, ...], str]]]  # first stemmed word -> (stemmed phrase, key), longest first
_ARTICLES = frozenset({"a", "an", "the", "some", "just", "one", "please", "get", "have", "do", "book", "like", "want", "for", "with"})
_cache: dict[int, tuple[object, object]] = {}  # id(owner) -> (owner, built value)
T = TypeVar("T")


def phrase_table(options: dict[str, tuple[str, ...]]) -> Index:
    """Each key and synonym as stemmed words, keyed by first word, longest first."""
    index: Index = {}
    for key, synonyms in options.items():
        for phrase in (key, *synonyms):
            parts = tuple(stem(t.text) for t in tokenize(phrase.replace("_", " ")))
            if parts and (parts, key) not in index.get(parts[0], []):
                index.setdefault(parts[0], []).append((parts, key))
    for entries in index.values():
        entries.sort(key=lambda e: len(e[0]), reverse=True)
    return index


def cached(owner: object, build: Callable[[], T]) -> T:
    """`build()` once per owner object (SlotSpec and Catalog hold dicts, so they are not hashable)."""
    hit = _cache.get(id(owner))
    if hit is not None and hit[0] is owner:
        return hit[1]  # type: ignore[return-value]
    if len(_cache) > 256:
        _cache.clear()
    value = build()
    _cache[id(owner)] = (owner, value)
    return value


def choice_index(owner: object, options: dict[str, tuple[str, ...]]) -> Index:
    """The phrase table for `owner` (a SlotSpec), built once."""
    return cached(owner, lambda: phrase_table(options))


def match_choice(stems: list[str], toks: tuple[Tok, ...], i: int, end: int, index: Index) -> tuple[str, int] | None:
    """The key of the longest phrase starting at token i, and the token after it."""
    for parts, key in index.get(stems[i], ()):
        j = i + len(parts)
        if j <= end and all(stems[i + k] == p for k, p in enumerate(parts)) and not any(toks[i + k].brk for k in range(1, len(parts))):
            return key, j
    return None


def stems_of(toks: tuple[Tok, ...]) -> list[str]:
    return [stem(t.text) for t in toks]


def find_choices(toks: tuple[Tok, ...], used: bytearray, index: Index) -> list[tuple[str, int, int]]:
    stems = stems_of(toks)
    found: list[tuple[str, int, int]] = []
    k, n = 0, len(toks)
    while k < n:
        if not used[k]:
            end = k
            while end < n and not used[end]:
                end += 1
            got = match_choice(stems, toks, k, end, index)
            if got:
                found.append((got[0], k, got[1]))
                k = got[1]
                continue
        k += 1
    return found


def normalize_choice(owner: object, options: dict[str, tuple[str, ...]], text: str) -> str | None:
    """The key when everything said, apart from filler and articles, names that one choice."""
    toks = tokenize(text)
    lo, hi = strip_filler(toks)
    index = choice_index(owner, options)
    stems = stems_of(toks)
    keys: set[str] = set()
    k = lo
    while k < hi:
        got = match_choice(stems, toks, k, hi, index)
        if got:
            keys.add(got[0])
            k = got[1]
        elif toks[k].text in _ARTICLES or toks[k].text in ("i'd", "i", "would", "we", "an", "it", "please"):
            k += 1
        else:
            return None
    return keys.pop() if len(keys) == 1 else None

"""Email addresses, written or spelled out: 'john dot smith at example dot com', 'j o h n at gmail dot com'."""

from __future__ import annotations

import re

from app.brain.normalize.numbers import DIGIT_WORDS
from app.brain.normalize.text import Tok, strip_filler, tokenize

_SYMBOLS = {"dot": ".", "period": ".", "point": ".", "underscore": "_", "dash": "-", "hyphen": "-", "plus": "+"}
_STOP = frozenset(
    """is was my me email address it's its that's the at to and or you can reach send write
    please use i'm am an of on by for with from this here it""".split()
)
_VALID = re.compile(r"[a-z0-9](?:[a-z0-9._%+-]*[a-z0-9_])?@[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9-]+)*\.[a-z]{2,24}")
_MAX_LOCAL = 12


def _piece(tok: Tok) -> str | None:
    """What one spoken token adds to an address."""
    w = tok.text
    if w in _STOP:
        return None
    if w in _SYMBOLS:
        return _SYMBOLS[w]
    if w in DIGIT_WORDS and w not in ("o", "oh", "nil"):
        return DIGIT_WORDS[w]
    if tok.kind in ("digits", "word") and re.fullmatch(r"[a-z0-9'-]+", w):
        return w.replace("'", "")
    return None


def _is_at(toks: tuple[Tok, ...], k: int) -> int:
    """Tokens taken by an 'at' sign at k ('at', 'at sign', '@'), else 0."""
    if toks[k].kind == "at":
        return 1
    if toks[k].text == "at":
        return 2 if k + 1 < len(toks) and toks[k + 1].text == "sign" else 1
    return 0


def _domain(toks: tuple[Tok, ...], j: int, end: int) -> tuple[str, int] | None:
    """'gmail dot com', 'g mail dot co dot uk', 'example.com' from token j: (domain, token after)."""
    labels: list[str] = []
    cur, k = "", j
    while k < end:
        tok = toks[k]
        if k > j and tok.brk:
            break
        if cur and tok.gap.strip() == ".":
            labels.append(cur)
            cur = ""
        if tok.text in ("dot", "period", "point"):
            if not cur:
                break
            labels.append(cur)
            cur, k = "", k + 1
            continue
        piece = _piece(tok)
        if piece is None or piece in ("+", "_", "."):
            break
        if labels and cur and len(piece) > 1:
            break  # after a dot a label is one word or spelled letters
        cur, k = cur + piece, k + 1
    if cur:
        labels.append(cur)
    elif labels:
        k -= 1  # a trailing 'dot' belongs to the sentence
    if len(labels) < 2 or not labels[-1].isalpha() or len(labels[-1]) < 2:
        return None
    return ".".join(labels), k


def match_email(toks: tuple[Tok, ...], at: int, lo: int, end: int) -> tuple[str, int, int] | None:
    """The spoken address around the 'at' at token `at`: (address, first token, token after)."""
    width = _is_at(toks, at)
    if not width:
        return None
    dom = _domain(toks, at + width, end)
    if dom is None:
        return None
    local, k = "", at
    while k > lo and at - k < _MAX_LOCAL and not toks[k].brk:
        piece = _piece(toks[k - 1])
        if piece is None:
            break
        local, k = piece + local, k - 1
    address = f"{local}@{dom[0]}"
    return (address, k, dom[1]) if local and _VALID.fullmatch(address) else None


def find_emails(toks: tuple[Tok, ...], used: bytearray) -> list[tuple[str, int, int]]:
    found: list[tuple[str, int, int]] = []
    n = len(toks)
    for k, tok in enumerate(toks):
        if used[k]:
            continue
        if tok.kind == "email":
            if _VALID.fullmatch(tok.text):
                found.append((tok.text, k, k + 1))
        elif tok.text == "at" or tok.kind == "at":
            lo = k
            while lo > 0 and not used[lo - 1]:
                lo -= 1
            end = k
            while end < n and not used[end]:
                end += 1
            got = match_email(toks, k, lo, end)
            if got:
                found.append(got)
    return found


def normalize_email(text: str) -> str | None:
    toks = tokenize(text)
    lo, hi = strip_filler(toks)
    if hi - lo == 1 and toks[lo].kind == "email":
        return toks[lo].text if _VALID.fullmatch(toks[lo].text) else None
    for k in range(lo, hi):
        if _is_at(toks, k):
            got = match_email(toks, k, lo, hi)
            return got[0] if got and got[1] == lo and got[2] == hi else None
    return None

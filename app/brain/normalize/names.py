"""People's names: 'I'm Tom Baker', 'my name is jane doe', 'this is Sam', 'call me Bo' -> title case."""

from __future__ import annotations

import re

from app.brain.normalize.dates import MONTHS, WEEKDAYS
from app.brain.normalize.numbers import NUMBER_WORDS, ORDINALS
from app.brain.normalize.text import HESITATIONS, Tok, match_phrase, phrase_index, strip_filler, tokenize

MAX_WORDS = 4
STRONG_CUES = phrase_index(
    [
        "i'm", "im", "i am", "my name is", "my name's", "my names", "name is", "name's", "the name is",
        "this is", "call me", "it's under", "its under", "under the name", "under the name of", "put it under",
        "booking is under", "order is under", "it is under", "the name's", "my first name is", "first name is",
        "my full name is", "full name is",
    ]
)  # fmt: skip
WEAK_CUES = phrase_index(["for", "under", "it's", "its", "it is", "name", "for mister", "for miss"])
_TITLES = frozenset({"mr", "mrs", "ms", "miss", "mister", "dr", "doctor", "missus"})
_NOT_NAMES = frozenset(
    """a an the and or but so if then than that this these those there here it its it's i i'm im me my mine you
    your we us our they them he she him her his is am are was were be been being do does did doing done have has
    had having will would shall should can could may might must not no nope yes yeah yep yup sure ok okay
    alright right please thanks thank hello hi hey bye goodbye sorry excuse pardon well just only also too very
    really actually maybe probably still already about around at on in by for with without from to of off up
    down out over under into onto again all any some none each every both either neither what which who whom whose
    when where why how calling looking trying wondering hoping going gonna wanna want wanted need needed like
    would'd i'd i'll i've we're we'll they're you're that's there's what's let's don't doesn't didn't can't
    won't isn't wasn't aren't free available busy good great fine cool perfect fantastic awesome nice happy glad
    ready done interested new old after before later soon now today tonight tomorrow yesterday morning afternoon
    evening night noon midnight week weekend month year day days time times date am pm o'clock oclock
    book booking booked appointment reservation order ordering pickup pick delivery deliver takeout call calling
    phone number email address name first last full hair haircut cut color colour trim beard blowout cancel
    reschedule change make get give take have help speak talk person someone human agent manager thing things
    something anything nothing everything pizza coke water please same one ones here's know think guess mean
    said say says tell told told see check back again else other another more less much many few lot lots
    kind sort bit little big large small medium regular extra""".split()
)
_NAMEISH = frozenset({"will", "may", "june", "april", "august", "bill", "mark", "grace", "hope", "joy", "faith", "rose", "sunny"})
_NAME_RE = re.compile(r"[a-z][a-z'’-]*")


def is_name_word(tok: Tok) -> bool:
    w = tok.text
    if tok.kind != "word" or not _NAME_RE.fullmatch(w) or w in _NOT_NAMES or w in NUMBER_WORDS or w in ORDINALS or w in HESITATIONS:
        return False
    if w in WEEKDAYS or w in MONTHS or w.endswith("n't"):
        return False
    if len(w) > 5 and w.endswith("ing") and not tok.cap:
        return False
    return len(w) > 1


def _nameish(toks: tuple[Tok, ...], j: int, end: int) -> bool:
    """'Will', 'June', 'May' are names when capitalised or followed by another name word."""
    if toks[j].text not in _NAMEISH:
        return False
    return toks[j].cap or (j + 1 < end and not toks[j + 1].brk and is_name_word(toks[j + 1]))


def name_run(toks: tuple[Tok, ...], i: int, end: int, used: bytearray | None = None) -> int:
    """Token index after the name words starting at i (i itself when none)."""
    j = i
    if j < end and toks[j].text in _TITLES and j + 1 < end:
        j += 1
    while j < end and j - i < MAX_WORDS and (used is None or not used[j]) and (j == i or not toks[j].brk or toks[j].gap.strip() == "-"):
        if not is_name_word(toks[j]) and not _nameish(toks, j, end):
            break
        j += 1
    if j < end and j - i == MAX_WORDS and is_name_word(toks[j]) and not toks[j].brk:
        return i  # too long to be a name
    return j if j > i and not (toks[i].text in _TITLES and j == i + 1) else i


def title_name(text: str, toks: tuple[Tok, ...], i: int, j: int) -> str:
    """'tom baker' -> 'Tom Baker', "o'neil" -> "O'Neil", 'mary-jane' -> 'Mary-Jane', 'McDonald' kept."""
    out = []
    for k in range(i, j):
        raw = text[toks[k].start : toks[k].end].replace("’", "'")
        if k > i:
            out.append("-" if toks[k].gap == "-" else " ")
        if raw.isupper() or raw.islower():
            raw = "-".join(_cap(part) for part in raw.lower().split("-"))
        else:
            raw = raw[0].upper() + raw[1:]
        out.append(raw)
    return "".join(out)


def _cap(word: str) -> str:
    head, sep, tail = word.partition("'")
    if sep and len(head) == 1 and tail:
        return head.upper() + "'" + tail[0].upper() + tail[1:]
    return word[:1].upper() + word[1:]


def find_names(text: str, toks: tuple[Tok, ...], used: bytearray, *, weak: bool) -> list[tuple[str, int, int]]:
    """Names after a cue ('I'm', 'my name is', 'this is'; with `weak` also 'for', 'under', "it's")."""
    found: list[tuple[str, int, int]] = []
    n = len(toks)
    k = 0
    while k < n:
        if used[k]:
            k += 1
            continue
        j = match_phrase(toks, k, n, STRONG_CUES)
        strong = j > k
        if not strong and weak:
            j = match_phrase(toks, k, n, WEAK_CUES)
        while k < j < n and toks[j].text in HESITATIONS:
            j += 1
        if j > k and j < n and not any(used[k:j]):
            e = name_run(toks, j, n, used)
            if e > j and (strong or weak and (e - j >= 2 or toks[j].cap)):
                found.append((title_name(text, toks, j, e), k, e))
                k = e
                continue
        k += 1
    return found


def normalize_name(text: str) -> str | None:
    toks = tokenize(text)
    lo, hi = strip_filler(toks)
    j = match_phrase(toks, lo, hi, STRONG_CUES)
    if j > lo:
        lo, hi = strip_filler(toks, j, hi)
    if lo >= hi:
        return None
    end = name_run(toks, lo, hi)
    return title_name(text, toks, lo, end) if end == hi else None

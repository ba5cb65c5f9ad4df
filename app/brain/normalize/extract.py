"""Slot values anywhere in a free utterance, several at once, corrections included.

Values with an unambiguous shape or a cue are taken for any slot, the most distinctive first, and
each claims its words so no other slot reuses them: emails; 10/11-digit phone numbers; dates
(weekdays, 'tomorrow', months, 'the 14th'); times with am/pm, o'clock, 'half past', a colon or a
cue ('at eleven'); choice synonyms; written codes; names after a cue ("I'm", 'my name is', 'this
is', 'call me', 'for' + two words); other 7-15 digit runs; numbers next to the slot's name. Bare
values ('eleven', 'Tom Baker', 'yes', '14') go only to `expected`, and only when no cued value
for it was found. A value right after 'not' / 'instead of' / 'rather than' is dropped. When a slot
is mentioned twice, the last mention wins ('Tuesday, no wait, Wednesday').
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time

from app.brain.normalize.choice import choice_index, find_choices
from app.brain.normalize.dates import DateHit, match_date
from app.brain.normalize.datetimes import combine
from app.brain.normalize.email import find_emails
from app.brain.normalize.names import STRONG_CUES, find_names, name_run, title_name
from app.brain.normalize.numbers import match_number
from app.brain.normalize.pattern import compiled, find_codes
from app.brain.normalize.phone import PHONE_MIN, best_suffix, clean_phone, match_pieces
from app.brain.normalize.slots import Match, SlotSpec
from app.brain.normalize.text import Tok, match_phrase, stem, strip_filler, tokenize
from app.brain.normalize.times import PARTS, TimeHit, match_time, part_of_day
from app.brain.normalize.yesno import match_yes_no

_DATE_PREPS = frozenset({"on", "for", "by", "until", "till", "from", "before", "after"})
_TIME_CUES = frozenset({"at", "around", "@"})
_TIME_SOFT = frozenset({"about", "around", "say", "like", "maybe", "roughly", "approximately", "exactly", "the", "earliest"})
_TYPE_WORDS = {
    "date": {"date", "day"}, "time": {"time"}, "datetime": {"time", "date"}, "phone": {"number", "phone", "cell", "mobile"},
    "name": {"name"}, "email": {"email"},
}  # fmt: skip
_LINKS = frozenset({"to", "is", "be", "as", "of", "at", "the", "for", "it", "was", "should", "will", "my", "number"})


@dataclass(slots=True)
class _Cand:
    start: int
    end: int
    value: object


class _State:
    def __init__(self, text: str, specs: list[SlotSpec], now: datetime, expected: str | None):
        self.text, self.now = text, now
        self.toks = tokenize(text)
        self.n = len(self.toks)
        self.used = bytearray(self.n)
        self.specs = specs
        self.found: dict[str, list[_Cand]] = {s.name: [] for s in specs}
        self.expected = next((s for s in specs if s.name == expected), None)
        self.part = part_of_day(self.toks)
        self.dates: list[tuple[int, int, DateHit]] = []
        self.times: list[tuple[int, int, TimeHit]] = []

    def of_type(self, *kinds: str) -> list[SlotSpec]:
        return [s for s in self.specs if s.type in kinds]

    def free_end(self, i: int) -> int:
        j = i
        while j < self.n and not self.used[j]:
            j += 1
        return j

    def claim(self, specs: list[SlotSpec], i: int, j: int, value: object) -> None:
        """Mark toks[i:j] used and give the value to the fitting spec (unless negated)."""
        self.used[i:j] = b"\x01" * (j - i)
        if not specs or self.negated(i):
            return
        self.found[self.pick(specs, i).name].append(_Cand(i, j, value))

    def pick(self, specs: list[SlotSpec], i: int) -> SlotSpec:
        if len(specs) == 1:
            return specs[0]
        for spec in specs:
            if self.named_before(i, _name_words(spec)):
                return spec
        if self.expected is not None and self.expected in specs:
            return self.expected
        return next((s for s in specs if not self.found[s.name]), specs[0])

    def named_before(self, i: int, names: set[str]) -> bool:
        """The slot's name said just before token i ('the time to 3', 'my number is')."""
        k = i - 1
        while k >= 0 and i - k <= 4:
            w = self.toks[k].text
            if stem(w) in names or w in names or (w.endswith("'s") and w[:-2] in names):
                return True
            if w not in _LINKS:
                return False
            k -= 1
        return False

    def negated(self, i: int) -> bool:
        t = self.toks
        if i >= 1 and t[i - 1].text in ("not", "except") and not t[i].brk:
            return True
        return i >= 2 and (t[i - 2].text, t[i - 1].text) in (("instead", "of"), ("rather", "than"))


def _name_words(spec: SlotSpec) -> set[str]:
    return {stem(w) for w in spec.name.lower().replace("-", "_").split("_") if w} | _TYPE_WORDS.get(spec.type, set())


def extract(text: str, specs: list[SlotSpec], *, now: datetime, expected: str | None = None) -> dict[str, Match]:
    """Values for any of `specs` found anywhere in `text`; see the module docstring."""
    st = _State(text, specs, now, expected)
    if not st.n or not specs:
        return {}
    for phase in _PHASES:
        phase(st)
    if st.expected is not None and not st.found[st.expected.name]:
        _BARE.get(st.expected.type, lambda s: None)(st)
    out: dict[str, Match] = {}
    for spec in specs:
        if spec.type == "datetime":
            _datetime_value(st, spec)
        cands = st.found[spec.name]
        if cands:
            c = max(cands, key=lambda c: c.start)
            out[spec.name] = Match(spec.name, c.value, st.toks[c.start].start, st.toks[c.end - 1].end)
    return out


# --- phases, most distinctive first ---------------------------------------------------------------


def _emails(st: _State) -> None:
    specs = st.of_type("email")
    if specs:
        for address, i, j in find_emails(st.toks, st.used):
            st.claim(specs, i, j, address)


def _phones(st: _State, strong: bool) -> None:
    specs = st.of_type("phone")
    if not specs:
        return
    i = 0
    while i < st.n:
        if st.used[i]:
            i += 1
            continue
        pieces = match_pieces(st.toks, i, st.n, st.used)
        if not pieces:
            i += 1
            continue
        kept = best_suffix(pieces)
        digits = "".join(p[2] for p in kept)
        full = len(digits) == 10 or (len(digits) == 11 and digits[0] == "1")
        number = clean_phone(digits, PHONE_MIN)
        if number and (full or not strong):
            st.claim(specs, kept[0][0], kept[-1][1], number)
        i = pieces[-1][1]


def _dates(st: _State) -> None:
    specs = st.of_type("date")
    if not st.of_type("date", "datetime"):
        return
    i = 0
    while i < st.n:
        if st.used[i]:
            i += 1
            continue
        end = st.free_end(i)
        start = i  # a leading 'on' / 'for' belongs to the span
        hit = match_date(st.toks, i, end, now=st.now)
        if hit is None and st.toks[i].text in _DATE_PREPS:
            hit = match_date(st.toks, i + 1, end, now=st.now)
        if hit is None:
            i += 1
            continue
        if not st.negated(start):
            st.dates.append((start, hit.end, hit))
        st.claim(specs, start, hit.end, hit.value)
        i = hit.end


def _times(st: _State) -> None:
    specs = st.of_type("time")
    if not st.of_type("time", "datetime"):
        return
    hours = next((s.hours for s in st.specs if s.type in ("time", "datetime") and s.hours), None)
    part = next((PARTS[h.part] for _, _, h in reversed(st.dates) if h.part), None) or st.part
    names = set().union(*(_name_words(s) for s in st.of_type("time", "datetime")))
    i = 0
    while i < st.n:
        if st.used[i]:
            i += 1
            continue
        end = st.free_end(i)
        j = i
        cue = st.toks[i].text in _TIME_CUES or st.named_before(i, names)
        while j < end and (st.toks[j].text in _TIME_CUES or (j > i and st.toks[j].text in _TIME_SOFT)):
            j += 1
        hit = match_time(st.toks, j, end, hours=hours, part=part)
        if hit is None or not (hit.cued or cue or st.named_before(j, names)):
            i += 1
            continue
        if not st.negated(i):
            st.times.append((i, hit.end, hit))
        st.claim(specs, i, hit.end, hit.value)
        i = hit.end


def _choices(st: _State) -> None:
    for spec in st.of_type("choice"):
        for key, i, j in find_choices(st.toks, st.used, choice_index(spec, spec.choices)):
            st.claim([spec], i, j, key)


def _codes(st: _State) -> None:
    for spec in st.of_type("pattern"):
        regex = compiled(spec.pattern) if spec.pattern else None
        if regex is None:
            continue
        for code, i, j in find_codes(regex, st.text, st.toks, st.used):
            written = all(not st.toks[k].gap for k in range(i + 1, j))
            if written or st.named_before(i, _name_words(spec)):
                st.claim([spec], i, j, code)


def _names(st: _State) -> None:
    specs = st.of_type("name")
    if specs:
        for name, i, j in find_names(st.text, st.toks, st.used, weak=True):
            st.claim(specs, i, j, name)


def _numbers(st: _State) -> None:
    for spec in st.of_type("integer", "number"):
        names = _name_words(spec)
        for i in range(st.n):
            if st.used[i]:
                continue
            got = match_number(st.toks, i, st.free_end(i))
            if got is None or (spec.type == "integer" and not float(got[0]).is_integer()):
                continue
            j = got[1]
            after = j < st.n and not st.used[j] and stem(st.toks[j].text) in names
            if after or st.named_before(i, names):
                st.claim([spec], i, j, int(got[0]) if spec.type == "integer" else got[0])


_PHASES: list[Callable[[_State], None]] = [
    _emails,
    lambda st: _phones(st, True),
    _dates,
    _times,
    _choices,
    _codes,
    _names,
    lambda st: _phones(st, False),
    _numbers,
]


# --- bare values for the slot just asked for ------------------------------------------------------


def _runs(st: _State) -> list[tuple[int, int]]:
    """Maximal runs of unused tokens."""
    runs, i = [], 0
    while i < st.n:
        if st.used[i]:
            i += 1
            continue
        j = st.free_end(i)
        runs.append((i, j))
        i = j
    return runs


def _bare_scan(st: _State, find: Callable[[int, int], tuple[object, int] | None]) -> None:
    assert st.expected is not None
    for lo, hi in _runs(st):
        i = lo
        while i < hi:
            got = find(i, hi)
            if got is None:
                i += 1
                continue
            value, j = got
            st.claim([st.expected], i, j, value)
            i = j


def _bare_date(st: _State) -> None:
    def find(i: int, hi: int) -> tuple[object, int] | None:
        k = i + (st.toks[i].text in _DATE_PREPS and i + 1 < hi)
        hit = match_date(st.toks, k, hi, now=st.now, bare=True)
        return (hit.value, hit.end) if hit else None

    _bare_scan(st, find)


def _bare_time(st: _State) -> None:
    hours = st.expected.hours if st.expected else None

    def find(i: int, hi: int) -> tuple[object, int] | None:
        hit = match_time(st.toks, i, hi, hours=hours, part=st.part)
        return (hit.value, hit.end) if hit else None

    _bare_scan(st, find)


def _bare_datetime(st: _State) -> None:
    hours = st.expected.hours if st.expected else None
    for lo, hi in _runs(st):
        i = lo
        while i < hi:
            hit = match_time(st.toks, i, hi, hours=hours, part=st.part)
            if hit:
                st.times.append((i, hit.end, hit))
                st.used[i : hit.end] = b"\x01" * (hit.end - i)
                i = hit.end
            else:
                i += 1


def _bare_number(st: _State) -> None:
    spec = st.expected
    assert spec is not None

    def find(i: int, hi: int) -> tuple[object, int] | None:
        got = match_number(st.toks, i, hi)
        if got is None or (spec.type == "integer" and not float(got[0]).is_integer()):
            return None
        return (int(got[0]) if spec.type == "integer" else got[0]), got[1]

    _bare_scan(st, find)


def _bare_phone(st: _State) -> None:
    def find(i: int, hi: int) -> tuple[object, int] | None:
        pieces = match_pieces(st.toks, i, hi, st.used)
        number = clean_phone("".join(p[2] for p in pieces), 3) if pieces else None
        return (number, pieces[-1][1]) if number else None

    _bare_scan(st, find)


def _bare_name(st: _State) -> None:
    assert st.expected is not None
    for lo, hi in _runs(st):
        for a, b in _split_at_breaks(st.toks, lo, hi):
            a, b = strip_filler(st.toks, a, b)
            cue = match_phrase(st.toks, a, b, STRONG_CUES)
            if cue > a:
                a, b = strip_filler(st.toks, cue, b)
            if a < b and name_run(st.toks, a, b) == b:
                st.claim([st.expected], a, b, title_name(st.text, st.toks, a, b))


def _split_at_breaks(toks: tuple[Tok, ...], lo: int, hi: int) -> list[tuple[int, int]]:
    parts, start = [], lo
    for k in range(lo + 1, hi):
        if toks[k].brk and toks[k].gap.strip() != "-":
            parts.append((start, k))
            start = k
    parts.append((start, hi))
    return parts


def _bare_text(st: _State) -> None:
    assert st.expected is not None
    runs = [strip_filler(st.toks, lo, hi, light=True) for lo, hi in _runs(st)]
    runs = [(a, b) for a, b in runs if a < b]
    if runs:
        a, b = max(runs, key=lambda r: (r[1] - r[0], r[0]))
        st.claim([st.expected], a, b, st.text[st.toks[a].start : st.toks[b - 1].end].strip())


def _bare_yes_no(st: _State) -> None:
    assert st.expected is not None
    for lo, hi in _runs(st)[:1]:
        got = match_yes_no(st.toks, lo, hi)
        if got is not None and got[0] is not None:
            st.claim([st.expected], got[1], got[2], got[0])


def _bare_code(st: _State) -> None:
    spec = st.expected
    assert spec is not None
    regex = compiled(spec.pattern) if spec.pattern else None
    if regex is not None:
        for code, i, j in find_codes(regex, st.text, st.toks, st.used):
            st.claim([spec], i, j, code)


_BARE: dict[str, Callable[[_State], None]] = {
    "date": _bare_date, "time": _bare_time, "datetime": _bare_datetime, "integer": _bare_number, "number": _bare_number,
    "phone": _bare_phone, "name": _bare_name, "text": _bare_text, "yes_no": _bare_yes_no, "pattern": _bare_code,
}  # fmt: skip


def _datetime_value(st: _State, spec: SlotSpec) -> None:
    """A date-time from the last date and the last time said (either may be missing)."""
    day_hit = max(st.dates, key=lambda h: h[0], default=None)
    time_hit = max(st.times, key=lambda h: h[0], default=None)
    part = day_hit[2].part if day_hit else None
    day: date | None = day_hit[2].value if day_hit else None
    at: time | None = time_hit[2].value if time_hit else None
    value = combine(day, at, part, st.now)
    if value is None:
        return
    spans = [h for h in (day_hit, time_hit) if h]
    st.found[spec.name].append(_Cand(min(s[0] for s in spans), max(s[1] for s in spans), value))

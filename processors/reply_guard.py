"""Reply guard: what the brain writes, cleaned for the ear and cut at `voice.max_sentences`.

Placed between the brain (LLM / LLMSwitcher) and TTS. Inside an LLM response (the `LLMTextFrame`s
between `LLMFullResponseStartFrame` and `LLMFullResponseEndFrame`) it

- removes what should not be spoken: markdown emphasis, quotes, rules, HTML tags and link syntax
  (inline parts through Pipecat's `strip_markdown`), fenced code blocks (dropped; inline code keeps
  its text, usually a name or a number), tables (the header row goes, each data row is spoken as
  "cell, cell."), lists (bullets and numbers go; short items are joined into one sentence:
  "A, B, and C."; an item ending in ":" or with items indented under it introduces them),
  headings (kept as a lead-in: "Hours: We open at 9."), emoji, and URLs: a markdown link says its
  label, a bare URL says "the link", a URL in parentheses or after a colon says nothing;
- counts sentences with Pipecat's `match_endofsentence` (sentencex), asked about one candidate at
  a time with just the sentence and the word after it, and overruled where it is wrong in
  conversation: a "." followed by a lowercase word or a digit ("approx. 12", "Mon. through Fri.")
  is not an end, "Ok." before a capital is. Abbreviations, decimals, times and initials
  ("Dr.", "3.5", "10 a.m.", "J. Smith", "e.g.", "$4.50") stay inside their sentence;
- emits each sentence as one `LLMTextFrame` as soon as the word after it has arrived, so TTS
  starts on the first sentence while the LLM is still writing;
- at the limit, emits `LLMFullResponseEndFrame` at once (TTS flushes, the assistant aggregator
  closes the turn with exactly the spoken sentences) and stops the LLM (below). Every later
  `LLMTextFrame` of that response is dropped, and the LLM's own end frame is swallowed.

Stopping the LLM. Pipecat 1.14 has no "stop generating" frame for a normal turn:
`EagerEndOfTurnCancelFrame` stops an LLM only while it speculates, and `LLMService` has no public
cancel. What stops a generation is an `InterruptionFrame` reaching the LLM: its base
`FrameProcessor` cancels the task running `_process_context`, which closes the HTTP stream (no
further tokens are billed), and its `finally` still pushes `LLMFullResponseEndFrame`. The guard
pushes that `InterruptionFrame` UPSTREAM ONLY, so nothing downstream (TTS, output transport,
assistant aggregator) sees it and the sentences already sent are still spoken. Upstream of the
LLM it would travel on like the upstream half of a barge-in (turn router, user aggregator, STT);
`ReplyGuard.fence()` makes a processor, placed just above the brain, that stops the guard's own
interruptions there. A tool call the LLM would have made after the cut is not run: it rode on the
cancelled stream.

Dropped text never reaches the assistant aggregator (it builds the assistant message from the
`TextFrame`s that reach it, `LLMTextFrame` or TTS's `TTSTextFrame`), so the context holds what
was spoken, cleaned. Every other frame passes through untouched; `InterruptionFrame` resets the
guard. `strip_markdown=False` keeps the text as written (whitespace tidied) and only enforces the
limit. A reply without any sentence punctuation is held until its end frame.

Authored replies. A response whose `LLMFullResponseStartFrame` carries `metadata[AUTHORED]` (the
local brain's: the flow's own prompts and read-backs, written by the business, such as a cart
read back item by item) is cleaned but not cut: the limit is for what a model improvises.

Offline, `clean_text` and `split_sentences` give the same result as the stream:
`" ".join(split_sentences(clean_text(reply))[:n])` is what the guard says, however the reply is
cut into tokens.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

from pipecat.frames.frames import (
    Frame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

AUTHORED = "frontdesk.authored"  # LLMFullResponseStartFrame.metadata key: text written in the flow
from pipecat.utils.string import match_endofsentence
from pipecat.utils.text.transforms import strip_markdown as _pipecat_strip_markdown

OnEvent = Callable[[str], None]
KINDS = ("markdown", "list", "table", "code", "url", "emoji")
LINK_WORDS = "the link"

# -- inline cleaning -------------------------------------------------------------------------

_URL = r"(?:https?://|www\.)[^\s<>\"'`]*[^\s<>\"'`.,;:!?)\]]"
_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]*)(?:\s+\"[^\"]*\")?\)")
_AUTOLINK = re.compile(r"<(?:https?://|mailto:)[^>\s]+>")
_PAREN_URL = re.compile(r"[ \t]*\(\s*" + _URL + r"\s*\)")
_COLON_URL = re.compile(r"[ \t]*:[ \t]*(?:<(?:https?://|mailto:)[^>\s]+>|" + _URL + ")")
_BARE_URL = re.compile(_URL)
_IS_URL = re.compile(r"\s*" + _URL + r"\s*")
_HTML_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*\s*/?>")
_EMOJI = re.compile(
    "[\U0001f000-\U0001faff\U00002600-\U000027bf\U00002b00-\U00002bff\U00002300-\U000023ff"
    "\U00002190-\U000021ff\U000e0020-\U000e007f\ufe0e\ufe0f\u200d\u20e3\u3030\u303d\u3297\u3299]"
)
_EMPTY_PARENS = re.compile(r"[ \t]*\(\s*\)")
_WS = re.compile(r"\s+")
_SPACE_BEFORE_PUNCT = re.compile(r" +(?=[,.!?;:])")
# Stops strip_markdown's line rules (bullets, headings, quotes) from reading a piece of a line as
# a line start: the guard has classified the line already.
_SENTINEL = "\x00"


def _strip_markdown(text: str) -> str:
    """Pipecat's `strip_markdown`, run without an event loop (it never awaits)."""
    coro = _pipecat_strip_markdown(_SENTINEL + text, "text")
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value.replace(_SENTINEL, "")
    raise RuntimeError("strip_markdown awaited")  # pragma: no cover


def _link_label(match: re.Match[str]) -> str:
    label = match.group(1).strip()
    return LINK_WORDS if not label or _IS_URL.fullmatch(label) else label


def _clean_inline(text: str, seen: Callable[[str], None]) -> str:
    """Clean a piece of one line: links, URLs, inline code, emphasis, tags, emoji."""
    if "[" in text or "<" in text or "://" in text or "www." in text:
        text, images = _IMAGE.subn("", text)
        text, links = _LINK.subn(_link_label, text)
        text, colons = _COLON_URL.subn("", text)  # "Here's the link: https://..."
        text, autolinks = _AUTOLINK.subn(LINK_WORDS, text)
        text, parens = _PAREN_URL.subn("", text)
        text, bare = _BARE_URL.subn(LINK_WORDS, text)
        text, tags = _HTML_TAG.subn(" ", text)
        if images or tags:
            seen("markdown")
        if links or colons or autolinks or parens or bare:
            seen("url")
    if "`" in text:
        seen("code")
    if any(c in text for c in "*_~`"):
        stripped = _strip_markdown(text)
        if stripped != text:
            if stripped.replace("`", "") != text.replace("`", ""):
                seen("markdown")
            text = stripped
    if not text.isascii():
        text, emoji = _EMOJI.subn("", text)
        if emoji:
            seen("emoji")
    if "(" in text:
        text = _EMPTY_PARENS.sub("", text)
    return text


def _balanced(text: str) -> bool:
    """Whether a piece of a line opens nothing it does not close, so it can be cleaned alone."""
    return (
        all(text.count(c) % 2 == 0 and text.count(c + c) % 2 == 0 for c in "`*_~")
        and text.count("[") == text.count("]")
        and text.count("(") == text.count(")")
        and text.count("<") == text.count(">")
    )


# -- line classification ---------------------------------------------------------------------

_UNDECIDED = re.compile(r"[ \t]*(?:[-*+_•>|#`~=]*|\d{1,3}[.)]?)")
_FENCE = re.compile(r"[ \t]*(?:```|~~~)")
_RULE = re.compile(r"[ \t]*(?:([-*_=])(?:[ \t]*\1){2,}|[-*+•])[ \t]*")
_HEADING = re.compile(r"[ \t]*#{1,6}[ \t]")
_BULLET = re.compile(r"[ \t]*(?:[-*+•]|\d{1,3}[.)])[ \t]")
_QUOTE = re.compile(r"[ \t]*(?:>[ \t]?)+")
_TABLE_SEP = re.compile(r"[ \t]*\|?(?:[ \t]*:?-+:?[ \t]*\|)+(?:[ \t]*:?-+:?[ \t]*)?")
_TERMINAL = frozenset(".!?…")
_CLOSERS = "\"'”’)]*_"
_JOINS = frozenset(".!?…:;,")


def _last_char(text: str) -> str:
    stripped = text.rstrip().rstrip(_CLOSERS)
    return stripped[-1:] if stripped else ""


def _join_items(items: list[str]) -> str:
    if len(items) == 1:
        return items[0]
    if len(items) == 2:
        return f"{items[0]} and {items[1]}"
    return ", ".join(items[:-1]) + ", and " + items[-1]


class _Cleaner:
    """Raw reply text in, in chunks of any size; cleaned pieces out, as early as is safe.

    Lines are classified by their start. A paragraph line streams: its text goes out at the last
    whitespace before which nothing is left open (backticks, emphasis, brackets). List items,
    headings, table rows and code are held to the end of their line.
    """

    def __init__(self, enabled: bool, seen: Callable[[str], None]):
        self._enabled = enabled
        self._seen = seen
        self._line = ""  # the current line while its kind is undecided, or while it is held
        self._kind: str | None = None  # para, item, heading, table, code, fence, skip
        self._para = ""  # a paragraph line's text not yet sent
        self._in_fence = False
        self._items: list[str] = []  # short list items waiting to be joined
        self._items_indent = 0
        self._table_head: str | None = None
        self._in_table = False
        # What goes between the last content and the next: " ", ":" (": ", or "." at the end), or
        # "soft" (a line without end punctuation: ": " before a list, else ". ").
        self._pending: str | None = None
        self._line_content = False
        self._last = ""  # the last character of content sent, closing quotes aside
        self._out: list[str] = []

    def feed(self, chunk: str) -> list[str]:
        parts = chunk.split("\n")
        for i, part in enumerate(parts):
            if part:
                self._add(part)
            if i < len(parts) - 1:
                self._end_line()
        return self._take()

    def finish(self) -> list[str]:
        if self._line or self._kind is not None or self._para:
            self._end_line()
        self._flush_blocks()
        if self._pending == ":":
            self._out.append(".")
        self._pending = None
        return self._take()

    def _take(self) -> list[str]:
        out, self._out = self._out, []
        return out

    def _emit(self, text: str, kind: str = "para") -> None:
        if not text.strip():
            return
        if self._pending is not None:
            if self._pending == "soft":
                self._out.append(": " if kind == "item" else ". ")
            elif self._pending == ":":
                self._out.append(": ")
            else:
                self._out.append(" ")
            self._pending = None
        self._out.append(text)
        self._line_content = True
        self._last = _last_char(text)

    # -- one line ---------------------------------------------------------------------------

    def _add(self, part: str) -> None:
        if not self._enabled:
            self._para += part
            self._emit_para(final=False)
            return
        if self._kind is None:
            self._line += part
            self._classify(complete=False)
        elif self._kind == "para":
            self._para += part
            if " " in part or "\t" in part:
                self._emit_para(final=False)
        elif self._kind in ("item", "heading", "table", "fence"):
            self._line += part
        # code and skip lines are dropped

    def _classify(self, complete: bool) -> None:
        line = self._line
        if not complete and _UNDECIDED.fullmatch(line):
            return
        if self._in_fence:
            self._kind = "fence" if _FENCE.match(line) else "code"
            return
        if _FENCE.match(line):
            self._kind = "fence"
            self._seen("code")
            if self._pending == ":":
                self._pending = "soft"
            return
        if complete and _RULE.fullmatch(line):
            self._kind = "skip"
            self._seen("markdown")
            return
        if not line.strip():
            self._kind = "skip"
            if self._in_table:
                self._flush_table()
            return
        kind = "para"
        if line.lstrip().startswith("|"):
            kind = "table"
        elif _HEADING.match(line):
            kind = "heading"
        elif _BULLET.match(line):
            kind = "item"
        if kind != "item" and self._items:
            self._flush_items()
        if kind != "table" and self._in_table:
            self._flush_table()
        self._kind = kind
        if kind == "para":
            quote = _QUOTE.match(line)
            if quote and ">" in quote.group(0):
                self._seen("markdown")
                line = line[quote.end() :]
            self._line = ""
            self._para = line
            self._emit_para(final=complete)

    def _emit_para(self, final: bool) -> None:
        if final:
            piece, self._para = self._para, ""
        else:
            cut = max(self._para.rfind(" "), self._para.rfind("\t"))
            # Not after a colon either: what follows may be a URL that takes the colon with it.
            if cut <= 0:
                return
            if self._enabled and (self._para[cut - 1] == ":" or not _balanced(self._para[:cut])):
                return
            piece, self._para = self._para[:cut], self._para[cut:]
        if not self._enabled:
            self._emit(piece)
            return
        text = _clean_inline(piece, self._seen)
        if final and text.rstrip().endswith(":"):
            # Held back: it becomes ": " before what the line introduces, or ". " before code.
            self._emit(text.rstrip()[:-1])
            if self._line_content:
                self._pending = ":"
            return
        self._emit(text)

    def _end_line(self) -> None:
        if not self._enabled:
            self._emit_para(final=True)
            if self._line_content:
                self._pending = " "
            self._line_content = False
            return
        if self._kind is None:
            self._classify(complete=True)
        kind, line = self._kind, self._line
        self._kind, self._line = None, ""
        if kind == "para":
            self._emit_para(final=True)
        elif kind == "fence":
            self._in_fence = not self._in_fence
        elif kind == "item":
            indent = len(line.expandtabs(4)) - len(line.expandtabs(4).lstrip())
            self._item(_BULLET.sub("", line, count=1), indent)
        elif kind == "heading":
            self._seen("markdown")
            text = _clean_inline(_HEADING.sub("", line, count=1).rstrip().rstrip("#"), self._seen).strip()
            self._emit(text)
            if self._line_content and self._last not in _JOINS:
                self._pending = ":"
        elif kind == "table":
            self._table_row(line)
        if self._line_content and self._pending is None:
            self._pending = " " if self._last in _JOINS else "soft"
        self._line_content = False

    def _item(self, text: str, indent: int) -> None:
        self._seen("list")
        text = _clean_inline(text, self._seen).strip()
        if not text:
            return
        if self._items and indent > self._items_indent:
            # The last item has items under it: it introduces them.
            intro = self._items.pop()
            self._flush_items()
            self._emit(intro, "item")
            self._pending = ":"
        elif self._items and indent < self._items_indent:
            self._flush_items()
        last = _last_char(text)
        if last in _TERMINAL or last == ":":
            self._flush_items()
            self._emit(text, "item")
        else:
            if not self._items:
                self._items_indent = indent
            self._items.append(text.rstrip(",;").rstrip())

    def _flush_items(self) -> None:
        if self._items:
            items, self._items = self._items, []
            self._emit(_join_items(items) + ".", "item")
            self._pending = " "

    def _table_row(self, line: str) -> None:
        self._seen("table")
        if _TABLE_SEP.fullmatch(line):
            self._table_head = None
            return
        if self._table_head is not None:
            self._emit_row(self._table_head)
            self._table_head = None
        if not self._in_table:
            self._in_table = True
            self._table_head = line
            return
        self._emit_row(line)

    def _emit_row(self, line: str) -> None:
        cells = line.strip().strip("|").split("|")
        texts = [t for t in (_clean_inline(c, self._seen).strip() for c in cells) if t]
        if texts:
            row = ", ".join(texts)
            self._emit(row if _last_char(row) in _TERMINAL else row + ".")
            self._pending = " "

    def _flush_table(self) -> None:
        if self._table_head is not None:
            self._emit_row(self._table_head)
            self._table_head = None
        self._in_table = False

    def _flush_blocks(self) -> None:
        self._flush_items()
        self._flush_table()


# -- sentences -------------------------------------------------------------------------------

_CANDIDATE = re.compile(r"[.!?…]+[\"'”’)\]*_]*(?=\s)")
_OK = re.compile(r"(?:^|\s)(?:ok|OK|Ok)\.$")


def _sentencex_ends_at(segment: str, end: int) -> bool:
    """Whether `match_endofsentence` puts a sentence end at `end` of `segment`."""
    offset = 0
    while offset < end:
        found = match_endofsentence(segment[offset:])
        if not found:
            return False
        offset += found
    return offset == end


def _is_end(segment: str, end: int, next_word: str) -> bool:
    """Whether the punctuation that ends at `end` (followed by `next_word`) ends a sentence."""
    first = next_word[0]
    if first.islower():
        return False
    punct = segment[:end].rstrip(_CLOSERS)
    if punct.endswith(".") and (first.isdigit() or first == "$"):
        return False
    if punct.endswith(("!", "?")):
        return True
    if first.isupper() and _OK.search(punct):
        return True
    return _sentencex_ends_at(segment, end)


class _Splitter:
    """Cleaned text in; whole sentences out, each once the word after it is known."""

    def __init__(self) -> None:
        self._buf = ""
        self._scan = 0  # where the next candidate end is looked for

    @property
    def pending(self) -> str:
        return self._buf

    def add(self, piece: str) -> None:
        piece = _WS.sub(" ", piece)
        piece = _SPACE_BEFORE_PUNCT.sub("", piece)
        if not self._buf or self._buf.endswith(" "):
            piece = piece.lstrip(" ")
            if piece[:1] in ",.!?;:" and self._buf:
                self._buf = self._buf[:-1]
        self._buf += piece

    def pop(self, final: bool) -> list[str]:
        out: list[str] = []
        buf = self._buf
        while True:
            match = _CANDIDATE.search(buf, self._scan)
            if match is None:
                break
            end = match.end()
            start = end + 1  # the candidate is followed by exactly one space
            stop = buf.find(" ", start)
            if stop < 0:
                if not final:
                    break
                stop = len(buf)
            if start >= stop:
                break
            if _is_end(buf[:stop], end, buf[start:stop]):
                out.append(buf[:end].strip())
                buf = buf[end:].lstrip()
                self._scan = 0
            else:
                self._scan = end
        if final:
            if buf.strip():
                out.append(buf.strip())
            buf, self._scan = "", 0
        self._buf = buf
        return out


def clean_text(text: str, *, strip_markdown: bool = True) -> str:
    """The reply as it will be spoken, before the sentence limit."""
    cleaner = _Cleaner(strip_markdown, lambda _kind: None)
    splitter = _Splitter()
    for piece in cleaner.feed(text) + cleaner.finish():
        splitter.add(piece)
    return splitter.pending.strip()


def split_sentences(text: str) -> list[str]:
    """Split cleaned text into sentences, the way the guard counts them."""
    splitter = _Splitter()
    splitter.add(text)
    return splitter.pop(final=True)


def spoken(text: str, max_sentences: int = 3, *, strip_markdown: bool = True) -> str:
    """What the guard says for a whole reply."""
    return " ".join(split_sentences(clean_text(text, strip_markdown=strip_markdown))[:max_sentences])


# -- the processor ---------------------------------------------------------------------------


class ReplyGuard(FrameProcessor):
    """Cleans each streamed LLM reply for speech and stops it after `max_sentences` sentences.

    `stats` describes the current (or last) reply: `sentences` spoken, `cut` (1 if sentences were
    dropped at the limit), `dropped_chars` (LLM text received and not spoken), and per kind of
    removed content (`markdown`, `list`, `table`, `code`, `url`, `emoji`) how often it was seen.
    `totals` adds them up over the call, with `replies`. `on_event` is called once per reply and
    kind as `guard:<kind>`, and with `guard:cut`.
    """

    def __init__(
        self,
        max_sentences: int = 3,
        strip_markdown: bool = True,
        on_event: OnEvent | None = None,
        **kwargs,
    ):
        if max_sentences < 1:
            raise ValueError(f"ReplyGuard: max_sentences must be at least 1, got {max_sentences}")
        super().__init__(**{"enable_direct_mode": True, **kwargs})  # text in, text out: no queue, no task of its own
        self._limit = max_sentences
        self._max = max_sentences
        self._clean = strip_markdown
        self._on_event = on_event
        self.stats: dict[str, int] = {}
        self.totals: Counter[str] = Counter()
        self._cancel_ids: list[int] = []
        self._reset()

    def fence(self) -> FrameProcessor:
        """A processor for just above the brain that stops this guard's upstream interruptions."""
        return _CancelFence(self._cancel_ids)

    def _reset(self) -> None:
        self._in_reply = False
        self._cut = False  # the limit was reached: drop text, swallow the LLM's end frame
        self._cleaner = _Cleaner(self._clean, self._note)
        self._splitter = _Splitter()
        self._spoken = 0
        self._skip_tts: bool | None = None

    def _note(self, kind: str) -> None:
        self.stats[kind] = self.stats.get(kind, 0) + 1
        self.totals[kind] += 1
        if self.stats[kind] == 1 and self._on_event is not None:
            self._on_event(f"guard:{kind}")

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if direction == FrameDirection.DOWNSTREAM:
            if isinstance(frame, LLMFullResponseStartFrame):
                self._reset()
                self._in_reply = True
                self._max = 1_000_000 if frame.metadata.get(AUTHORED) else self._limit
                self._skip_tts = frame.skip_tts
                self.stats = {"sentences": 0, "cut": 0, "dropped_chars": 0}
                self.totals["replies"] += 1
            elif isinstance(frame, LLMTextFrame) and self._in_reply:
                await self._text(frame)
                return
            elif isinstance(frame, LLMFullResponseEndFrame) and self._in_reply:
                cut = self._cut
                if not cut:
                    await self._finish()
                self._reset()
                if cut:
                    return
        if isinstance(frame, InterruptionFrame):
            self._reset()
        await self.push_frame(frame, direction)

    async def _text(self, frame: LLMTextFrame) -> None:
        if self._cut:
            self._drop(len(frame.text))
            return
        self._skip_tts = frame.skip_tts
        for piece in self._cleaner.feed(frame.text):
            self._splitter.add(piece)
        for sentence in self._splitter.pop(final=False):
            await self._say(sentence)
            if self._spoken == self._max:  # and the next sentence has begun
                await self._stop()
                return

    async def _finish(self) -> None:
        for piece in self._cleaner.finish():
            self._splitter.add(piece)
        sentences = self._splitter.pop(final=True)
        room = self._max - self._spoken
        for sentence in sentences[:room]:
            await self._say(sentence)
        if len(sentences) > room:  # the reply ended anyway: nothing to cancel
            self._drop(sum(len(s) for s in sentences[room:]))
            self._mark_cut()

    async def _say(self, sentence: str) -> None:
        frame = LLMTextFrame(sentence if self._spoken == 0 else " " + sentence)
        frame.skip_tts = self._skip_tts
        self._spoken += 1
        self.stats["sentences"] = self._spoken
        self.totals["sentences"] += 1
        await self.push_frame(frame)

    async def _stop(self) -> None:
        """The limit is reached: close the response downstream and stop the LLM upstream."""
        self._cut = True
        self._drop(len(self._splitter.pending))
        self._mark_cut()
        end = LLMFullResponseEndFrame()
        end.skip_tts = self._skip_tts
        await self.push_frame(end)
        cancel = InterruptionFrame()
        self._cancel_ids.append(cancel.id)
        del self._cancel_ids[:-8]
        await self.push_frame(cancel, FrameDirection.UPSTREAM)

    def _mark_cut(self) -> None:
        self.stats["cut"] = 1
        self.totals["cut"] += 1
        if self._on_event is not None:
            self._on_event("guard:cut")

    def _drop(self, chars: int) -> None:
        self.stats["dropped_chars"] = self.stats.get("dropped_chars", 0) + chars
        self.totals["dropped_chars"] += chars


class _CancelFence(FrameProcessor):
    """Stops the guard's upstream `InterruptionFrame` once it has passed the brain."""

    def __init__(self, cancel_ids: list[int], **kwargs):
        super().__init__(**{"enable_direct_mode": True, **kwargs})  # a look at each frame: no queue, no task of its own
        self._cancel_ids = cancel_ids

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        ours = isinstance(frame, InterruptionFrame) and frame.id in self._cancel_ids
        if ours and direction == FrameDirection.UPSTREAM:
            return
        await self.push_frame(frame, direction)

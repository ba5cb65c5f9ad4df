"""Embedded Piper: Pipecat's PiperTTSService with one voice per process and a phrase cache.

- **One voice per process.** The stock service loads the ONNX voice in every call's constructor;
  calls here share one `PiperVoice` per model file (ONNX Runtime sessions are thread-safe).
- **Phrase cache.** Piper emits audio only once a whole sentence is synthesized, so a sentence's
  first audio costs its full synthesis (~0.1-0.2 s here). Much of what a flow says is fixed
  ("What day would you like to come in?"), so the audio of each sentence is kept (LRU, bounded
  by bytes, shared by all calls) and `prewarm()` synthesizes a flow's fixed lines in the
  background when a bot is loaded. A cached sentence starts playing at once.
- **Clause first.** A long sentence that is not cached ("Let me read that back: a medium
  margherita and a sprite.") is synthesized in two parts, split at its first clause boundary
  (comma, colon, semicolon, dash): the first part plays while the rest is synthesized, and is
  often cached itself ("Let me read that back:" is the fixed head of a template, prewarmed; "Got
  it," recurs).
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from pathlib import Path

from loguru import logger
from pipecat.frames.frames import ErrorFrame, Frame
from pipecat.services.piper.tts import PiperTTSService
from pipecat.services.tts_service import TTSService
from pipecat.utils.string import match_endofsentence

_voices: dict[str, object] = {}
_voices_lock = threading.Lock()


def shared_piper_voice(model_path: str | Path):
    from piper import PiperVoice

    key = str(model_path)
    with _voices_lock:
        if key not in _voices:
            logger.debug(f"loading Piper voice {model_path}")
            _voices[key] = PiperVoice.load(key)
        return _voices[key]


class PhraseCache:
    """Sentence -> synthesized audio (16-bit PCM at the voice's rate), LRU within `max_bytes`."""

    def __init__(self, max_bytes: int = 48 * 1024 * 1024):
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[str, str], list[bytes]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(voice: str, text: str) -> tuple[str, str]:
        return voice, " ".join(text.split())

    def get(self, voice: str, text: str) -> list[bytes] | None:
        with self._lock:
            chunks = self._items.get(self.key(voice, text))
            if chunks is None:
                self.misses += 1
                return None
            self._items.move_to_end(self.key(voice, text))
            self.hits += 1
            return chunks

    def put(self, voice: str, text: str, chunks: list[bytes]) -> None:
        size = sum(len(c) for c in chunks)
        if size > self.max_bytes:
            return
        with self._lock:
            key = self.key(voice, text)
            if key in self._items:
                return
            self._items[key] = chunks
            self._size += size
            while self._size > self.max_bytes:
                _, dropped = self._items.popitem(last=False)
                self._size -= sum(len(c) for c in dropped)

    def __contains__(self, item: tuple[str, str]) -> bool:
        with self._lock:
            return self.key(*item) in self._items


PHRASES = PhraseCache()


_CLAUSE_END = re.compile(r"[,:;](?=\s)|\s[-\u2013\u2014](?=\s)")
MIN_SPLIT_CHARS = 40


def clauses(sentence: str) -> list[str]:
    """`sentence` as [first clause, rest] when it is long enough to gain from the split, else [it]."""
    text = sentence.strip()
    if len(text) < MIN_SPLIT_CHARS:
        return [text]
    for match in _CLAUSE_END.finditer(text):
        head, rest = text[: match.end()].strip(), text[match.end() :].strip()
        if len(rest.split()) >= 3:
            return [head, rest]
        if len(rest.split()) < 3:
            break
    return [text]


def template_heads(lines: Iterable[str]) -> list[str]:
    """The fixed first clause of templated lines ("Let me read that back: {{ cart }}." gives
    "Let me read that back:"), which the clause split will ask the cache for."""
    heads = []
    for line in lines:
        head = line.split("{", 1)[0].strip() if "{" in line else ""
        if head and head[-1] in ",:;" and len(head.split()) >= 2:
            heads.append(head)
    return heads


def synthesize(voice, text: str) -> list[bytes]:
    return [chunk.audio_int16_bytes for chunk in voice.synthesize(text)]


def sentences(text: str) -> list[str]:
    """`text` cut where Pipecat's TTS text aggregator cuts it, so cache keys match what TTS gets."""
    out: list[str] = []
    rest = text.strip()
    while rest:
        end = match_endofsentence(rest)
        if not end:
            break
        out.append(rest[:end].strip())
        rest = rest[end:].strip()
    if rest:
        out.append(rest)
    return out


async def prewarm(model_path: str | Path, lines: Iterable[str], cache: PhraseCache = PHRASES) -> int:
    """Synthesize the sentences of `lines` into the cache off the event loop; returns how many."""
    voice_name = Path(model_path).stem
    todo = [s for s in dict.fromkeys(s for line in lines for s in sentences(line)) if (voice_name, s) not in cache]
    if not todo:
        return 0

    def work() -> None:
        voice = shared_piper_voice(model_path)
        for line in todo:
            cache.put(voice_name, line, synthesize(voice, line))

    await asyncio.to_thread(work)
    logger.debug(f"piper: {len(todo)} fixed lines cached")
    return len(todo)


class EmbeddedPiperTTS(PiperTTSService):
    """PiperTTSService on a shared voice, answering cached sentences without synthesis."""

    def __init__(self, *, model_path: Path, voice: str, cache: PhraseCache | None = PHRASES, **kwargs):
        # PiperTTSService.__init__ loads (or downloads) a voice per instance; the base TTS service
        # is set up as it would do, and the voice comes from the shared pool instead.
        settings = PiperTTSService.Settings(model=None, voice=voice, language=None)
        TTSService.__init__(self, push_start_frame=True, push_stop_frames=True, settings=settings, **kwargs)
        self._model_path = model_path
        self._voice = shared_piper_voice(model_path)
        self._voice_name = voice
        self._cache = cache

    async def prewarm(self, lines: Iterable[str]) -> int:
        """Cache the audio of lines this call is likely to say (see `prewarm`)."""
        return await prewarm(self._model_path, lines, self._cache) if self._cache is not None else 0

    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame, None]:
        cache = self._cache

        async def audio() -> AsyncIterator[bytes]:
            whole = cache.get(self._voice_name, text) if cache else None
            for part in [text] if whole is not None else clauses(text):
                cached = whole if whole is not None or part == text else (cache.get(self._voice_name, part) if cache else None)
                if cached is not None:
                    for chunk in cached:
                        yield chunk
                    continue
                collected: list[bytes] = []
                chunks = iter(self._voice.synthesize(part))
                while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
                    collected.append(chunk.audio_int16_bytes)
                    yield chunk.audio_int16_bytes
                if cache is not None and collected:
                    cache.put(self._voice_name, part, collected)

        try:
            await self.start_tts_usage_metrics(text)
            async for frame in self._stream_audio_frames_from_iterator(audio(), in_sample_rate=self._voice.config.sample_rate, context_id=context_id):
                await self.stop_ttfb_metrics()
                yield frame
        except Exception as e:
            logger.error(f"{self} exception: {e}")
            yield ErrorFrame(error=f"Piper failed: {e}")
        finally:
            await self.stop_ttfb_metrics()

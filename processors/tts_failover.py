"""TTS failover: first-audio and stall deadlines, a breaker per voice, the unvoiced rest replayed.

Built on Pipecat's `ServiceSwitcher` (subclassed, manual strategy) with the output gates of
`processors.failover.FailoverMixin`: Pipecat's failover strategy switches only on errors that make
a service unusable, and the audio of a service it left behind would still flow out.

A response is what lies between an `LLMFullResponseStartFrame` and its end frame (or one
`TTSSpeakFrame`). The failover keeps its text until the audio of each sentence has started: for
HTTP services a sentence starts with the first audio after its `will_be_spoken` announcement, for
word-timestamp services (Cartesia) with its first spoken word. Progress is counted in letters and
digits, so transforms of spacing or punctuation don't matter. A response fails when audio does
not start within `first_audio_s` of its text reaching synthesis (`on_tts_request`), when audio
stops for `stall_s` while requested text is unfinished, or on a non-fatal `ErrorFrame` from the
active service (Cartesia pushes one when its websocket cannot connect, 401 and 5xx included, and
for an `error` message on the socket). Then the breaker records it, the service is interrupted
and silenced, and the next available service gets the rest of the response, from the first
sentence whose audio had not started: nothing is spoken twice (a sentence cut off mid-audio is
not repeated). The transcript of a started sentence whose `TTSTextFrame` the failed service never
sent is sent in its place, so the assistant context holds what the caller heard. Frames other
than text that were inside the failed service are handed to the backup, so nothing is lost.
The deadlines do not apply to the last voice left (embedded Piper on a busy CPU): with nowhere
to go, its late audio is waited for rather than the rest of the reply dropped.

A word-timestamp service (Cartesia) reports its words ahead of their audio, so for it a sentence
has been heard once the audio received covers its last word (word times against seconds of audio
received); its words are held back until then (or until the reply ends, or the caller cuts in). A
sentence it cut off is said again from its start by the backup (the caller heard "Thanks for—",
then the whole sentence), so the caller hears every sentence in full and the transcript holds each
once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from loguru import logger
from pipecat.frames.frames import (
    AggregatedTextFrame,
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    EagerTranscriptionFrame,
    Frame,
    InterimTranscriptionFrame,
    InterruptionFrame,
    LLMContextAssistantTurnFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    OutputTransportReadyFrame,
    ServiceUpdateSettingsFrame,
    SystemFrame,
    TextFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
)
from pipecat.pipeline.service_switcher import ServiceSwitcher, ServiceSwitcherStrategyManual
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.tts_service import InterruptibleTTSService, TTSService

from processors.failover import FOR_THE_LLM, FailoverMixin, OnSwitch

WORD_S = 0.25  # a word-timed word counts as heard once this much of its audio has been received
_NOT_SPOKEN = (TranscriptionFrame, InterimTranscriptionFrame, EagerTranscriptionFrame, TTSTextFrame)


@dataclass
class _Response:
    framed: bool  # opened by an LLMFullResponseStartFrame (else a lone TTSSpeakFrame)
    service: FrameProcessor
    tried: list[FrameProcessor]
    texts: list[str] = field(default_factory=list)
    ended: bool = False  # its end frame went into the TTS
    started_down: bool = False
    speaking_down: bool = False  # a TTSStartedFrame went downstream without its TTSStoppedFrame
    done: int = 0  # letters voiced by earlier attempts, up to a sentence end
    requested: int = 0  # letters the current attempt was asked to say
    finished: int = 0  # letters whose audio the current attempt has finished
    started: int = 0  # letters whose audio the current attempt has started
    announced: list[AggregatedTextFrame] = field(default_factory=list)  # held until their audio starts
    untold: list[str] = field(default_factory=list)  # started sentences still without TTSTextFrame
    held: list[TTSTextFrame] = field(default_factory=list)  # word-timed words not yet heard to a sentence end
    audio_s: float = 0.0  # seconds of audio the current attempt produced
    words_pts: int | None = None  # PTS of the current attempt's first word (its audio's start)
    audio: bool = False  # the current attempt produced audio
    first_request_at: float | None = None
    last_progress: float = 0.0
    in_transit: dict[int, Frame] = field(default_factory=dict)


class TTSFailover(FailoverMixin, ServiceSwitcher):
    """A `ServiceSwitcher` of TTS services that fails over mid-response without repeating itself."""

    _straight_to_active = True

    def __init__(
        self,
        services: list[TTSService],
        *,
        first_audio_s: float = 0.7,
        stall_s: float = 1.0,
        backoff_s: float = 5.0,
        max_backoff_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        on_switch: OnSwitch | None = None,
    ):
        super().__init__(list(services), ServiceSwitcherStrategyManual)
        self._init_failover(services, backoff_s=backoff_s, max_backoff_s=max_backoff_s, clock=clock, on_switch=on_switch)
        self._first_audio_s = first_audio_s
        self._stall_s = stall_s
        self._response: _Response | None = None
        self._interrupted_words: list[TTSTextFrame] = []  # held words of a reply the caller cut off
        for service in services:
            service.add_event_handler("on_tts_request", self._on_tts_request)
        # Going up, a TTS acts on interruptions and settings; an InterruptibleTTSService also on
        # whether the bot is speaking. These it only passes on.
        past: tuple[type[Frame], ...] = (*FOR_THE_LLM, LLMContextAssistantTurnFrame, OutputTransportReadyFrame)
        if not any(isinstance(s, InterruptibleTTSService) for s in services):
            past += (BotStartedSpeakingFrame, BotStoppedSpeakingFrame)
        self._past_members_upstream = past

    # -- frames in --------------------------------------------------------------------------

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        # Going up, what no TTS acts on (a context going back to the LLM once a function call's
        # result is in, the bot's speaking, ...) passes the branches by (`_past_members_upstream`).
        # Downstream every frame goes through the active TTS, which keeps each in its place behind
        # the audio of the text before it.
        if direction == FrameDirection.DOWNSTREAM:
            await self._track_input(frame)
        await super().process_frame(frame, direction)

    async def _track_input(self, frame: Frame) -> None:
        if isinstance(frame, InterruptionFrame):
            if self._response is not None:  # heard before the caller cut in: said once it passes
                self._interrupted_words = self._response.held
            self._response = None
            self._disarm()
            return
        skip = bool(getattr(frame, "skip_tts", False))
        r = self._response
        if isinstance(frame, LLMFullResponseStartFrame) and not skip:
            self._response = await self._open(framed=True)
        elif isinstance(frame, TTSSpeakFrame):
            if r is None:
                r = self._response = await self._open(framed=False)
                r.ended = True
            r.texts.append(frame.text)
        elif r is None or skip:
            return
        elif isinstance(frame, TextFrame) and not isinstance(frame, _NOT_SPOKEN):
            r.texts.append(frame.text)
        elif isinstance(frame, LLMFullResponseEndFrame):
            r.ended = True
        elif not isinstance(frame, (SystemFrame, ServiceUpdateSettingsFrame)):
            r.in_transit[frame.id] = frame

    async def _open(self, *, framed: bool) -> _Response:
        """A new response goes to the first service whose breaker allows it (probes included)."""
        head = self.services[0]
        chosen = self._first_available(head) or self.services[-1]
        if chosen is not self.strategy.active_service:
            probing = self.breaker(chosen).state == "half_open"
            await self._activate(chosen, "recovery probe" if probing else f"{head.name} breaker open")
        self._silenced.discard(id(chosen))
        now = self._now()
        self._arm()
        return _Response(framed=framed, service=chosen, tried=[chosen], last_progress=now)

    async def _on_tts_request(self, service: TTSService, context_id: str, text: str) -> None:
        r = self._response
        if r is None or service is not r.service:
            return
        now = self._now()
        if r.requested <= r.finished:
            r.last_progress = now  # a new sentence after a quiet gap
        if r.first_request_at is None:
            r.first_request_at = now
        r.requested += _letters(text)

    # -- frames out -------------------------------------------------------------------------

    async def _gate_output(self, service: FrameProcessor, frame: Frame) -> list[Frame]:
        if self._is_silenced(service):
            return []
        if isinstance(frame, InterruptionFrame) and self._interrupted_words:
            held, self._interrupted_words = self._interrupted_words, []
            return [*held, frame]
        r = self._response
        if r is None or service is not r.service:
            return [frame]
        r.in_transit.pop(frame.id, None)
        now = self._now()
        if isinstance(frame, LLMFullResponseStartFrame):
            if r.started_down:
                return []
            r.started_down = True
        elif isinstance(frame, TTSAudioRawFrame):
            r.audio, r.last_progress = True, now
            r.audio_s += len(frame.audio) / 2 / max(1, frame.sample_rate * frame.num_channels)
            held: list[Frame] = list(r.announced)
            for sentence in r.announced:
                r.started += _letters(sentence.text)
                r.untold.append(sentence.text)
            r.announced.clear()
            return [*held, frame, *self._heard_words(r)]
        elif isinstance(frame, TTSTextFrame):
            if _words_timed(service):  # reported ahead of its audio: neither heard nor progress yet
                r.held.append(frame)
                if r.words_pts is None:
                    r.words_pts = frame.pts
                return self._heard_words(r)  # a sentence cut off before then is said again in full
            r.finished += _letters(frame.text)
            r.last_progress = now
            if r.untold:
                r.untold.pop(0)
        elif isinstance(frame, AggregatedTextFrame) and frame.will_be_spoken and not _words_timed(service):
            r.announced.append(frame)  # said only once its audio starts, so never twice
            return []
        elif isinstance(frame, TTSStartedFrame):
            if r.speaking_down:
                return []  # the failed service's never stopped: one pair downstream
            r.speaking_down = True
        elif isinstance(frame, TTSStoppedFrame):
            r.speaking_down = False
            r.finished = max(r.finished, r.requested)
            r.last_progress = now
            if not r.framed and r.ended:
                self._complete(r, service)
        elif isinstance(frame, LLMFullResponseEndFrame) and r.framed:
            self._complete(r, service)
        if isinstance(frame, (TTSStoppedFrame, LLMFullResponseEndFrame)) and r.held:
            held, r.held = r.held, []  # its audio is all out
            r.started = r.finished = max(r.finished, r.requested)
            return [*held, frame]
        return [frame]

    def _heard_words(self, r: _Response) -> list[Frame]:
        """The held words of whole sentences whose audio has been received, released."""
        cut = 0
        for i, word in enumerate(r.held):
            offset_s = ((word.pts or 0) - (r.words_pts or 0)) / 1e9  # when it starts
            if offset_s + WORD_S > r.audio_s:
                break
            if _ends_sentence(word.text):
                cut = i + 1
        released, r.held = r.held[:cut], r.held[cut:]
        letters = sum(_letters(w.text) for w in released)
        r.started += letters
        r.finished += letters
        return list(released)

    def _complete(self, r: _Response, service: FrameProcessor) -> None:
        if r.audio or r.requested == 0:
            self.breaker(service).record_success()
        if self._response is r:
            self._response = None
            self._disarm()

    # -- faults -----------------------------------------------------------------------------

    async def _check_deadlines(self, now: float) -> None:
        r = self._response
        if r is None or r.first_request_at is None or r.requested <= r.finished:
            return
        if self._next_available(r.service, r.tried) is None:
            return  # nowhere left to go (the last resort, Piper, on a busy CPU): its audio is waited for
        if not r.audio and now - r.first_request_at > self._first_audio_s:
            await self._fault(r, f"no audio within {self._first_audio_s:g}s")
        elif r.audio and now - r.last_progress > self._stall_s:
            await self._fault(r, f"audio stalled for {self._stall_s:g}s")

    def _in_flight(self):
        return self._response

    async def _fault(self, r: _Response, reason: str) -> None:
        failed = r.service
        if self._is_silenced(failed) or not self._fail(failed, reason):
            return
        self._spawn(self._replay(r, failed, reason))

    async def _replay(self, r: _Response, failed: FrameProcessor, reason: str) -> None:
        if self._response is not r:
            return
        backup = self._next_available(failed, r.tried)
        if backup is None:
            logger.error(f"{self}: no TTS left for this response after {failed.name} ({reason})")
            self._response = None
            self._disarm()
            if r.framed and r.started_down:
                await self.push_frame(LLMFullResponseEndFrame())
            await self.push_error(f"every TTS failed this response; last: {failed.name} ({reason})")
            return
        for sentence in r.untold:  # heard, at least in part, but its transcript was held back
            await self.push_frame(TTSTextFrame(sentence, text_type="sentence"))
        text = "".join(r.texts)
        cut = resume_offset(text, r.done + r.started)
        rest = text[cut:].lstrip()
        logger.info(f"{self}: replaying on {backup.name} from letter {cut}: {rest[:60]!r}")
        r.done, r.requested, r.finished, r.started, r.audio = _letters(text[:cut]), 0, 0, 0, False
        r.announced, r.untold, r.held, r.audio_s, r.words_pts = [], [], [], 0.0, None  # held words: said again
        r.service, r.first_request_at = backup, None
        r.last_progress = self._now()
        r.tried.append(backup)
        r.texts = [text[:cut], rest]
        frames: list[Frame] = []
        if r.framed:
            frames.append(LLMFullResponseStartFrame())
            if rest:
                frames.append(LLMTextFrame(rest))
            if r.ended:
                frames.append(LLMFullResponseEndFrame())
        elif rest:
            frames.append(TTSSpeakFrame(rest))
        frames.extend(r.in_transit.values())
        self._silenced.discard(id(backup))
        for f in frames:  # queued before the switch, so new input can't overtake them
            await backup.queue_frame(f)
        await self._activate(backup, reason)
        if not frames and self._response is r:
            self._response = None
            self._disarm()


def _letters(text: str) -> int:
    return sum(ch.isalnum() for ch in text)


def _ends_sentence(word: str) -> bool:
    return word.rstrip().rstrip("\"')]»”’").endswith((".", "!", "?"))


def _words_timed(service: FrameProcessor) -> bool:
    """Whether the service reports words as they play (Cartesia) rather than sentences after."""
    return not getattr(service, "_push_text_frames", True)


def resume_offset(text: str, started: int) -> int:
    """Where to resume `text` once `started` letters have begun to play: after that sentence."""
    if started <= 0:
        return 0
    seen, i = 0, 0
    for i, ch in enumerate(text):
        if ch.isalnum():
            seen += 1
            if seen == started:
                break
    j = i + 1
    while j < len(text):  # on to the end of the sentence that letter is in
        if text[j] in ".!?\n" and (j + 1 == len(text) or not text[j + 1].isalnum()):
            j += 1
            while j < len(text) and not text[j].isspace() and not text[j].isalnum():
                j += 1  # a closing quote or bracket
            return j
        j += 1
    return len(text)

"""STT failover: a final-transcript deadline, a stall watch, a breaker per STT, the utterance replayed.

Built on Pipecat's `ServiceSwitcher` (subclassed, manual strategy) with the output gates of
`processors.failover.FailoverMixin`, like the LLM and TTS failovers. Pipecat's failover strategy
switches only when an STT becomes unusable, and the audio the failed STT already heard is gone:
the caller's words of the turn in flight are lost.

An utterance opens with a `VADUserStartedSpeakingFrame` (or, without a VAD, a
`UserStartedSpeakingFrame`) and ends of speech are `VADUserStoppedSpeakingFrame`s (or a
`UserStoppedSpeakingFrame` when no VAD frame was seen). Both are taken from either direction: in
Pipecat 1.14 the VAD runs in the user aggregator, after the STT, which sends the VAD frames
UPSTREAM to the STT (`_queued_broadcast_frame`); a VAD placed before the STT sends them downstream.
`UserStoppedSpeakingFrame` is only the fallback: the turn-stop strategies usually wait for the
final transcript before sending it.

The caller's `InputAudioRawFrame`s are kept from `preroll_s` before the speech began (the VAD start
arrives `start_secs` after it) until a final transcript answers them, at most `max_utterance_s`.
The utterance fails on a non-fatal `ErrorFrame` from its STT (401, 429, 5xx, connection errors),
when no final comes within `final_s` of the end of speech, or when interims stop for `stall_s` while
the caller speaks. Then the STT is silenced (its late transcripts never leave the switcher) and the
next available one is fed the kept audio, framed by the VAD start (and stop, if the caller has
stopped) that a segmented STT such as Whisper needs to transcribe it. The STTs pass no audio on:
the switcher passes the caller's audio downstream itself, once, as it arrives. Audio still arriving goes to the
backup, so the caller's words become one final transcript: nothing lost, nothing twice.

A missed final is not always a fault: a segmented STT sends nothing for an utterance without words
(a cough). So an STT that missed a final without having sent interims is only suspected: its
breaker records the failure once the next STT finds words in the same audio. Each utterance goes to
the first STT whose breaker allows it (so a failed one is probed after its back-off, and used again
once it answers); the audio it missed before the switch is fed to it first.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from loguru import logger
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    ErrorFrame,
    Frame,
    FunctionCallCancelFrame,
    FunctionCallInProgressFrame,
    FunctionCallResultFrame,
    FunctionCallsStartedFrame,
    InputAudioRawFrame,
    InterimTranscriptionFrame,
    LLMContextUserTurnFrame,
    OutputTransportReadyFrame,
    ServiceSwitcherRequestMetadataFrame,
    SpeechControlParamsFrame,
    TextFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserTurnInferenceCompletedFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.pipeline.service_switcher import ServiceSwitcher, ServiceSwitcherStrategyManual
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.stt_service import STTService

from processors.failover import FOR_THE_LLM, FailoverMixin, OnSwitch, error_reason

RING_S = 1.0  # audio kept between utterances beyond the pre-roll: covers the VAD's start_secs


@dataclass
class _Utterance:
    service: FrameProcessor | None
    tried: list[FrameProcessor]
    first: int  # sequence number of its first kept audio frame
    vad: bool  # opened by a VAD frame, so UserStoppedSpeakingFrame is not its end of speech
    speaking: bool = True
    stops: list[tuple[int, float]] = field(default_factory=list)  # ends of speech still without a final: (seq, loop time)
    interims: int = 0  # interims since the last final: words heard and not yet finalised
    answered: bool = False  # a final came and no interim since
    last_progress: float = 0.0
    suspects: list[tuple[FrameProcessor, str]] = field(default_factory=list)  # missed a final, no interims
    truncated: bool = False


class STTFailover(FailoverMixin, ServiceSwitcher):
    """A `ServiceSwitcher` of STT services that fails over mid-utterance without losing the caller's words."""

    _straight_to_active = True
    # Going up, an STT (Pipecat's STTService, SegmentedSTTService, Deepgram's and ours) acts on the
    # VAD frames, UserStoppedSpeakingFrame, interruptions, the assistant's turn, mute and settings;
    # these it only passes on.
    _past_members_upstream = (
        BotStartedSpeakingFrame, BotStoppedSpeakingFrame, UserStartedSpeakingFrame, UserTurnInferenceCompletedFrame,
        FunctionCallsStartedFrame, FunctionCallInProgressFrame, FunctionCallResultFrame, FunctionCallCancelFrame,
        LLMContextUserTurnFrame, OutputTransportReadyFrame, SpeechControlParamsFrame,
    )  # fmt: skip

    def __init__(
        self,
        services: list[STTService],
        *,
        final_s: float = 0.5,
        stall_s: float = 1.0,
        backoff_s: float = 5.0,
        max_backoff_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        on_switch: OnSwitch | None = None,
        preroll_s: float = 0.3,
        max_utterance_s: float = 30.0,
    ):
        super().__init__(list(services), ServiceSwitcherStrategyManual)
        # The caller's audio goes on from here, once, as it arrives (`process_frame`), not through
        # whichever STT took it: each frame leaving through a branch (the STT's push, the output gate
        # and filter, the branch's sink, the parallel pipeline) cost a phone call more CPU than
        # sending it to Deepgram did. Pipecat sets this flag only in the STT's constructor.
        for service in services:
            service._audio_passthrough = False  # noqa: SLF001
        self._init_failover(services, backoff_s=backoff_s, max_backoff_s=max_backoff_s, clock=clock, on_switch=on_switch)
        self._final_s = final_s
        self._stall_s = stall_s
        self._preroll_s = preroll_s
        self._max_utterance_s = max_utterance_s
        self._utt: _Utterance | None = None
        self._audio: deque[tuple[int, InputAudioRawFrame]] = deque()
        self._audio_s = 0.0
        self._seq = 0  # sequence number of the next audio frame
        self._fed: set[int] = set()  # ids of the copies fed to a service: held back on their way out
        # Interims of the active STT before an utterance opened (the VAD start comes late, from upstream).
        self._early_interims: tuple[int, float] = (0, 0.0)

    # -- frames in --------------------------------------------------------------------------

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        # Before routing, so a switch made here already applies to this frame.
        if isinstance(frame, InputAudioRawFrame) and direction == FrameDirection.DOWNSTREAM:
            self._keep(frame)
            # Straight to the active STT (the branches' filters would let it reach that one only),
            # and on downstream from here (the STTs pass no audio on).
            await self.strategy.active_service.queue_frame(frame, direction)
            await self.push_frame(frame, direction)
            return
        if isinstance(frame, FOR_THE_LLM):  # the STTs only pass these on
            await self.push_frame(frame, direction)
            return
        if isinstance(frame, (VADUserStartedSpeakingFrame, UserStartedSpeakingFrame)):
            await self._speech_started(frame)
        elif isinstance(frame, (VADUserStoppedSpeakingFrame, UserStoppedSpeakingFrame)):
            self._speech_stopped(frame)
        await super().process_frame(frame, direction)

    def _keep(self, frame: InputAudioRawFrame) -> None:
        self._audio.append((self._seq, frame))
        self._seq += 1
        self._audio_s += _seconds(frame)
        utt = self._utt
        limit = self._max_utterance_s if utt else self._preroll_s + RING_S
        while self._audio_s > limit and len(self._audio) > 1:
            seq, old = self._audio.popleft()
            self._audio_s -= _seconds(old)
            if utt and seq >= utt.first:
                utt.first = seq + 1
                if not utt.truncated:
                    utt.truncated = True
                    logger.warning(f"{self}: utterance longer than {self._max_utterance_s:g}s; a replay would miss its start")

    async def _speech_started(self, frame: Frame) -> None:
        vad = isinstance(frame, VADUserStartedSpeakingFrame)
        utt = self._utt
        if utt is not None:
            if vad or not utt.vad:  # a turn-start strategy may send its frame after the VAD stop
                utt.speaking = True  # the caller goes on: the final deadline waits for the next stop
                utt.vad = utt.vad or vad
            return
        need = getattr(frame, "start_secs", 0.0) + self._preroll_s
        first, taken = self._seq, 0.0
        for seq, kept in reversed(self._audio):
            if taken >= need - 1e-9:
                break
            first, taken = seq, taken + _seconds(kept)
        head = self.services[0]
        chosen = self._first_available(head) or self.services[-1]
        now = self._now()
        utt = self._utt = _Utterance(service=chosen, tried=[chosen], first=first, vad=vad, last_progress=now)
        early, self._early_interims = self._early_interims, (0, 0.0)
        if chosen is self.strategy.active_service and early[0]:
            utt.interims, utt.last_progress = early
        if chosen is not self.strategy.active_service:
            # It missed the start of this utterance: hand it the kept audio before the switch.
            probing = self.breaker(chosen).state == "half_open"
            await self._hand_over(chosen, "recovery probe" if probing else f"{head.name} breaker open", first)
        self._silenced.discard(id(chosen))
        self._arm()

    def _speech_stopped(self, frame: Frame) -> None:
        utt = self._utt
        if utt is None or not utt.speaking or (utt.vad and isinstance(frame, UserStoppedSpeakingFrame)):
            return
        utt.speaking = False
        if utt.answered:  # finalised on the STT's own endpointing, nothing heard since
            self._close(utt, self._seq)
            return
        utt.stops.append((self._seq, self._now()))

    # -- frames out -------------------------------------------------------------------------

    async def _gate_output(self, service: FrameProcessor, frame: Frame) -> list[Frame]:
        if frame.id in self._fed:
            self._fed.discard(frame.id)
            return []  # a VAD frame of ours, fed to this service with the kept audio
        if not isinstance(frame, TextFrame):
            return [frame]
        if self._is_silenced(service):
            return []
        utt = self._utt
        if utt is None:
            if service is self.strategy.active_service:
                n, at = self._early_interims
                now = self._now()
                self._early_interims = (n + 1, now) if isinstance(frame, InterimTranscriptionFrame) else (0, 0.0)
            return [frame]
        if service is not utt.service:
            return []  # one STT speaks for an utterance
        now = self._now()
        if isinstance(frame, InterimTranscriptionFrame):
            utt.interims += 1
            utt.answered = False
            utt.last_progress = now
        elif isinstance(frame, TranscriptionFrame):
            self.breaker(service).record_success()
            if frame.text.strip():
                self._convict(utt)
            utt.interims, utt.last_progress = 0, now
            if not utt.speaking:
                self._close(utt, utt.stops[-1][0] if utt.stops else self._seq)
                return [frame]
            # Finalised while the caller speaks: the answer to an earlier stop (the caller paused),
            # or the STT's own endpointing, which covers what it heard so far.
            utt.answered = not utt.stops
            cut = utt.stops.pop(0)[0] if utt.stops else self._seq
            self._drop_before(cut)
            utt.first = max(utt.first, cut)
        return [frame]

    def _close(self, utt: _Utterance, cut: int) -> None:
        self._drop_before(cut)
        if self._utt is utt:
            self._utt = None
            self._disarm()

    def _drop_before(self, seq: int) -> None:
        while self._audio and self._audio[0][0] < seq:
            _, old = self._audio.popleft()
            self._audio_s -= _seconds(old)

    def _convict(self, utt: _Utterance) -> None:
        """Words were found where a suspect sent no final: it failed after all."""
        for suspect, reason in utt.suspects:
            self.breaker(suspect).record_failure(reason)
            logger.warning(f"{self}: {suspect.name} missed words ({reason}); breaker {self.breaker(suspect).state}")
        utt.suspects.clear()

    # -- faults -----------------------------------------------------------------------------

    async def _check_deadlines(self, now: float) -> None:
        utt = self._utt
        if utt is None or utt.service is None:
            return
        if not utt.speaking and utt.stops and now - utt.stops[-1][1] > self._final_s:
            if self._next_available(utt.service, utt.tried) is None:
                return  # nowhere left to go (the last resort, Whisper, is slower): its final is waited for
            await self._fault(utt, f"no final within {self._final_s:g}s", confirmed=utt.interims > 0)
        elif utt.speaking and utt.interims and now - utt.last_progress > self._stall_s:
            await self._fault(utt, f"interims stalled for {self._stall_s:g}s")

    def _in_flight(self):
        return self._utt

    async def _silence(self, service: FrameProcessor) -> None:
        # No InterruptionFrame for an STT: it would not stop a transcription, and it could drop
        # frames on their way through the service. Its gate holds back what it says.
        return

    async def _fault(self, utt: _Utterance, reason: str, *, confirmed: bool = True) -> None:
        failed = utt.service
        if failed is None or self._is_silenced(failed):
            return
        if confirmed:
            self._fail(failed, reason)
        else:
            self._silenced.add(id(failed))
            utt.suspects.append((failed, reason))
            logger.warning(f"{self}: {failed.name} suspected ({reason}); the next STT decides")
        utt.service = None
        self._spawn(self._replay(utt, failed, reason, confirmed))

    async def _replay(self, utt: _Utterance, failed: FrameProcessor, reason: str, confirmed: bool) -> None:
        if self._utt is not utt:
            return
        backup = self._next_available(failed, utt.tried)
        if backup is None:
            self._close(utt, self._seq)
            if confirmed or not utt.suspects:
                logger.error(f"{self}: no STT left for this utterance after {failed.name} ({reason})")
                await self.push_error(f"every STT failed this utterance; last: {failed.name} ({reason})")
            else:
                logger.info(f"{self}: no final from any STT: an utterance without words")
            return
        if not backup.is_usable:
            await backup.set_usable(True)  # before the hand-over, which must not yield
            if self._utt is not utt:
                return
        now = self._now()
        utt.service, utt.interims, utt.answered, utt.last_progress = backup, 0, False, now
        utt.tried.append(backup)
        utt.stops = [] if utt.speaking else [(self._seq, now)]
        await self._hand_over(backup, reason, utt.first, framed=True, stopped=not utt.speaking)

    async def _on_service_error(self, frame: ErrorFrame) -> None:
        service = frame.processor
        if self._utt is not None or service is not self.strategy.active_service:
            await super()._on_service_error(frame)
            return
        # Between utterances (a connection lost, say): the next one goes elsewhere, with the audio
        # kept so far, which may hold the start of the caller's next words.
        reason = error_reason(frame)
        self.breaker(service).record_failure(reason)
        logger.warning(f"{self}: {service.name} failed between utterances ({reason})")
        nxt = self._first_available(service)
        if nxt is not None and nxt is not service:
            if not nxt.is_usable:
                await nxt.set_usable(True)
            await self._hand_over(nxt, reason, self._audio[0][0] if self._audio else self._seq)

    async def _hand_over(self, service: FrameProcessor, reason: str, first: int, *, framed: bool = False, stopped: bool = False) -> None:
        """Feed `service` the kept audio from `first` on, then make it the active one.

        Nothing here yields until the switch (`queue_frame` on a queued processor does not), so no
        audio arriving meanwhile can be routed to neither service or overtake the copies. `framed`
        adds the VAD start (and with `stopped` the stop) that a segmented STT transcribes between.
        """
        frames: list[Frame] = [dataclasses.replace(f) for seq, f in self._audio if seq >= first]
        seconds = sum(_seconds(f) for f in frames)  # type: ignore[arg-type]
        if framed:
            frames.insert(0, VADUserStartedSpeakingFrame())
            if stopped:
                frames.append(VADUserStoppedSpeakingFrame())
        self._fed.update(f.id for f in frames if not isinstance(f, InputAudioRawFrame))  # audio is not passed on
        self._silenced.discard(id(service))
        for f in frames:
            await service.queue_frame(f)
        await self._activate(service, reason)
        await service.queue_frame(ServiceSwitcherRequestMetadataFrame(service=service))
        logger.info(f"{self}: fed {seconds:.2f}s of the caller's audio to {service.name}")


def _seconds(frame: InputAudioRawFrame) -> float:
    return frame.num_frames / frame.sample_rate if frame.sample_rate else 0.0

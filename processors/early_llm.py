"""Early LLM start: the LLM answers the interim transcript while the final one is on its way.

A user-turn stop strategy wrapping the one that decides the end of the turn (`FlowAwareTurnStop`,
smart-turn), the way Pipecat's `deferred(...)` wraps one. When the caller's VAD has stopped and
the latest interim transcript (after the turn's finals so far) is a likely-complete turn
(`speculate(text)`: not empty, the flow does not expect more, the turn goes to the cloud LLM), it
starts a speculative inference on it through Pipecat's own mechanism
(`trigger_user_turn_inference_triggered(speculation=...)`): the user aggregator runs the LLM on a
provisional copy of the context, the LLM service's `SpeculationGate` holds everything the reply
produces, and a tool call the reply reaches does not run before the turn is confirmed (Pipecat
withdraws the run; `ClaudeLLMService` holds the call until then). When the wrapped strategy ends
the turn:

- the final transcript says the same words (`NormalizedMatch`: case and punctuation aside): the
  turn is finalized as confirming the speculation (`confirms_speculation=True`): the caller's
  final words are written to the context, no second inference runs, and the
  `UserStoppedSpeakingFrame` releases the held reply;
- otherwise the speculation is withdrawn (`EagerEndOfTurnCancelFrame`, broadcast ahead of the turn
  end: the LLM stops, the gate drops what it held) and the turn runs as usual on the final text.

A speculation is also withdrawn when the caller speaks again, when a newer interim says something
else (a new one starts on it if it qualifies), and when the turn ends any other way (the stop
watchdog). The context is never written by a speculation, so a withdrawn one leaves no trace.
"""

from __future__ import annotations

from collections.abc import Callable

from loguru import logger
from pipecat.frames.frames import (
    EagerEndOfTurnCancelFrame,
    Frame,
    InterimTranscriptionFrame,
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameProcessorSetup
from pipecat.turns.types import ProcessFrameResult, UserTurnSpeculation
from pipecat.turns.user_stop import BaseUserTurnStopStrategy, EagerMatchPolicy, NormalizedMatch, UserTurnStoppedParams

# Events reported through `on_event` (counted on the call as `early_llm:<event>`).
STARTED, CONFIRMED, RESTARTED, WITHDRAWN = "started", "confirmed", "restarted", "withdrawn"


class EarlyLLMTurnStop(BaseUserTurnStopStrategy):
    """Wraps a stop strategy; starts the LLM on a likely-complete interim transcript."""

    def __init__(
        self,
        inner: BaseUserTurnStopStrategy,
        *,
        speculate: Callable[[str], bool],
        match_policy: EagerMatchPolicy | None = None,
        on_event: Callable[[str], None] | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self._inner = inner
        self._speculate = speculate
        self._match = match_policy or NormalizedMatch()
        self._on_event = on_event
        self._finals: list[str] = []  # this turn's final transcripts
        self._interim = ""  # the latest interim after them
        self._quiet = False  # the VAD says the caller has stopped
        self._speculation: UserTurnSpeculation | None = None
        self._confirming = False  # the inner strategy is ending a turn the speculation answered
        inner.add_event_handler("on_push_frame", self._forward_push)
        inner.add_event_handler("on_broadcast_frame", self._forward_broadcast)
        inner.add_event_handler("on_user_turn_speculation_cancelled", self._forward_cancelled)
        inner.add_event_handler("on_user_turn_inference_triggered", self._inner_inference)
        inner.add_event_handler("on_user_turn_stopped", self._inner_stopped)

    @property
    def inner(self) -> BaseUserTurnStopStrategy:
        return self._inner

    @property
    def speculation(self) -> UserTurnSpeculation | None:
        """The speculation in flight, if any."""
        return self._speculation

    @property
    def resolves_proposed_turn_stop_frames(self) -> bool:
        return self._inner.resolves_proposed_turn_stop_frames

    async def setup(self, setup: FrameProcessorSetup):
        await super().setup(setup)
        await self._inner.setup(setup)

    async def cleanup(self):
        await super().cleanup()
        await self._inner.cleanup()

    async def handle_user_turn_started(self):
        await self._reset()
        await self._inner.handle_user_turn_started()

    async def handle_user_turn_stopped(self):
        # Runs before the turn-end event: a speculation the turn did not settle is withdrawn ahead
        # of the UserStoppedSpeakingFrame that would release it.
        await self._reset()
        await self._inner.handle_user_turn_stopped()

    async def process_frame(self, frame: Frame) -> ProcessFrameResult | None:
        # Our view of the words first: the inner strategy may end the turn on this very frame.
        if isinstance(frame, TranscriptionFrame):
            if frame.text.strip():
                self._finals.append(frame.text.strip())
            self._interim = ""
        elif isinstance(frame, InterimTranscriptionFrame):
            self._interim = frame.text.strip()
        elif isinstance(frame, VADUserStartedSpeakingFrame):
            self._quiet = False
            await self._withdraw("the caller speaks again")
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            self._quiet = True
        elif isinstance(frame, EagerEndOfTurnCancelFrame):
            self._speculation = None  # withdrawn further down (no LLM to run it on)
        result = await self._inner.process_frame(frame)
        if isinstance(frame, (InterimTranscriptionFrame, VADUserStoppedSpeakingFrame)):
            await self._maybe_speculate()
        return result

    # -- speculating ------------------------------------------------------------------------

    async def _maybe_speculate(self) -> None:
        if not self._quiet or not self._interim:
            return  # the caller is still talking, or the final already covers what was heard
        text = " ".join([*self._finals, self._interim])
        if self._speculation is not None and self._match.matches(self._speculation.text, text):
            return
        await self._withdraw("a newer interim says something else")
        if not self._speculate(text):
            return
        self._speculation = UserTurnSpeculation(text=text)
        self._event(STARTED)
        logger.debug(f"{self}: starting the LLM early on [{text}]")
        await self.trigger_user_turn_inference_triggered(speculation=self._speculation)

    async def _withdraw(self, reason: str) -> None:
        speculation, self._speculation = self._speculation, None
        if speculation is not None:
            self._event(WITHDRAWN)
            logger.debug(f"{self}: early LLM start withdrawn ({reason}): [{speculation.text}]")
            await self.trigger_user_turn_speculation_cancelled()

    async def _reset(self) -> None:
        await self._withdraw("the turn ended without settling it")
        self._finals.clear()
        self._interim = ""
        self._confirming = False

    def _event(self, name: str) -> None:
        if self._on_event:
            self._on_event(name)

    # -- the inner strategy's events --------------------------------------------------------

    async def _inner_inference(self, inner, speculation: UserTurnSpeculation | None = None):
        """The inner strategy ends the turn (inference first, then the turn-stop event)."""
        early, self._speculation = self._speculation, None
        if speculation is not None or early is None:
            await self.trigger_user_turn_inference_triggered(speculation=speculation)
            return
        final = " ".join(self._finals)
        if self._match.matches(early.text, final):
            self._event(CONFIRMED)
            logger.debug(f"{self}: the final transcript confirms the early LLM start")
            self._confirming = True  # its reply is on the way: no second inference
            return
        self._event(RESTARTED)
        logger.debug(f"{self}: the final transcript differs, LLM restarted (early: [{early.text}], final: [{final}])")
        await self.trigger_user_turn_speculation_cancelled()
        await self.trigger_user_turn_inference_triggered()

    async def _inner_stopped(self, inner, params: UserTurnStoppedParams):
        confirming, self._confirming = self._confirming, False
        await self.trigger_user_turn_finalized(
            enable_user_speaking_frames=params.enable_user_speaking_frames,
            confirms_speculation=confirming or params.confirms_speculation,
        )

    async def _forward_push(self, inner, frame, direction):
        await self._call_event_handler("on_push_frame", frame, direction)

    async def _forward_broadcast(self, inner, frame_cls, **kwargs):
        await self._call_event_handler("on_broadcast_frame", frame_cls, **kwargs)

    async def _forward_cancelled(self, inner):
        await self.trigger_user_turn_speculation_cancelled()

"""LLM failover: deadlines, a circuit breaker per LLM, and the turn in flight replayed on the next.

Built on Pipecat's `LLMSwitcher` (subclassed, manual strategy) rather than beside it, so it is
still an `LLMSwitcher` everywhere one is accepted: Pipecat Flows' `FlowManager(llm=...)` registers
functions on every member, tool handlers are synced on all of them, and the turn router's
`ManuallySwitchServiceFrame`s work as before. What Pipecat's failover strategy leaves out is added
through `processors.failover.FailoverMixin`: an output gate after each LLM, so the failed LLM's
late output never reaches the caller, and the policy below.

A turn is one `LLMContextFrame`. It goes to the first service whose breaker allows it, starting
from the router's choice (or the current one for runs that are not caller turns). It fails when:
no `LLMTextFrame`/`FunctionCallsStartedFrame` within `first_token_s`; no output for `stall_s`
before `LLMFullResponseEndFrame`; or a non-fatal `ErrorFrame` from that LLM (Anthropic pushes one
for every API status error, 401/429/5xx/529, and connection errors, then its end frame). Then:
its breaker records the failure, it is interrupted and silenced, and the same context is replayed
on the next available LLM. If text of the failed reply already reached the caller, the backup's
reply opens with `notice` (one LLMTextFrame) so the caller hears the restart, and is a response of
its own (the partial one is closed first); otherwise the response start and end frames downstream
stay one pair. An end frame within the deadlines records a success,
which closes a half-open breaker (a failed LLM is probed on the first turn after its back-off).
If no LLM is left, the response is closed and an ErrorFrame goes upstream.

Early LLM start (`processors.early_llm`): a speculative context (`LLMContextFrame.speculation`,
the caller's interim words) is a turn that is not confirmed yet. Pipecat's `SpeculationGate` in the
LLM holds its reply until the `UserStoppedSpeakingFrame` that confirms it, so nothing of it is
seen here before then: its deadlines run from the confirmation, and a fault of the LLM meanwhile
is recorded (breaker, silenced) with the turn replayed on the next LLM only at the confirmation.
A withdrawal (`EagerEndOfTurnCancelFrame`) drops the turn: from upstream (the final transcript
differs, the caller went on talking) or from the LLM itself (Pipecat's LLMService withdraws a
speculative run that reaches a tool call; `ClaudeLLMService` holds the call instead); the strategy
that started it then runs the turn as usual. Speculation is for the LLMs ahead of the last (the
local brain answers in milliseconds): a speculative context whose turn would start on the last
service, or that arrives while another turn is in flight, is declined (withdrawn upstream). The caller's
turn boundaries (`UserStartedSpeakingFrame`/`UserStoppedSpeakingFrame`) reach every member, so
each LLM's gate knows whether a turn is open when it is handed a speculative context.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from loguru import logger
from pipecat.frames.frames import (
    EagerEndOfTurnCancelFrame,
    Frame,
    FunctionCallsStartedFrame,
    InterruptionFrame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    ManuallySwitchServiceFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from pipecat.pipeline.llm_switcher import LLMSwitcher
from pipecat.pipeline.service_switcher import ServiceSwitcherStrategyManual
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.llm_service import LLMService

from app.brain.understand import NOTHING_HEARD
from processors.failover import FailoverMixin, OnSwitch

NOTICE = "Sorry, let me start that again. "
# Metadata key on a speculative context withdrawn while it may still wait in its LLM's queue: the
# LLM drops it unanswered (see `app.providers.claude`).
WITHDRAWN = "frontdesk.withdrawn"


@dataclass
class _Turn:
    frame: LLMContextFrame
    service: FrameProcessor | None = None
    tried: list[FrameProcessor] = field(default_factory=list)
    started_at: float = 0.0  # loop time the current attempt was handed the context
    last_output: float = 0.0
    first_token: bool = False
    started_down: bool = False  # an LLMFullResponseStartFrame went downstream
    text_down: bool = False  # some text of this turn reached the caller
    notice_due: bool = False
    speculative: bool = False  # an early start the caller's final words have not confirmed yet
    fault: tuple[FrameProcessor, str] | None = None  # a fault while speculative: replay when confirmed


class LLMFailover(FailoverMixin, LLMSwitcher):
    """An `LLMSwitcher` that fails over on errors, missed first tokens and stalls, replaying the turn."""

    _to_every_member = (UserStartedSpeakingFrame, UserStoppedSpeakingFrame)

    def __init__(
        self,
        llms: list[LLMService],
        *,
        first_token_s: float = 1.5,
        stall_s: float = 1.0,
        backoff_s: float = 5.0,
        max_backoff_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        on_switch: OnSwitch | None = None,
        notice: str = NOTICE,
    ):
        super().__init__(llms, ServiceSwitcherStrategyManual)
        self._init_failover(llms, backoff_s=backoff_s, max_backoff_s=max_backoff_s, clock=clock, on_switch=on_switch)
        self._first_token_s = first_token_s
        self._stall_s = stall_s
        self._notice = notice
        self._preferred: FrameProcessor = llms[0]
        self._turn: _Turn | None = None
        self._pending: deque[LLMContextFrame] = deque()
        self._passing: set[int] = set()  # withdrawals from upstream on their way through an LLM

    # -- frames in --------------------------------------------------------------------------

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        if isinstance(frame, ManuallySwitchServiceFrame) and self._is_member(frame.service):
            await self._route(frame.service)
            return
        if isinstance(frame, LLMContextFrame) and direction == FrameDirection.DOWNSTREAM:
            self._sync_registered_tool_handlers(frame.context.tools)
            if frame.speculation:
                await self._speculate(frame)
            elif self._turn is not None:
                self._pending.append(frame)  # the LLM answers one context at a time anyway
            else:
                await self._begin(frame)
            return
        if isinstance(frame, InterruptionFrame):
            self._turn = None
            self._pending.clear()
            self._disarm()
        elif isinstance(frame, EagerEndOfTurnCancelFrame) and direction == FrameDirection.DOWNSTREAM:
            self._passing.add(frame.id)  # on its way out it is not the LLM's own withdrawal
            self._withdraw()
        elif isinstance(frame, UserStoppedSpeakingFrame) and self._turn is not None and self._turn.speculative:
            await self._confirm(self._turn)
        await super().process_frame(frame, direction)

    # -- early starts -----------------------------------------------------------------------

    async def _speculate(self, frame: LLMContextFrame) -> None:
        # An early start replacing another comes after the other's withdrawal (a system frame).
        chosen = self._first_available(self._preferred)
        if self._turn is not None or chosen is None or chosen is self.services[-1]:
            logger.debug(f"{self}: early start declined ({'a turn in flight' if self._turn else 'no LLM ahead of the last'})")
            await super().push_frame(EagerEndOfTurnCancelFrame(), FrameDirection.UPSTREAM)
            return
        await self._begin(frame)

    def _withdraw(self) -> None:
        """The speculative turn is void: drop it (the LLM stops it on the cancel frame after us)."""
        turn = self._turn
        if turn is not None and turn.speculative:
            turn.frame.metadata[WITHDRAWN] = True
            self._turn = None
            self._disarm()
            if self._pending:
                self._spawn(self._begin(self._pending.popleft()))

    async def _confirm(self, turn: _Turn) -> None:
        """The caller's final words confirm the early start: the turn is an ordinary one from here."""
        turn.speculative = False
        turn.frame = LLMContextFrame(context=turn.frame.context)  # what a replay runs, unheld
        if turn.fault is not None:
            failed, reason = turn.fault
            turn.fault = None
            await self._replay(turn, failed, reason)
        else:
            turn.started_at = turn.last_output = self._now()  # its reply was held until now

    async def _route(self, target: FrameProcessor) -> None:
        """The router's choice for the next caller turn, unless its breaker is open."""
        self._preferred = target
        chosen = self._first_available(target)
        if chosen is None:
            return
        await self._activate(chosen, None if chosen is target else f"{target.name} breaker open")

    async def _begin(self, frame: LLMContextFrame) -> None:
        active = self.strategy.active_service
        if _is_caller_turn(frame.context):
            start = self._preferred
        else:  # a follow-up run stays with the LLM that took the turn, if it still may
            start = active
        chosen = self._first_available(start) or self.services[-1]
        if chosen is not active:
            probing = self.breaker(chosen).state == "half_open"
            reason = "recovery probe" if probing else f"{start.name} breaker open"
            await self._activate(chosen, None if chosen is start and not probing else reason)
        turn = _Turn(frame, speculative=frame.speculation)
        self._turn = turn
        await self._attempt(turn, chosen)

    async def _attempt(self, turn: _Turn, service: FrameProcessor) -> None:
        self._silenced.discard(id(service))
        now = self._now()
        turn.service, turn.started_at, turn.last_output, turn.first_token = service, now, now, False
        turn.tried.append(service)
        self._arm()
        await service.queue_frame(turn.frame)

    def _finish(self, turn: _Turn) -> None:
        if self._turn is turn:
            self._turn = None
            self._disarm()
            if self._pending:
                self._spawn(self._begin(self._pending.popleft()))

    # -- frames out -------------------------------------------------------------------------

    async def _gate_output(self, service: FrameProcessor, frame: Frame) -> list[Frame]:
        if isinstance(frame, EagerEndOfTurnCancelFrame) and frame.id not in self._passing:
            # The LLM withdrew its own speculative run; its copy upstream tells the strategy.
            if self._turn is not None and service is self._turn.service:
                self._withdraw()
            return []
        self._passing.discard(frame.id)
        if self._is_silenced(service):
            return []
        turn = self._turn
        if turn is None or service is not turn.service:
            return [frame]
        turn.last_output = self._now()
        out: list[Frame] = [frame]
        if isinstance(frame, LLMFullResponseStartFrame):
            if not turn.started_down:
                turn.started_down = True
            elif turn.notice_due:
                # The failed reply was partly spoken: close it, and the backup's (notice first)
                # is a reply of its own, so the reply guard counts its sentences afresh.
                return [LLMFullResponseEndFrame(), frame]
            else:
                return []
        elif isinstance(frame, (LLMTextFrame, FunctionCallsStartedFrame)):
            turn.first_token = True
            if turn.notice_due:
                turn.notice_due = False
                out.insert(0, LLMTextFrame(self._notice))
            turn.text_down = turn.text_down or isinstance(frame, LLMTextFrame)
        elif isinstance(frame, LLMFullResponseEndFrame):
            self.breaker(service).record_success()
            self._finish(turn)
        return out

    # -- faults -----------------------------------------------------------------------------

    async def _check_deadlines(self, now: float) -> None:
        turn = self._turn
        if turn is None or turn.service is None or turn.speculative:
            return  # a speculative reply is held in the LLM until confirmed: nothing to time yet
        if not turn.first_token and now - turn.started_at > self._first_token_s:
            await self._fault(turn, f"no first token within {self._first_token_s:g}s")
        elif turn.first_token and now - turn.last_output > self._stall_s:
            await self._fault(turn, f"stalled for {self._stall_s:g}s mid-reply")

    def _in_flight(self):
        return self._turn

    async def _fault(self, turn: _Turn, reason: str) -> None:
        failed = turn.service
        if failed is None or not self._fail(failed, reason):
            return
        turn.service = None
        if turn.speculative:
            turn.fault = (failed, reason)  # replayed if the caller's final words confirm the turn
            return
        self._spawn(self._replay(turn, failed, reason))

    async def _replay(self, turn: _Turn, failed: FrameProcessor, reason: str) -> None:
        if self._turn is not turn:
            return  # interrupted meanwhile
        backup = self._next_available(failed, turn.tried)
        if backup is None:
            logger.error(f"{self}: no LLM left for this turn after {failed.name} ({reason})")
            self._finish(turn)
            if turn.started_down:
                await self.push_frame(LLMFullResponseEndFrame())
            await self.push_error(f"every LLM failed this turn; last: {failed.name} ({reason})")
            return
        await self._activate(backup, reason)
        turn.notice_due = turn.text_down
        await self._attempt(turn, backup)


def _is_caller_turn(context: LLMContext) -> bool:
    """Whether the context ends with the caller's words (as the turn router decides it)."""
    messages = context.get_messages()
    last = messages[-1] if messages else None
    if not isinstance(last, dict):
        return False
    return last.get("role") == "user" or (last.get("role") == "developer" and last.get("content") == NOTHING_HEARD)

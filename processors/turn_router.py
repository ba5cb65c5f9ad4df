"""The turn router: simple caller turns take the local fast path, the rest go to the LLM.

A thin layer on Pipecat's `LLMSwitcher` (manual strategy): the brain slot of the pipeline is
`LLMSwitcher([llm, local brain])`, and this processor, just before it, reads each context the user
aggregator sends. For a caller turn it asks `app.brain.route.route` (pure, ~0.1 ms) and, when the
answer differs from the active service, pushes a `ManuallySwitchServiceFrame` ahead of the
context. Runs that are not caller turns (a node's opening line, the reply after a function
result) stay with whichever brain took the turn that led to them, so one turn is answered by one
brain. Both brains share the context, the flow's functions and the flow state in code, so a turn
answered on the fast path leaves the LLM with the same conversation it would have had.

With a light model (bot.yaml `light_model:`), the LLM turns are weighed too (`route(...,
light=True)`): a simple one is answered by the same LLM service on the light model. An
`LLMUpdateSettingsFrame` addressed to the LLM goes ahead of the context whenever the model must
change, and back to the main model before the next LLM turn that is not light. One service stays
in the failover chain, so failover, the shared context and the tool handlers are the same for
both models. The follow-up runs of a light turn stay on the light model.

Each decision is logged with its reason and counted in the call's counters
(`route:fast`, `route:light`, `route:llm`, `route:fast:<reason>`, `route:light:<reason>`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from loguru import logger
from pipecat.frames.frames import (
    EagerEndOfTurnCancelFrame,
    Frame,
    LLMContextFrame,
    LLMUpdateSettingsFrame,
    ManuallySwitchServiceFrame,
    UserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.llm_service import LLMService
from pipecat.services.settings import LLMSettings

from app.brain.route import Mode, Route, route
from app.brain.understand import NOTHING_HEARD
from app.flows.session import CallSession


@dataclass(frozen=True)
class Models:
    """The LLM's own model and the lighter one for simple turns."""

    main: str
    light: str


class TurnRouter(FrameProcessor):
    def __init__(
        self,
        session: CallSession,
        *,
        llm: LLMService,
        fast: LLMService,
        mode: Mode = "conservative",
        models: Models | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self._session = session
        self._llm = llm
        self._fast = fast
        self._mode: Mode = mode
        self._models = models
        self._model = models.main if models else None  # the model the LLM is set to
        self._active: LLMService = llm
        self.decisions: list[Route] = []  # counted turns (an early start once its turn confirms it)
        self._pending: tuple[Route, str] | None = None
        self.decision_s = 0.0  # total time spent deciding (for the benchmark)

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMContextFrame) and direction == FrameDirection.DOWNSTREAM:
            text = _last_user_text(frame.context.get_messages())
            if text is not None:
                self._pending = None  # an early start before this turn's final context was withdrawn
                await self._route(text, early=frame.speculation)
        elif isinstance(frame, EagerEndOfTurnCancelFrame):
            self._pending = None  # the early start is withdrawn: its turn is routed again, or not at all
        elif isinstance(frame, UserStoppedSpeakingFrame) and self._pending is not None:
            self._count(*self._pending)  # the turn ended on the early start's words: it stands
            self._pending = None
        await self.push_frame(frame, direction)

    async def _route(self, text: str, early: bool = False) -> None:
        """Route a caller turn. An early start (`early`: a speculative context on the interim
        words) is routed at once but counted only when the turn confirms it."""
        started = time.perf_counter()
        decision = route(self._session, text, self._mode, light=self._models is not None)
        self.decision_s += time.perf_counter() - started
        if early:
            self._pending = (decision, text)
        else:
            self._count(decision, text)
        target = self._fast if decision.fast else self._llm
        if target is not self._active:
            self._active = target
            await self.push_frame(ManuallySwitchServiceFrame(service=target))
        if self._models and not decision.fast:
            await self._set_model(self._models.light if decision.light else self._models.main)

    def _count(self, decision: Route, text: str) -> None:
        self.decisions.append(decision)
        counters = self._session.counters
        counters[f"route:{decision.path}"] += 1
        if decision.path != "llm":
            counters[f"route:{decision.path}:{decision.reason}"] += 1
        logger.info(f"call {self._session.call_id}: turn -> {decision.path} ({decision.reason}): {text!r}")

    async def _set_model(self, model: str) -> None:
        """Addressed to the LLM, so it reaches it through the failover even while it is inactive;
        ahead of the context in the LLM's queue, and kept there by interruptions."""
        if model != self._model:
            self._model = model
            await self.push_frame(LLMUpdateSettingsFrame(delta=LLMSettings(model=model), service=self._llm))


def _last_user_text(messages: list) -> str | None:
    """The caller's words when the context ends with a caller turn, else None."""
    if not messages:
        return None
    last = messages[-1]
    if not isinstance(last, dict):
        return None
    content = last.get("content")
    if last.get("role") == "developer" and content == NOTHING_HEARD:
        return ""  # speech nobody could transcribe: a caller turn with no words
    if last.get("role") != "user":
        return None
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""

"""Assemble one call: the Pipecat pipeline around a brain driven by Pipecat Flows.

    transport in -> [STT] -> user aggregator -> [turn router] -> brain (Flows; LLM failover)
                 -> reply guard -> bot transcript -> [TTS] -> transport out -> assistant aggregator

`frontdesk chat` uses this same assembly with no audio stages: text turns enter as finalized
transcriptions and the bot's words are read off the transcript processor.
"""

from __future__ import annotations

import importlib
import uuid
import weakref
from collections.abc import AsyncIterable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from loguru import logger
from pipecat.flows import Flow as PipecatFlow
from pipecat.flows import FlowManager
from pipecat.pipeline.llm_switcher import LLMSwitcher
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.frames.frames import EndFrame, Frame, InputAudioRawFrame, OutputAudioRawFrame, StopFrame, SystemFrame
from pipecat.processors.filters.function_filter import FunctionFilter
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.llm_service import LLMService
from pipecat.turns.user_turn_strategies import ExternalUserTurnStrategies

from app.config.load import LoadedBot
from app.cost import UsageMeter, price_call
from app.flows.checks import resolve_function
from app.flows.session import CallSession, direct_functions
from app.providers.brain import build_llms, lead_llm
from app.store import Store
from processors import frame_path, wait_for
from processors.llm_failover import LLMFailover
from processors.reply_guard import ReplyGuard
from processors.transcript import BotTranscript
from processors.turn_router import Models, TurnRouter

frame_path.install()  # frames processed and pushed without the work Pipecat does for nobody
wait_for.install()  # Pipecat's queue waits take one turn of the event loop, as on Python 3.12


def clock_for(bot: LoadedBot, now: datetime | None) -> Callable[[], datetime]:
    """The call's clock: fixed at `now` when given (reproducible runs), else the bot's local time."""
    if now is not None:
        fixed = now.replace(tzinfo=None)
        return lambda: fixed
    zone = ZoneInfo(bot.config.timezone)
    return lambda: datetime.now(zone).replace(tzinfo=None)


def flow_handlers(bot: LoadedBot) -> list:
    """What Pipecat's `Flow` resolves names in: generated functions, user modules, action handlers."""
    namespaces: list = [direct_functions(bot.flow)]
    namespaces += [importlib.import_module(m) for m in bot.flow.flow.handlers]
    actions = {}
    for node in bot.flow.config.nodes.values():
        for action in node.pre_actions + node.post_actions:
            if action.handler and ":" in action.handler:
                actions[action.handler] = resolve_function(action.handler)
    if actions:
        namespaces.append(actions)
    return namespaces


_flows: dict[int, PipecatFlow] = {}


def bot_flow(bot: LoadedBot) -> PipecatFlow:
    """Pipecat's Flow for a loaded bot, built once and shared by its calls (the direct functions
    find their call through its FlowManager: `CallSession.attach`). Building one reads every
    generated function's signature and docstring, ~4 ms of the event loop, too much per call."""
    key = id(bot)
    flow = _flows.get(key)
    if flow is None:
        flow = _flows[key] = PipecatFlow(bot.flow.config, handlers=flow_handlers(bot))
        weakref.finalize(bot, _flows.pop, key, None)  # a reloaded bot.yaml is a new LoadedBot
    return flow


@dataclass
class ChatResult:
    transcript: list[dict[str, str]] = field(default_factory=list)
    node: str | None = None
    slots: dict[str, Any] = field(default_factory=dict)
    outcome: dict[str, Any] | None = None
    call_id: str = ""
    counters: dict[str, int] = field(default_factory=dict)
    cost_usd: float = 0.0
    usage: dict[str, dict] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"transcript": self.transcript, "node": self.node, "slots": self.slots, "outcome": self.outcome}


@dataclass
class CallAssembly:
    """Everything one call is made of; `start()` after the pipeline is running."""

    bot: LoadedBot
    session: CallSession
    brain: LLMService | LLMSwitcher
    context: LLMContext
    aggregators: LLMContextAggregatorPair
    transcript: BotTranscript
    worker: PipelineWorker
    flow: PipecatFlow
    flow_manager: FlowManager
    meter: UsageMeter

    def finish(self, result: ChatResult, clock: Callable[[], datetime]) -> ChatResult:
        """Fill in how the call ended and close its record in the store."""
        session = self.session
        result.node = self.flow_manager.current_node
        result.slots = session.slots_json()
        result.outcome = session.outcome
        result.counters = dict(session.counters)
        cost = price_call(self.meter.finish(), self.bot.config.prices)
        spent = cost.as_metrics()  # cost_usd, cost_by_provider, usage (and unpriced providers)
        result.cost_usd, result.usage = cost.total, spent["usage"]
        logger.info(f"call {session.call_id}: {cost.summary()}")
        session.store.end_call(session.call_id, ended_at=clock(), final_node=result.node, outcome=result.outcome, metrics=result.counters | spent, caller=session.caller_number)
        return result

    async def start(self) -> None:
        self.session.sync_state()
        await self.flow_manager.initialize(self.flow.initial_node)


def count_switches(session: CallSession, kind: str) -> Callable[[str, str, str], None]:
    """A failover's `on_switch`: each switch counted on the call (`failover:llm`, and by route)."""

    def on_switch(old: str, new: str, reason: str) -> None:
        session.counters[f"failover:{kind}"] += 1
        session.counters[f"failover:{kind}:{old}->{new}"] += 1

    return on_switch


def brain_slot(bot: LoadedBot, session: CallSession) -> tuple[LLMService | LLMSwitcher, list[FrameProcessor]]:
    """The brain and the processors that stand in its place in the pipeline.

    With the local brain alone, just that. With an LLM in the chain: `LLMFailover([llm, ...,
    local brain])` (a provider that errors, is late or stalls hands the turn to the next), and
    with routing on a `TurnRouter` ahead of it, so simple turns go straight to the local brain (and,
    with a `light_model`, simple LLM turns to the first LLM on that model)."""
    llms = build_llms(bot.config, session)
    if len(llms) == 1:
        return llms[0], [llms[0]]
    f = bot.config.failover
    switcher = LLMFailover(
        llms, first_token_s=f.llm_first_token_ms / 1000, stall_s=f.stall_ms / 1000,
        backoff_s=f.backoff_s, max_backoff_s=f.max_backoff_s, on_switch=count_switches(session, "llm"),
    )  # fmt: skip
    lead = lead_llm(bot.config)
    if bot.config.routing == "off":
        if lead and lead.light_model:
            logger.warning(f"call {session.call_id}: light_model '{lead.light_model}' unused: it needs routing on")
        return switcher, [switcher]
    models = Models(lead.model, lead.light_model) if lead and lead.light_model else None
    return switcher, [TurnRouter(session, llm=llms[0], fast=llms[-1], mode=bot.config.routing, models=models), switcher]


RTVI_TRANSPORTS = ("webrtc", "daily", "eval")


def caller_audio_ends_here() -> FunctionFilter:
    """Drops the caller's audio after the user aggregator (its VAD and turn detection are the last
    to need it). Pipecat passes every 20 ms of it on through the brain, the guard, the TTS and the
    output transport, a dozen hops (each a queue and a task switch) that do nothing with it."""

    async def not_caller_audio(frame: Frame) -> bool:
        return not isinstance(frame, InputAudioRawFrame)

    # Input audio is a system frame (an interruption must not drop it): the filter must see those.
    return FunctionFilter(filter=not_caller_audio, direction=FrameDirection.DOWNSTREAM, filter_system_frames=True, enable_direct_mode=True)


def bot_audio_ends_here() -> FunctionFilter:
    """Drops the bot's audio once the output transport has sent it. Pipecat passes each chunk on
    "in case anyone else needs it"; after the output only the assistant aggregator is left, and it
    wants the words, not the sound (observers still see the output transport push it)."""

    async def not_bot_audio(frame: Frame) -> bool:
        return not isinstance(frame, OutputAudioRawFrame)

    return FunctionFilter(filter=not_bot_audio, direction=FrameDirection.DOWNSTREAM, enable_direct_mode=True)


class FlowWorker:
    """The call's worker as its FlowManager sees it: what the flow queues enters at the user aggregator.

    Pipecat Flows queues a node's messages, tools and `LLMRunFrame` (and its actions' frames:
    `TTSSpeakFrame`s, ...) at the worker, that is at the top of the pipeline. From there they cross
    the worker's push queue, the input transport's two queues and the STT failover (three loop
    turns at least, each waiting behind every other call's audio under load) before reaching the
    user aggregator, the first processor that does anything with them, on the way from a caller's
    answer to the bot's next question. Here
    they are put straight into the aggregator's queue, in the order they were queued. A frame that
    ends or stops the call (`EndFrame`, `StopFrame`, any system frame) still goes in at the top:
    the input transport has to see it. It reaches the aggregator after whatever the flow queued
    before it, as at the top."""

    def __init__(self, worker: PipelineWorker, entry: FrameProcessor):
        self._worker = worker
        self._entry = entry

    @staticmethod
    def enters_at_top(frame: Frame) -> bool:
        return isinstance(frame, (EndFrame, StopFrame, SystemFrame))

    async def queue_frame(self, frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM) -> None:
        if direction == FrameDirection.DOWNSTREAM and not self.enters_at_top(frame):
            await self._entry.queue_frame(frame, direction)
        else:
            await self._worker.queue_frame(frame, direction)

    async def queue_frames(self, frames: Iterable[Frame] | AsyncIterable[Frame], direction: FrameDirection = FrameDirection.DOWNSTREAM) -> None:
        if isinstance(frames, AsyncIterable):
            async for frame in frames:
                await self.queue_frame(frame, direction)
        else:
            for frame in frames:
                await self.queue_frame(frame, direction)

    def __getattr__(self, name: str) -> Any:  # events, filters, cancel ...: the worker's own
        return getattr(self._worker, name)


def assemble_call(
    bot: LoadedBot,
    store: Store,
    *,
    clock: Callable[[], datetime],
    transport: str,
    inputs: Sequence[FrameProcessor] = (),
    outputs: Sequence[FrameProcessor] = (),
    user_params: LLMUserAggregatorParams | None = None,
    call_id: str | None = None,
    on_bot_line: Callable[[str], None] | None = None,
    observers: list | None = None,
    audio_rate: int | None = None,
) -> CallAssembly:
    call_id = call_id or uuid.uuid4().hex
    session = CallSession(bot, store, call_id=call_id, clock=clock)
    brain, brain_stages = brain_slot(bot, session)
    context = LLMContext()
    params = user_params or LLMUserAggregatorParams(user_turn_strategies=ExternalUserTurnStrategies())
    aggregators = LLMContextAggregatorPair(context, user_params=params)
    transcript = BotTranscript(on_line=on_bot_line)
    voice = bot.config.voice
    meter = UsageMeter(transport)
    guard = ReplyGuard(max_sentences=voice.max_sentences, strip_markdown=voice.strip_markdown, on_event=lambda name: session.counters.update([name]))
    pipeline = Pipeline([
        *inputs, aggregators.user(), caller_audio_ends_here(), guard.fence(), *brain_stages, guard, transcript, *outputs,
        bot_audio_ends_here(), aggregators.assistant(),
    ])  # fmt: skip
    worker = PipelineWorker(
        pipeline,
        # A transport with a rate of its own (a phone line) has STT, VAD and TTS run at it, both ways.
        params=PipelineParams(enable_metrics=True, enable_usage_metrics=True, **(
            {"audio_in_sample_rate": audio_rate, "audio_out_sample_rate": audio_rate} if audio_rate else {}
        )),  # fmt: skip
        # The prebuilt client (WebRTC, Daily) and Pipecat's evals speak RTVI; a phone does not, and
        # RTVI's observer sees every push of every frame (a sixth of a phone call's CPU, measured).
        enable_rtvi=transport in RTVI_TRANSPORTS,
        idle_timeout_secs=None,
        # Pipecat's turn-tracking observer (for its tracing and audio recorder, neither used here)
        # would be handed every frame of the call through a queue of its own.
        enable_turn_tracking=False,
        conversation_id=call_id,
        observers=observers or [],
    )
    meter.watch(pipeline.processors_with_metrics())
    flow = bot_flow(bot)
    flow_manager = FlowManager(
        llm=brain, context_aggregator=aggregators, worker=FlowWorker(worker, aggregators.user()),  # type: ignore[arg-type]
        global_functions=flow.global_functions,
    )  # fmt: skip
    session.attach(flow_manager)
    store.start_call(call_id, bot=bot.config.name, flow=bot.flow.file, transport=transport, started_at=clock())
    logger.info(f"call {call_id}: {bot.config.name} on {bot.flow.file} via {transport}, brain {type(brain).__name__}")
    return CallAssembly(bot, session, brain, context, aggregators, transcript, worker, flow, flow_manager, meter)


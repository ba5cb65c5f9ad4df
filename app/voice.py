"""A voice call over any Pipecat transport: the chat assembly with STT, VAD/turns and TTS around it.

    transport in -> STT -> caller transcript -> user aggregator (Silero VAD, turn detection,
    barge-in) -> brain (Flows) -> bot transcript -> TTS -> transport out -> assistant aggregator
"""

from __future__ import annotations

import asyncio
import gc
import importlib
from collections.abc import Callable
from datetime import datetime
from typing import Protocol, runtime_checkable

from loguru import logger
from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3
from pipecat.audio.vad.vad_analyzer import VADParams
from pipecat.pipeline.runner import WorkerRunner
from pipecat.processors.aggregators.llm_response_universal import (
    LLMUserAggregatorParams,
)
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.services.stt_service import STTService
from pipecat.services.tts_service import TTSService
from pipecat.transports.base_transport import BaseTransport
from pipecat.turns.empty_user_turn import EmptyUserTurnConfig
from pipecat.turns.user_start import (
    TranscriptionUserTurnStartStrategy,
    VADUserTurnStartStrategy,
)
from pipecat.turns.user_stop import TurnAnalyzerUserTurnStopStrategy
from pipecat.turns.user_turn_strategies import UserTurnStrategies

from app.brain.route import route
from app.brain.understand import NOTHING_HEARD
from app.config.bot import BotConfig, DeepgramSTT
from app.config.load import LoadedBot
from app.pipeline import CallAssembly, ChatResult, assemble_call, clock_for, count_switches
from app.providers.speech import build_stt_chain, build_tts_chain
from app.providers.vad import QuietGatedSileroVAD
from app.store import Store
from processors.closing_mute import ClosingWordsMute
from processors.early_llm import EarlyLLMTurnStop
from processors.failover import OnSwitch
from processors.flow_turn import FlowAwareTurnStop
from processors.llm_failover import LLMFailover
from processors.stt_failover import STTFailover
from processors.transcript import CallerTranscript
from processors.tts_failover import TTSFailover


def spoken_lines(bot: LoadedBot) -> list[str]:
    """Lines the bot says word for word: the flow's fixed prompts, the fixed heads of its templated
    lines ("Let me read that back:") and the FAQ answers."""
    from app.providers.piper import template_heads

    return bot.flow.fixed_lines + template_heads(bot.flow.spoken_lines) + [faq.answer for faq in bot.config.faq]


# What a call imports that a server has not imported by the time it serves: on a worker's first
# call some 700 modules (a second of its event loop, through which every call on it stalls) unless
# `warm_up` imports them first. Each provider's modules are imported only when bot.yaml uses it.
CALL_MODULES = (
    "pipecat.runner.utils",  # /ws: which kind of client this is (Twilio, Pipecat's evals)
    "pipecat.evals.fastapi_transport",
    "pipecat.evals.serializer",
    "pipecat.evals.transport",
    "pipecat.transports.websocket.server",
    "pipecat.serializers.rtvi_client",
    "pipecat.adapters.llm.services.open_ai_adapter",  # every LLMService's default adapter, the local brain's too
    "pipecat.audio.vad.data",
    "pipecat.utils.text.skip_tags_aggregator",
    "pydantic.root_model",
)
PROVIDER_MODULES: dict[str, tuple[str, ...]] = {
    # The SDK's httpx client imports its transport (httpcore) when made, its websocket client on connect.
    # certifi finds its CA file through importlib.resources.
    "deepgram": ("app.providers.deepgram", "pipecat.services.deepgram.stt", "deepgram.listen.client", "httpcore", "certifi", "importlib.resources.readers", "importlib.readers", "websockets.legacy.client"),
    "cartesia": ("app.providers.cartesia", "pipecat.services.cartesia.tts"),
    # The Anthropic SDK's own httpx (httpx2) imports its transport and trust store when a client is
    # made, anyio's backend on the first request.
    "anthropic": ("app.providers.claude", "httpcore2", "truststore", "anyio._backends._asyncio", "anyio.streams.tls", "anyio.streams.stapled", "anyio.streams.memory"),
    "whisper": ("app.providers.whisper",),
    "piper": ("app.providers.piper",),
}


def call_modules(config: BotConfig) -> list[str]:
    """The modules a call on this bot imports (`CALL_MODULES` and its providers')."""
    modules = list(CALL_MODULES)
    for provider in [*config.stt, *config.tts, *config.brain]:
        modules += [m for m in PROVIDER_MODULES.get(provider.provider, ()) if m not in modules]
    return modules


def import_call_modules(config: BotConfig) -> None:
    for module in call_modules(config):
        importlib.import_module(module)


async def warm_up(bot: LoadedBot) -> None:
    """Import what a call needs, load the embedded models and synthesize the bot's fixed lines
    before calls need them.

    Off the event loop; safe to run in the background while calls are served (the models and the
    phrase cache are shared, process-wide)."""
    from app.config.bot import PiperTTS, WhisperSTT
    from app.providers.piper import prewarm
    from app.providers.speech import piper_voice_dir, whisper_model_dir
    from app.providers.whisper import shared_whisper_model

    await asyncio.to_thread(import_call_modules, bot.config)
    for stt in bot.config.stt:
        if isinstance(stt, WhisperSTT) and stt.model == "tiny.en":
            await asyncio.to_thread(shared_whisper_model, whisper_model_dir(), stt.compute_type)
            break
    for tts in bot.config.tts:
        if isinstance(tts, PiperTTS) and tts.cache:
            model = piper_voice_dir() / f"{tts.voice}.onnx"
            if model.exists():
                await prewarm(model, spoken_lines(bot))
            break
    # What is loaded now (modules, models, the bot) lives as long as the process. Python's full
    # garbage collection walks every object it tracks (~170 ms for the ~290k here, measured), a
    # pause of every call on this process, and calls allocate enough to start one now and then.
    # Frozen objects are left out; a full collection then walks the calls' own objects (~75 ms at
    # 25 phone calls, measured).
    gc.freeze()


def early_llm_on(config: BotConfig) -> bool:
    """bot.yaml `turn: early_llm:`; unset, on when the first STT of the chain sends interim
    transcripts (Deepgram with `interim_results`). Whisper sends none, so it never starts early."""
    if config.turn.early_llm is not None:
        return config.turn.early_llm
    first = config.stt[0]
    return isinstance(first, DeepgramSTT) and first.interim_results


def may_start_early(call: CallAssembly, text: str) -> bool:
    """Whether the LLM may start on these interim words: a cloud LLM is in the brain chain, the
    flow is not waiting for the rest of a value, and the turn router would not answer it locally."""
    if not isinstance(call.brain, LLMFailover) or call.session.expects_more(text):
        return False
    return not route(call.session, text, call.bot.config.routing).fast


def voice_user_params(
    config: BotConfig,
    expects_more: Callable[[str], bool] = lambda text: False,
    *,
    early_llm: Callable[[str], bool] | None = None,
    on_event: Callable[[str], None] | None = None,
    closing: Callable[[], bool] | None = None,
) -> LLMUserAggregatorParams:
    """VAD, turn start/stop and barge-in, from bot.yaml's `turn:`. With the `silence` detector the
    flow holds the turn open while the caller is mid-value (`expects_more`). With `early_llm` (may
    the LLM start on these interim words?) the LLM starts on the interim transcript at the VAD stop
    (`EarlyLLMTurnStop`, events to `on_event`). With `closing` (is the flow at a node that ends the
    call?) the caller is muted from then on, so the closing words play whole (`ClosingWordsMute`)."""
    turn = config.turn
    vad = QuietGatedSileroVAD(params=VADParams(start_secs=turn.vad_start_secs, stop_secs=turn.vad_stop_secs))
    if turn.detector == "smart_turn":
        stop = [TurnAnalyzerUserTurnStopStrategy(turn_analyzer=LocalSmartTurnAnalyzerV3())]
    else:
        stop = [FlowAwareTurnStop(expects_more, user_speech_timeout=turn.silence_timeout_s)]
    if early_llm is not None:
        stop = [EarlyLLMTurnStop(stop[0], speculate=early_llm, on_event=on_event)]
    start = [
        VADUserTurnStartStrategy(enable_interruptions=turn.barge_in),
        TranscriptionUserTurnStartStrategy(enable_interruptions=turn.barge_in),
    ]
    # Speech that transcribes to nothing still gets an answer ("Sorry, I didn't catch that") after
    # `transcript_timeout_s` (Pipecat's default waits 5 s, then leaves an idle caller unanswered).
    # Not much shorter: a busy CPU can take over 2 s to transcribe a long turn.
    empty = EmptyUserTurnConfig(interrupted_prompt=NOTHING_HEARD, idle_prompt=NOTHING_HEARD, max_consecutive_recoveries=2)
    return LLMUserAggregatorParams(
        vad_analyzer=vad,
        user_turn_strategies=UserTurnStrategies(start=start, stop=stop),
        user_turn_stop_timeout=turn.transcript_timeout_s,
        empty_user_turn=empty,
        user_mute_strategies=[ClosingWordsMute(closing)] if closing else [],
    )


def stt_slot(config: BotConfig, vocabulary: list[str], on_switch: OnSwitch | None = None) -> STTService:
    """The STT chain of bot.yaml as one processor: a single service, or `STTFailover` over the
    chain (ending with embedded Whisper), replaying the caller's words on the backup."""
    chain = build_stt_chain(config, vocabulary)
    if len(chain) == 1:
        return chain[0]
    f = config.failover
    return STTFailover(
        chain, final_s=f.stt_final_ms / 1000, stall_s=f.stall_ms / 1000,
        backoff_s=f.backoff_s, max_backoff_s=f.max_backoff_s, on_switch=on_switch,
    )  # fmt: skip


def tts_slot(config: BotConfig, on_switch: OnSwitch | None = None) -> TTSService:
    """The TTS chain of bot.yaml as one processor: a single service, or `TTSFailover` over the
    chain (ending with embedded Piper) when there is somewhere to fail over to."""
    chain = build_tts_chain(config)
    if len(chain) == 1:
        return chain[0]
    f = config.failover
    return TTSFailover(
        chain, first_audio_s=f.tts_first_audio_ms / 1000, stall_s=f.stall_ms / 1000,
        backoff_s=f.backoff_s, max_backoff_s=f.max_backoff_s, on_switch=on_switch,
    )  # fmt: skip


@runtime_checkable
class CallTransport(Protocol):
    """A transport with a part of its own in the call (Twilio: keypad input, the caller's number,
    transfer at the end): processors to put after STT, and the assembled call before it starts."""

    def call_inputs(self) -> list[FrameProcessor]: ...

    def join(self, call: CallAssembly) -> None: ...


async def run_voice_call(
    bot: LoadedBot,
    store: Store,
    transport: BaseTransport,
    *,
    transport_name: str,
    now: datetime | None = None,
    stt: STTService | None = None,
    tts: TTSService | None = None,
    observers: list | None = None,
    on_ready: Callable[[CallAssembly], None] | None = None,
) -> ChatResult:
    """Run one call until the caller hangs up or the flow ends; returns what happened."""
    clock = clock_for(bot, now)
    result = ChatResult()
    holder: list[CallAssembly] = []

    def bot_line(text: str, interrupted: bool = False) -> None:
        line = {"role": "bot", "text": text} | ({"interrupted": True} if interrupted else {})
        result.transcript.append(line)
        store.add_turn(call.session.call_id, "bot", text, clock())

    def caller_line(text: str) -> None:
        result.transcript.append({"role": "caller", "text": text})
        store.add_turn(call.session.call_id, "caller", text, clock())

    def switched(kind: str) -> OnSwitch:
        return lambda old, new, reason: count_switches(call.session, kind)(old, new, reason)

    def early_event(name: str) -> None:
        holder[0].session.counters[f"early_llm:{name}"] += 1

    tts = tts or tts_slot(bot.config, on_switch=switched("tts"))
    joining = transport if isinstance(transport, CallTransport) else None
    early = (lambda text: bool(holder) and may_start_early(holder[0], text)) if early_llm_on(bot.config) else None
    call = assemble_call(
        bot, store, clock=clock, transport=transport_name,
        inputs=[
            transport.input(), stt or stt_slot(bot.config, bot.flow.vocabulary, switched("stt")),
            *(joining.call_inputs() if joining else []), CallerTranscript(on_line=caller_line),
        ],
        outputs=[tts, transport.output()],
        audio_rate=getattr(transport, "audio_rate", None),
        user_params=voice_user_params(
            bot.config, lambda text: bool(holder) and holder[0].session.expects_more(text), early_llm=early, on_event=early_event,
            closing=lambda: bool(holder) and holder[0].flow_manager.current_node in bot.flow.closing_nodes,
        ), observers=observers,
    )  # fmt: skip
    holder.append(call)

    # What the caller heard, as the context keeps it: when they talk over the bot, only the words
    # spoken before the interruption are recorded (the brain's full text never reached them).
    @call.aggregators.assistant().event_handler("on_assistant_turn_stopped")
    async def _spoken(aggregator, message):
        if message.content:
            bot_line(message.content, message.interrupted)
    result.call_id = call.session.call_id
    if joining:
        joining.join(call)
    if on_ready:
        on_ready(call)

    @transport.event_handler("on_client_connected")
    async def _connected(transport, client):
        logger.info(f"call {call.session.call_id}: caller connected")
        await call.start()

    @transport.event_handler("on_client_disconnected")
    async def _disconnected(transport, client):
        logger.info(f"call {call.session.call_id}: caller hung up")
        await call.worker.cancel()

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(call.worker)
    try:
        await runner.run()
    except asyncio.CancelledError:
        await call.worker.cancel()
        raise
    finally:
        call.finish(result, clock)
    return result

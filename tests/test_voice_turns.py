"""Turn-taking settings of a voice call (app/voice.py), on Pipecat's real user aggregator."""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace

from pipecat.frames.frames import LLMContextFrame, LLMTextFrame, VADUserStartedSpeakingFrame, VADUserStoppedSpeakingFrame
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from pipecat.tests.utils import SleepFrame, run_test

from app.brain.service import LocalBrainService
from app.brain.understand import NOTHING_HEARD
from app.config.load import load_bot
from app.flows.session import CallSession
from app.store import Store
from app.voice import voice_user_params
from tests.conftest import ROOT


async def test_speech_nobody_could_transcribe_still_gets_an_answer():
    bot = load_bot(ROOT / "bot.yaml")
    pair = LLMContextAggregatorPair(LLMContext(), user_params=voice_user_params(bot.config))
    assert bot.config.turn.transcript_timeout_s == 3.0
    frames = [VADUserStartedSpeakingFrame(), SleepFrame(0.3), VADUserStoppedSpeakingFrame(stop_secs=0.2), SleepFrame(3.6)]
    down, _ = await run_test(pair.user(), frames_to_send=frames)
    asked = [f for f in down if isinstance(f, LLMContextFrame)]
    assert asked, "the turn with no transcript was left unanswered"
    assert asked[-1].context.get_messages()[-1] == {"role": "developer", "content": NOTHING_HEARD}


async def test_the_local_brain_asks_again_when_nothing_was_heard(tmp_path):
    bot = load_bot(ROOT / "bot.yaml")
    with Store(tmp_path / "db.sqlite") as store:
        session = CallSession(bot, store, call_id="c1", clock=lambda: datetime(2026, 11, 23, 10))
        session.flow_manager = SimpleNamespace(current_node="book", state={})
        context = LLMContext(messages=[{"role": "developer", "content": NOTHING_HEARD}])
        down, _ = await run_test(LocalBrainService(session), frames_to_send=[LLMContextFrame(context)])
    said = "".join(f.text for f in down if isinstance(f, LLMTextFrame))
    assert said.startswith("Sorry, I didn't catch that.") and "service" in said


def with_turn(config, **turn):
    return config.model_copy(update={"turn": config.turn.model_copy(update=turn)})


def test_early_llm_is_on_by_default_only_when_the_first_stt_sends_interims():
    from app.config.bot import DeepgramSTT, WhisperSTT
    from app.voice import early_llm_on

    config = load_bot(ROOT / "bot.yaml").config
    deepgram = DeepgramSTT(provider="deepgram")
    assert not early_llm_on(config)  # Whisper: no interims
    assert early_llm_on(config.model_copy(update={"stt": [deepgram, WhisperSTT(provider="whisper")]}))
    assert not early_llm_on(config.model_copy(update={"stt": [deepgram.model_copy(update={"interim_results": False})]}))
    assert not early_llm_on(with_turn(config.model_copy(update={"stt": [deepgram]}), early_llm=False))
    assert early_llm_on(with_turn(config, early_llm=True))


def test_early_llm_wraps_either_end_of_turn_detector():
    from pipecat.turns.user_stop import TurnAnalyzerUserTurnStopStrategy

    from processors.early_llm import EarlyLLMTurnStop
    from processors.flow_turn import FlowAwareTurnStop

    config = load_bot(ROOT / "bot.yaml").config
    for detector, inner in (("smart_turn", TurnAnalyzerUserTurnStopStrategy), ("silence", FlowAwareTurnStop)):
        [stop] = voice_user_params(with_turn(config, detector=detector), early_llm=lambda text: True).user_turn_strategies.stop
        assert isinstance(stop, EarlyLLMTurnStop) and isinstance(stop.inner, inner)
        [plain] = voice_user_params(with_turn(config, detector=detector)).user_turn_strategies.stop
        assert isinstance(plain, inner)

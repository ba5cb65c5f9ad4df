"""Offline speech for Pipecat's eval harness, named as `factory:` in the voice scenarios.

The harness's built-in voices (Kokoro for the caller, Moonshine or Whisper's default model for
the bot's audio) download their models on first use; these build the same kinds of service on
the models this project ships (Piper joe, Whisper tiny.en), so a voice scenario runs offline.
"""

from __future__ import annotations

from typing import Any

from pipecat.services.piper.tts import PiperTTSService
from pipecat.services.whisper.stt import WhisperSTTService

from app.providers.speech import piper_voice_dir, whisper_model_dir


def caller_voice(config: dict[str, Any]) -> PiperTTSService:
    """`user.speech.factory`: the caller's turns spoken by Piper."""
    voice = str(config.get("voice") or "en_US-joe-medium")
    return PiperTTSService(download_dir=piper_voice_dir(), settings=PiperTTSService.Settings(voice=voice))


def bot_transcriber(config: dict[str, Any]) -> WhisperSTTService:
    """`judge.transcription.factory`: the bot's audio transcribed by Whisper tiny.en on the CPU.

    The non-speech filter is off, as in the harness's own Whisper: it only ever hears the bot."""
    return WhisperSTTService(
        device="cpu",
        compute_type="int8",
        settings=WhisperSTTService.Settings(model=str(whisper_model_dir()), no_speech_prob=1.0),
    )

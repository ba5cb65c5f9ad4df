"""The synthetic caller: a voice unlike the bot's, scripts with pauses, barge-in and noise."""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import yaml

RATE = 16000
# The default caller is the embedded Piper voice shifted up ~2.4 semitones (played 15% fast): a
# clearly different voice that Whisper still hears well. `espeak` uses Debian's espeak-ng.
PITCH = 1.15
# The Piper caller says the same words the same way on every run. Piper draws random noise for each
# synthesis (timbre and the length of each sound: `noise_scale`, `noise_w_scale`), so a script's
# audio used to change from one synthesis to the next, and Whisper tiny.en heard some of them wrong
# (a phone number said in one breath: 1 synthesis in 30, and 18 of 240 cuts of another number).
# Without the noise a script's audio is fixed, and a simulation that passes once passes again.
STEADY = {"noise_scale": 0.0, "noise_w_scale": 0.0}


@dataclass(frozen=True)
class CallerTurn:
    say: str | None = None
    wav: str | None = None
    pause_s: float = 0.4
    barge_in_ms: int | None = None  # start speaking this long after the bot's reply starts
    noise_db: float | None = None  # background noise level, dBFS


def load_script(path: Path) -> tuple[list[CallerTurn], float | None]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    turns = [CallerTurn(**t) if isinstance(t, dict) else CallerTurn(say=str(t)) for t in data.get("turns", [])]
    return turns, data.get("noise_db")


def turns_from_lines(lines: list[str]) -> list[CallerTurn]:
    out = []
    for line in lines:
        line = line.strip()
        if not line:
            continue
        out.append(CallerTurn(wav=line) if line.lower().endswith(".wav") and Path(line).exists() else CallerTurn(say=line))
    return out


def read_wav(path: str | Path) -> np.ndarray:
    audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    return _to_int16(soxr.resample(audio.mean(axis=1), rate, RATE))


def _to_int16(audio: np.ndarray) -> np.ndarray:
    return np.clip(audio * 32767, -32768, 32767).astype(np.int16)


@lru_cache(maxsize=1)
def _piper():
    from piper import PiperVoice

    from app.providers.speech import piper_voice_dir

    return PiperVoice.load(str(piper_voice_dir() / "en_US-joe-medium.onnx"))


def synthesize(text: str, voice: str = "piper") -> np.ndarray:
    """int16 mono samples at 16 kHz, with 0.2 s of silence before and after."""
    if voice == "espeak":
        with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
            subprocess.run(["espeak-ng", "-v", "en-us", "-s", "155", "-w", tmp.name, text], check=True, capture_output=True)
            speech = read_wav(tmp.name)
    else:
        from piper import SynthesisConfig

        chunks = list(_piper().synthesize(text, syn_config=SynthesisConfig(**STEADY)))
        audio = np.concatenate([c.audio_float_array for c in chunks])
        speech = _to_int16(soxr.resample(audio, int(chunks[0].sample_rate * PITCH), RATE))
    pad = np.zeros(int(0.2 * RATE), dtype=np.int16)
    return np.concatenate([pad, speech, pad])


def noise_rms(db: float | None) -> float:
    return 0.0 if db is None else 32767 * 10 ** (db / 20)

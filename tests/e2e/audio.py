"""A caller's voice for the browser test: espeak-ng speech as a 48 kHz mono 16-bit WAV with silence around it."""

from __future__ import annotations

import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np

RATE = 48_000


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def caller_wav(text: str, path: Path, *, lead_s: float = 2.0, tail_s: float = 3.0) -> Path:
    """Speak `text` with espeak-ng into `path` (Chromium's fake microphone file); silence first and after helps VAD."""
    import soxr

    raw = path.with_suffix(".espeak.wav")
    subprocess.run(["espeak-ng", "-s", "150", "-w", str(raw), text], check=True, capture_output=True)
    with wave.open(str(raw)) as w:
        rate = w.getframerate()
        speech = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32) / 32768
    speech = soxr.resample(speech, rate, RATE)
    speech *= 0.7 / max(float(np.abs(speech).max()), 1e-6)
    audio = np.concatenate([np.zeros(int(lead_s * RATE)), speech, np.zeros(int(tail_s * RATE))])
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes((audio * 32767).astype(np.int16).tobytes())
    raw.unlink()
    return path

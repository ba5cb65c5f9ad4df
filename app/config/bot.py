"""bot.yaml as typed models. Unknown keys are errors; secrets only as `${ENV_VAR}` references."""

from __future__ import annotations

import re
import zoneinfo
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

_ENV_REF = re.compile(r"^\$\{([A-Z_][A-Z0-9_]*)\}$")
# Shapes of real provider keys, caught anywhere a string is written (not only in key fields).
_KEY_SHAPES = re.compile(r"\b(sk-ant-[A-Za-z0-9_-]{8,}|sk-[A-Za-z0-9]{20,}|AC[0-9a-f]{32})\b")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _secret(value: str | None) -> str | None:
    if value is None or _ENV_REF.match(value):
        return value
    raise ValueError(
        "a secret must be an environment reference like ${ANTHROPIC_API_KEY}, not a literal value"
    )


Secret = Annotated[str | None, Field(default=None, description="An ${ENV_VAR} reference")]


def env_name(reference: str | None) -> str | None:
    """`${NAME}` -> `NAME`."""
    if reference is None:
        return None
    match = _ENV_REF.match(reference)
    return match.group(1) if match else None


class VoicePolicy(Strict):
    max_sentences: int = Field(3, ge=1, le=3)
    strip_markdown: bool = True


# --- provider chains: a list in fallback order, each entry discriminated by `provider` ---------


class LocalBrain(Strict):
    provider: Literal["local"]


class AnthropicBrain(Strict):
    provider: Literal["anthropic"]
    api_key: Secret = "${ANTHROPIC_API_KEY}"
    model: str = "claude-sonnet-4-6"
    light_model: str | None = Field(None, description="model for the simple turns the router sends to the LLM (needs routing on)")
    base_url: str | None = None
    max_tokens: int = Field(300, ge=16)

    _check = field_validator("api_key")(classmethod(lambda cls, v: _secret(v)))


class WhisperSTT(Strict):
    provider: Literal["whisper"]
    model: str = "tiny.en"
    compute_type: Literal["int8", "int8_float32", "float32"] = "int8"
    early_start_s: float = Field(0.08, ge=0.0, le=1.0, description="start transcribing after this much closing silence (0 = at the VAD stop)")


class DeepgramSTT(Strict):
    provider: Literal["deepgram"]
    api_key: Secret = "${DEEPGRAM_API_KEY}"
    model: str = "nova-3"
    base_url: str | None = None
    interim_results: bool = True

    _check = field_validator("api_key")(classmethod(lambda cls, v: _secret(v)))


class PiperTTS(Strict):
    provider: Literal["piper"]
    voice: str = "en_US-joe-medium"
    cache: bool = Field(True, description="keep and reuse the audio of sentences already spoken")


class CartesiaTTS(Strict):
    provider: Literal["cartesia"]
    api_key: Secret = "${CARTESIA_API_KEY}"
    model: str = "sonic-2"
    voice_id: str = "a0e99841-438c-4a64-b679-ae501e7d6091"
    base_url: str | None = None

    _check = field_validator("api_key")(classmethod(lambda cls, v: _secret(v)))


BrainProvider = Annotated[LocalBrain | AnthropicBrain, Field(discriminator="provider")]
STTProvider = Annotated[WhisperSTT | DeepgramSTT, Field(discriminator="provider")]
TTSProvider = Annotated[PiperTTS | CartesiaTTS, Field(discriminator="provider")]


class Turn(Strict):
    """How the end of a caller's turn is decided (voice calls)."""

    detector: Literal["smart_turn", "silence"] = "smart_turn"
    vad_start_secs: float = Field(0.1, ge=0.05, le=1.0, description="speech needed before barge-in")
    vad_stop_secs: float = Field(0.2, ge=0.05, le=2.0)
    silence_timeout_s: float = Field(0.4, ge=0.0, le=3.0, description="extra silence the 'silence' detector waits")
    transcript_timeout_s: float = Field(3.0, ge=0.5, le=10.0, description="speech with no transcript by then is answered 'sorry, I didn't catch that'")
    barge_in: bool = True
    early_llm: bool | None = Field(
        None,
        description="start the cloud LLM on the interim transcript when the caller stops; the final one "
        "confirms or restarts it (unset: on when the first STT sends interim transcripts)",
    )


class Failover(Strict):
    """When a provider counts as failed and the turn moves to the next one in its chain."""

    stt_final_ms: int = Field(500, ge=50, le=10000, description="final transcript due this long after the end of speech")
    llm_first_token_ms: int = Field(1500, ge=50, le=30000, description="first token (or function call) due this long after the request")
    tts_first_audio_ms: int = Field(700, ge=50, le=10000, description="first audio due this long after the text")
    stall_ms: int = Field(1000, ge=50, le=30000, description="a stream silent this long mid-reply has stalled")
    backoff_s: float = Field(5.0, ge=0.1, le=600, description="first wait before a failed provider is tried again (doubles)")
    max_backoff_s: float = Field(60.0, ge=0.1, le=3600)


class Storage(Strict):
    path: str = "data/frontdesk.db"


class Server(Strict):
    host: str = "localhost"
    port: int = Field(7860, ge=1, le=65535)
    workers: int | Literal["auto"] = Field(1, description="processes serving calls (`frontdesk run --workers`); auto: one per CPU")

    @field_validator("workers", mode="before")
    @classmethod
    def _workers(cls, value: object) -> object:
        if value == "auto" or (type(value) is int and 1 <= value <= 64):
            return value
        raise ValueError("must be a number from 1 to 64, or auto (one worker process per CPU)")


class Twilio(Strict):
    account_sid: Secret = "${TWILIO_ACCOUNT_SID}"
    auth_token: Secret = "${TWILIO_AUTH_TOKEN}"
    base_url: str | None = None

    _check = field_validator("account_sid", "auth_token")(classmethod(lambda cls, v: _secret(v)))


class Telephony(Strict):
    transfer_number: str | None = Field(None, pattern=r"^\+?[0-9]{7,15}$")
    twilio: Twilio = Twilio()


class Daily(Strict):
    """Browser calls through Daily rooms (`/daily`, `POST /start` with createDailyRoom)."""

    api_key: Secret = "${DAILY_API_KEY}"
    api_url: str | None = Field(None, description="Daily's REST API; default DAILY_API_URL or https://api.daily.co/v1")
    room_expiry_min: int = Field(120, ge=1, le=1440, description="a room (and its tokens) expires this long after it is made")

    _check = field_validator("api_key")(classmethod(lambda cls, v: _secret(v)))


# --- prices: USD per unit, per provider; None = not set (the usage is kept, its cost not counted)


class LLMPrice(Strict):
    input_per_mtok: float = Field(0.0, ge=0, description="USD per million input tokens")
    output_per_mtok: float = Field(0.0, ge=0)
    cache_read_per_mtok: float = Field(0.0, ge=0)
    cache_write_per_mtok: float = Field(0.0, ge=0)


class STTPrice(Strict):
    per_minute: float = Field(0.0, ge=0, description="USD per minute of audio transcribed")


class TTSPrice(Strict):
    per_1k_characters: float = Field(0.0, ge=0, description="USD per thousand characters spoken")


class MinutePrice(Strict):
    per_minute: float = Field(0.0, ge=0, description="USD per minute of call")


class Prices(Strict):
    """What each provider costs, for the estimated cost of a call (log and call record)."""

    anthropic: LLMPrice | None = None
    deepgram: STTPrice | None = None
    cartesia: TTSPrice | None = None
    twilio: MinutePrice | None = None
    daily: MinutePrice | None = None
    whisper: STTPrice = STTPrice()  # embedded: free
    piper: TTSPrice = TTSPrice()


class FAQ(Strict):
    match: list[str] = Field(min_length=1, description="words or phrases that ask this question")
    answer: str


class BotConfig(Strict):
    """The whole of bot.yaml."""

    name: str
    persona: str = "You are a friendly, efficient front desk assistant on a phone call."
    timezone: str = "UTC"
    flow: str = Field(description="path of the starting flow, relative to bot.yaml")
    voice: VoicePolicy = VoicePolicy()
    brain: list[BrainProvider] = Field(default_factory=lambda: [LocalBrain(provider="local")], min_length=1)
    stt: list[STTProvider] = Field(default_factory=lambda: [WhisperSTT(provider="whisper")], min_length=1)
    tts: list[TTSProvider] = Field(default_factory=lambda: [PiperTTS(provider="piper")], min_length=1)
    turn: Turn = Turn()
    routing: Literal["off", "conservative", "aggressive"] = Field(
        "conservative", description="which caller turns the local brain answers instead of the LLM (see README)"
    )
    failover: Failover = Failover()
    storage: Storage = Storage()
    server: Server = Server()
    telephony: Telephony = Telephony()
    daily: Daily = Daily()
    prices: Prices = Prices()
    faq: list[FAQ] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone '{value}' (use an IANA name like America/New_York)") from None
        return value

    @field_validator("brain", "stt", "tts")
    @classmethod
    def _unique_providers(cls, chain: list) -> list:
        names = [p.provider for p in chain]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"provider '{duplicates[0]}' is listed twice in the chain")
        return chain


def literal_secrets(data: object, path: tuple = ()) -> list[tuple[tuple, str]]:
    """Paths of strings anywhere in the raw data that look like a real API key or account id."""
    found: list[tuple[tuple, str]] = []
    if isinstance(data, dict):
        for key, value in data.items():
            found += literal_secrets(value, path + (key,))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found += literal_secrets(value, path + (i,))
    elif isinstance(data, str) and _KEY_SHAPES.search(data):
        found.append((path, data))
    return found

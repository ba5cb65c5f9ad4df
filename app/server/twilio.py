"""Twilio dial-in on Pipecat's runner routes: the voice webhook and the Media Streams websocket.

    POST /   Twilio's voice webhook -> TwiML `<Connect><Stream url="wss://<host>/ws">` carrying the
             caller's number as stream parameters (`from_number`, `to_number`: Pipecat's names,
             so `CallData.from_number` reads them). `X-Twilio-Signature` is checked with the twilio
             library's RequestValidator when the auth token is set (403 otherwise).
    WS   /ws a Media Streams connection, told apart from Pipecat's eval harness by its first
             messages (`parse_telephony_websocket`): Pipecat's `FastAPIWebsocketTransport` with
             `TwilioFrameSerializer` (8 kHz mu-law both ways, `clear` on barge-in, DTMF in).

In the call: the keypad answers questions (`KeypadInput`), the caller's number is offered for a
phone slot (`CallSession.caller_number`), and when the flow ends Twilio's REST API hangs up
(`Calls/{sid}.json` `Status=completed`) or, when it ended in a transfer node, dials
`telephony.transfer_number` (`Twiml=<Dial>`), once the caller has heard the last words (a `mark`
echoed by Twilio). Credentials come from bot.yaml's `telephony.twilio` (`${TWILIO_ACCOUNT_SID}`,
`${TWILIO_AUTH_TOKEN}`); `base_url` points the REST calls elsewhere (tests: app/standins/twilio.py).
No log line carries the auth token; the account SID is not logged either.

With several worker processes (`frontdesk run --workers N`) the webhook and its stream may reach
different workers, so the TwiML also carries a ticket (`frontdesk_ticket`: an expiry and an HMAC
of the CallSid under a key the workers share) that the worker taking the stream checks instead.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape, quoteattr

import aiohttp
from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import PlainTextResponse, Response
from loguru import logger
from pipecat.audio.utils import ulaw_to_pcm
from pipecat.frames.frames import AudioRawFrame, CancelFrame, EndFrame, Frame, InputAudioRawFrame, InputDTMFFrame, InterruptionFrame, OutputAudioRawFrame
from pipecat.processors.aggregators.dtmf_aggregator import DTMFAggregator
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.serializers.twilio import TwilioFrameSerializer
from pipecat.transports.websocket.fastapi import FastAPIWebsocketOutputTransport, FastAPIWebsocketParams, FastAPIWebsocketTransport
from starlette.websockets import WebSocketState

from app.config.bot import BotConfig, env_name
from app.config.load import LoadedBot
from app.flows.session import CallSession
from processors.prompt_entry import PromptEntry
from processors.prompt_output import PromptFirstAudio, PromptSyncFrames

TWILIO_API = "https://api.twilio.com"
TWILIO_RATE = 8000  # Media Streams: mono mu-law at 8 kHz, both ways
# A phone call's pipeline runs at Twilio's 8 kHz both ways: Silero VAD, Deepgram and Cartesia all
# take 8 kHz (Whisper, Piper and smart-turn resample for themselves), and a phone line carries
# nothing above 4 kHz to upsample for. Resampling in the serializer was not only CPU: Pipecat's
# streaming resampler (soxr, very high quality) hands its output over in ~95 ms bursts, so the VAD
# heard the caller stop up to a tenth of a second late, and the bot's first audio waited likewise.
#
# Twilio sends the caller in 20 ms messages; the pipeline takes them `CALLER_CHUNK_MS` at a time.
# Every frame costs a dozen processor hops, a VAD call and an STT send, so this divides the CPU
# of listening, for at most that much more before the VAD hears the caller stop (half on average).
# Measured (bench/concurrent_calls.py, 20 calls): 40 ms frames cost the server a quarter more CPU
# than 60 ms ones; 100 ms ones a tenth less, for 20 ms more wait on average.
CALLER_CHUNK_MS = 60
ANNOUNCED_TTL_S = 600.0  # how long a call announced by the webhook may take to open its stream
PLAYED_GRACE_S = 2.0  # beyond the audio still playing, how long to wait for Twilio to echo the last mark
TICKET = "frontdesk_ticket"  # the <Parameter> carrying a webhook's announcement to any worker


@dataclass(frozen=True)
class TwilioAccount:
    """bot.yaml's `telephony.twilio`, with the `${VARS}` resolved from the environment."""

    account_sid: str | None
    auth_token: str | None = field(repr=False)
    base_url: str = TWILIO_API

    @classmethod
    def of(cls, config: BotConfig) -> TwilioAccount:
        twilio = config.telephony.twilio

        def env(reference: str | None) -> str | None:
            name = env_name(reference)
            return (os.environ.get(name) or None) if name else None

        return cls(env(twilio.account_sid), env(twilio.auth_token), (twilio.base_url or TWILIO_API).rstrip("/"))


# --- TwiML and the webhook ------------------------------------------------------------------------


def connect_twiml(stream_url: str, parameters: dict[str, str]) -> str:
    """`<Connect><Stream>` to our websocket, each non-empty parameter as a `<Parameter>`."""
    lines = "".join(f"\n      <Parameter name={quoteattr(k)} value={quoteattr(v)}/>" for k, v in parameters.items() if v)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Response>\n  <Connect>\n'
        f"    <Stream url={quoteattr(stream_url)}>{lines}\n    </Stream>\n  </Connect>\n</Response>"
    )


def dial_twiml(number: str) -> str:
    return f"<Response><Dial>{escape(number)}</Dial></Response>"


def _first(header: str | None) -> str | None:
    return header.split(",")[0].strip() or None if header else None


def public_host(request: Request) -> str:
    """The host the caller's side used: X-Forwarded-Host (behind a proxy or tunnel), else Host."""
    return _first(request.headers.get("x-forwarded-host")) or request.headers.get("host") or request.url.netloc


def public_url(request: Request) -> str:
    """The URL Twilio requested (and signed), as seen from outside any proxy."""
    scheme = _first(request.headers.get("x-forwarded-proto")) or request.url.scheme
    query = f"?{request.url.query}" if request.url.query else ""
    return f"{scheme}://{public_host(request)}{request.url.path}{query}"


def signature_valid(auth_token: str, url: str, params: dict[str, str], signature: str) -> bool:
    from twilio.request_validator import RequestValidator

    return bool(signature) and RequestValidator(auth_token).validate(url, params, signature)


def make_ticket(key: bytes, call_sid: str, expires: int) -> str:
    """`<expiry>.<hmac>`: proof, for any worker holding `key`, that a signed webhook announced the call."""
    mac = hmac.new(key, f"{call_sid}|{expires}".encode(), hashlib.sha256).hexdigest()
    return f"{expires}.{mac}"


def ticket_valid(key: bytes, call_sid: str, ticket: object, now: float) -> bool:
    if not (isinstance(ticket, str) and call_sid):
        return False
    expires, _, _ = ticket.partition(".")
    if not expires.isdigit() or int(expires) < now:
        return False
    return hmac.compare_digest(ticket, make_ticket(key, call_sid, int(expires)))


class TwilioDialIn:
    """The voice webhook (`POST /`) and the Twilio connections that arrive on `/ws`."""

    def __init__(self, current_bot: Callable[[], LoadedBot], draining: Callable[[], bool], ticket_key: bytes | None = None):
        """`ticket_key`: the key the worker processes share, when there are several."""
        self._current_bot = current_bot
        self._draining = draining
        self._ticket_key = ticket_key
        self._announced: dict[str, float] = {}  # CallSid -> when a signed webhook announced it
        self._warned_unsigned = False

    def add_routes(self, app: FastAPI) -> None:
        app.add_api_route("/", self.webhook, methods=["POST"], include_in_schema=False)

    async def webhook(self, request: Request) -> Response:
        """Twilio asks what to do with an incoming call: stream it to /ws, with the caller's number."""
        account = TwilioAccount.of(self._current_bot().config)
        params = dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
        if account.auth_token:
            signature = request.headers.get("x-twilio-signature", "")
            if not signature_valid(account.auth_token, public_url(request), params, signature):
                logger.warning(f"Twilio webhook: refused, {'wrong' if signature else 'no'} X-Twilio-Signature for {public_url(request)}")
                return PlainTextResponse("invalid X-Twilio-Signature", status_code=403)
        elif not self._warned_unsigned:
            self._warned_unsigned = True
            logger.warning("Twilio webhook: TWILIO_AUTH_TOKEN is not set, so webhook signatures are not checked")
        if self._draining():
            return PlainTextResponse("the server is shutting down and takes no new calls", status_code=503)
        call_sid = params.get("CallSid", "")
        if call_sid:
            self._announce(call_sid)
        logger.info(f"Twilio webhook: call {call_sid or '?'} from {params.get('From') or 'an unknown number'}")
        parameters = {"from_number": params.get("From", ""), "to_number": params.get("To", "")}
        if self._ticket_key is not None and account.auth_token and call_sid:
            parameters[TICKET] = make_ticket(self._ticket_key, call_sid, int(time.time() + ANNOUNCED_TTL_S))
        return Response(connect_twiml(f"wss://{public_host(request)}/ws", parameters), media_type="application/xml")

    def _announce(self, call_sid: str) -> None:
        now = time.monotonic()
        for sid, at in list(self._announced.items()):
            if now - at > ANNOUNCED_TTL_S:
                del self._announced[sid]
        self._announced[call_sid] = now

    def _announced_to_us(self, call_sid: str, ticket: object) -> bool:
        if self._announced.pop(call_sid, None) is not None:
            return True
        return self._ticket_key is not None and ticket_valid(self._ticket_key, call_sid, ticket, time.time())

    def transport(self, websocket: WebSocket, call_data: Any, bot: LoadedBot) -> TwilioTransport | None:
        """The transport for a Media Streams connection; None when it must be refused (with the auth
        token set, only calls announced by a signed webhook are taken)."""
        account = TwilioAccount.of(bot.config)
        call_sid, stream_sid = call_data.call_id or "", call_data.stream_id or ""
        if not stream_sid:
            logger.warning("/ws: a Twilio 'start' without a streamSid")
            return None
        body = call_data.body if isinstance(call_data.body, dict) else {}
        if account.auth_token and not self._announced_to_us(call_sid, body.get(TICKET)):
            logger.warning(f"/ws: Twilio stream for call {call_sid or '?'}, which no signed webhook announced: refused")
            return None
        caller = call_data.from_number or body.get("from") or None
        return TwilioTransport(websocket, stream_sid=stream_sid, call_sid=call_sid, caller=caller, account=account, bot=bot)


# --- the call -------------------------------------------------------------------------------------


class CallControl:
    """One call through Twilio's REST API: `POST /2010-04-01/Accounts/{sid}/Calls/{sid}.json`."""

    def __init__(self, account: TwilioAccount, call_sid: str):
        self.account = account
        self.call_sid = call_sid

    async def hang_up(self) -> bool:
        return await self._update({"Status": "completed"}, "hang-up")

    async def transfer(self, number: str) -> bool:
        return await self._update({"Twiml": dial_twiml(number)}, f"transfer to {number}")

    async def _update(self, params: dict[str, str], what: str) -> bool:
        account, sid = self.account, self.call_sid
        if not (account.account_sid and account.auth_token and sid):
            logger.warning(f"Twilio call {sid or '?'}: no {what}: TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are not set")
            return False
        url = f"{account.base_url}/2010-04-01/Accounts/{account.account_sid}/Calls/{sid}.json"
        credentials = base64.b64encode(f"{account.account_sid}:{account.auth_token}".encode()).decode()
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
                async with http.post(url, data=params, headers={"Authorization": f"Basic {credentials}"}) as response:
                    if response.status < 300:
                        logger.info(f"Twilio call {sid}: {what} done")
                        return True
                    try:
                        error = await response.json(content_type=None)
                    except (json.JSONDecodeError, aiohttp.ContentTypeError, UnicodeDecodeError):
                        error = {}
                    error = error if isinstance(error, dict) else {}
                    message = str(error.get("message", "")).replace(account.account_sid, "AC...")  # Twilio's 404 names the URL
                    logger.error(f"Twilio call {sid}: {what} refused: HTTP {response.status}, error {error.get('code', '?')}: {message}")
        except (aiohttp.ClientError, TimeoutError) as e:
            logger.error(f"Twilio call {sid}: {what} failed: {type(e).__name__}")  # the text may name the account's URL
        return False


class TwilioCallSerializer(TwilioFrameSerializer):
    """Pipecat's TwilioFrameSerializer with its auto hang-up replaced by `on_end`, called once the
    caller has heard everything: Pipecat's websocket output sends audio at twice real time, so
    when the pipeline ends Twilio may still be playing the goodbye. A `mark` goes out after the
    last audio and `on_end` runs when Twilio echoes it (or when that audio's length has passed).
    """

    def __init__(self, websocket: WebSocket, stream_sid: str, on_end: Callable[[bool], Awaitable[None]], reader_done: Callable[[], bool]):
        params = TwilioFrameSerializer.InputParams(twilio_sample_rate=TWILIO_RATE, sample_rate=TWILIO_RATE, auto_hang_up=False)
        super().__init__(stream_sid, params=params)
        self._websocket = websocket
        self._on_end = on_end
        self._reader_done = reader_done
        self._played_until = 0.0  # monotonic time at which Twilio will have played all audio sent
        self._ended = False
        self.caller_gone = False  # Twilio said `stop` or closed the socket: the caller hung up
        self.marks_echoed: list[str] = []
        self._pending = bytearray()  # mu-law of the caller not yet passed on
        self._chunk_bytes = TWILIO_RATE * CALLER_CHUNK_MS // 1000

    async def serialize(self, frame: Frame) -> str | bytes | None:
        if isinstance(frame, (EndFrame, CancelFrame)):
            if not self._ended:
                self._ended = True
                if isinstance(frame, EndFrame):
                    await self._wait_played()
                if not self.caller_gone:
                    await self._on_end(isinstance(frame, CancelFrame))
            return None
        payload = await super().serialize(frame)
        if isinstance(frame, InterruptionFrame):
            self._played_until = 0.0
        elif isinstance(frame, AudioRawFrame) and payload and frame.sample_rate:
            now = time.monotonic()
            self._played_until = max(self._played_until, now) + len(frame.audio) / 2 / frame.sample_rate
        return payload

    async def deserialize(self, data: str | bytes) -> Frame | None:
        if isinstance(data, str) and '"media"' not in data[:40]:  # the rare events: peek without a second parse of audio
            self._observe(_event(data))
            return await super().deserialize(data)
        message = _event(data)
        payload = (message.get("media") or {}).get("payload") if message.get("event") == "media" else None
        if not isinstance(payload, str):
            return None
        try:
            self._pending += base64.b64decode(payload, validate=True)
        except ValueError:
            logger.warning(f"Twilio stream {self._stream_sid}: a media payload that is not base64, dropped")
            return None
        if len(self._pending) < self._chunk_bytes:
            return None
        ulaw, self._pending = bytes(self._pending), bytearray()
        audio = await ulaw_to_pcm(ulaw, TWILIO_RATE, TWILIO_RATE, self._input_resampler)  # same rate: decoding only
        return InputAudioRawFrame(audio=audio, num_channels=1, sample_rate=TWILIO_RATE)

    def _observe(self, message: dict) -> None:
        event = message.get("event")
        if event == "stop":
            self.caller_gone = True
        elif event == "mark":
            self.marks_echoed.append(str((message.get("mark") or {}).get("name", "")))

    async def _wait_played(self) -> None:
        remaining = max(0.0, self._played_until - time.monotonic())
        name = f"end-{self._stream_sid[-6:]}"
        try:
            if not self._reader_done() or self._websocket.application_state is not WebSocketState.CONNECTED:
                raise RuntimeError("the websocket is still being read, or is closed")
            await self._websocket.send_text(json.dumps({"event": "mark", "streamSid": self._stream_sid, "mark": {"name": name}}))
            async with asyncio.timeout(remaining + PLAYED_GRACE_S):
                while name not in self.marks_echoed and not self.caller_gone:
                    message = await self._websocket.receive()
                    if message["type"] == "websocket.disconnect":
                        self.caller_gone = True
                    elif message.get("text"):
                        self._observe(_event(message["text"]))
            return
        except TimeoutError:
            logger.warning(f"Twilio stream {self._stream_sid}: no echo of mark '{name}' (the last words may be cut)")
            return
        except Exception as e:  # the socket is still being read, or it is gone
            logger.debug(f"Twilio stream {self._stream_sid}: no mark; waiting {remaining:.1f} s for the audio to play ({type(e).__name__}: {e})")
        if not self.caller_gone:
            await asyncio.sleep(remaining)


def _event(text: str) -> dict:
    try:
        message = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return message if isinstance(message, dict) else {}


class TwilioOutputTransport(PromptEntry, PromptFirstAudio, PromptSyncFrames, FastAPIWebsocketOutputTransport):
    """Pipecat's websocket output, handing frames on at once when no audio is ahead of them, and
    taking a frame (the bot's first audio, a function call's result on its way to the assistant
    aggregator) from the processor before it at once when nothing is queued (`PromptEntry`): its
    handling of audio and other data frames only queues them for its media sender. System frames
    keep to its input queue (an interruption waits for its tasks to be cancelled). The first audio
    of each utterance goes out without waiting for a whole chunk (`PromptFirstAudio`)."""

    prompt_system_frames = False

    async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        written = await super().write_audio_frame(frame)
        # Pipecat paces its writes one chunk's length apart; a shorter chunk (the first of an
        # utterance) is followed by the next ones as much sooner, so that Twilio holds as much
        # audio ahead of what it plays as after a whole first chunk.
        short_by = self.audio_chunk_size - len(frame.audio)
        if short_by > 0 and self._next_send_time:
            self._next_send_time -= short_by / 2 / self.sample_rate
        return written


class TwilioTransport(FastAPIWebsocketTransport):
    """A Twilio call: Pipecat's websocket transport and Twilio serializer, keypad input, the
    caller's number, and the hang-up or transfer at the end (`app.voice.CallTransport`)."""

    audio_rate = TWILIO_RATE  # the whole call's pipeline runs at it (`run_voice_call`)

    def __init__(self, websocket: WebSocket, *, stream_sid: str, call_sid: str, caller: str | None, account: TwilioAccount, bot: LoadedBot):
        self.call_sid = call_sid
        self.caller = caller
        self.control = CallControl(account, call_sid)
        self.bot = bot
        self.keypad = KeypadInput()
        self.session: CallSession | None = None
        self._current_node: Callable[[], str | None] = lambda: None
        self.serializer = TwilioCallSerializer(websocket, stream_sid, self._end, lambda: _reader_done(self.input()))
        params = FastAPIWebsocketParams(
            audio_in_enabled=True, audio_out_enabled=True, add_wav_header=False, serializer=self.serializer,
            audio_in_sample_rate=TWILIO_RATE, audio_out_sample_rate=TWILIO_RATE,
            # The bot's audio to Twilio in 80 ms messages (Pipecat's default is 40): Twilio buffers
            # what it is sent, a `clear` empties it, and each message is a JSON + base64 + send.
            audio_out_10ms_chunks=8,
        )  # fmt: skip
        super().__init__(websocket, params)
        # Pipecat's transport builds its own output in __init__: ours in its place, on the same client.
        self._output = TwilioOutputTransport(self, self._client, self._params, name=self._output_name)

    def call_inputs(self) -> list[FrameProcessor]:
        return [self.keypad]

    def join(self, call: Any) -> None:
        """Called by `run_voice_call` with the assembled call (`CallAssembly`), before it starts."""
        self.session = call.session
        call.session.caller_number = self.caller
        self.keypad.session = call.session
        self._current_node = lambda: call.flow_manager.current_node
        logger.info(f"call {call.session.call_id}: Twilio call {self.call_sid} from {self.caller or 'an unknown number'}")

    async def _end(self, cancelled: bool) -> None:
        """The flow ended (or the server stopped the call): transfer from a transfer node, else hang up."""
        node = self._current_node()
        if not cancelled and node in self.bot.flow.transfer_nodes:
            number = self.bot.config.telephony.transfer_number
            if number:
                if await self.control.transfer(number):
                    return
            else:
                logger.warning(f"Twilio call {self.call_sid}: the flow transfers, but bot.yaml has no telephony.transfer_number: hanging up")
        await self.control.hang_up()


def _reader_done(transport_input: FrameProcessor) -> bool:
    # Pipecat's websocket input reads the socket in `_receive_task` and cancels it when the
    # pipeline ends; the end-of-call mark is read here only once nothing else reads the socket.
    task = getattr(transport_input, "_receive_task", None)
    return task is None or task.done()


# --- the keypad -----------------------------------------------------------------------------------


class KeypadInput(DTMFAggregator):
    """Pipecat's DTMFAggregator (keys -> one finalized transcription; '#' ends an entry; the first
    key interrupts the bot), answering in the words the question being asked takes: at a yes/no
    question 1 is "yes" and 2 is "no", at a choice the Nth key is the Nth choice, else the digits.
    An entry the question takes whole (one key for yes/no or a choice, ten digits for a phone
    number) goes at once, without waiting for '#' or the timeout."""

    def __init__(self, timeout: float = 3.0, **kwargs):
        # Direct mode: every frame of the call passes through here (the caller's audio too), and a
        # queue and task of its own per hop would cost more than the few keys it looks for.
        super().__init__(timeout=timeout, prefix="", **{"enable_direct_mode": True, **kwargs})
        self.session: CallSession | None = None

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputDTMFFrame) and self._aggregation and self.session is not None:
            if keypad_complete(self.session, self._aggregation):
                await self._flush_aggregation()

    async def _flush_aggregation(self) -> None:
        keys = self._aggregation
        if keys:
            self._aggregation = keypad_answer(self.session, keys) if self.session is not None else keys.rstrip("#")
            logger.debug(f"keypad: {keys!r} -> {self._aggregation!r}")
        await super()._flush_aggregation()  # nothing when only '#' was left (the entry went out whole)


def keypad_question(session: CallSession) -> tuple[str, tuple[str, ...]]:
    """What the current question takes from the keypad: ("yes_no", ()), ("choice", choices),
    ("phone", ()) or ("digits", ())."""
    node = session.node
    if node in session.flow.forms:
        form = session.flow.forms[node]
        progress = session.progress.get(node)
        if progress is None:
            return "digits", ()
        if progress.awaiting_confirm or progress.offering:
            return "yes_no", ()
        spec = form.specs.get(progress.asking or "")
        if spec is not None and spec.type in ("yes_no", "phone"):
            return spec.type, ()
        if spec is not None and spec.type == "choice":
            return "choice", tuple(spec.choices)
        return "digits", ()
    if node in session.flow.menus:
        return "digits", ()
    return "yes_no", ()  # a node of intents ("Anything else?"): its yes and no examples decide


def keypad_complete(session: CallSession, keys: str) -> bool:
    kind, choices = keypad_question(session)
    if kind in ("yes_no", "choice"):
        return True
    return kind == "phone" and sum(c.isdigit() for c in keys) >= 10


def keypad_answer(session: CallSession, keys: str) -> str:
    """The keys as the caller's words for the question being asked."""
    keys = keys.rstrip("#")
    kind, choices = keypad_question(session)
    if kind == "yes_no" and keys in ("1", "2"):
        return "yes" if keys == "1" else "no"
    if kind == "choice" and keys.isdigit() and 1 <= int(keys) <= len(choices):
        return choices[int(keys) - 1]
    return keys

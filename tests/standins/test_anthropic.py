"""The Anthropic stand-in, driven by Pipecat's real AnthropicLLMService and the anthropic SDK."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from types import SimpleNamespace

import anthropic
import pytest
from anthropic import AsyncAnthropic
from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema
from pipecat.frames.frames import ErrorFrame, FunctionCallsStartedFrame, LLMContextFrame, LLMTextFrame
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.services.anthropic.llm import AnthropicLLMService
from pipecat.services.llm_service import FunctionCallParams
from pipecat.tests.utils import run_test
from pipecat.utils.errors import extract_http_status_code

from app.config.load import load_bot
from app.flows.session import CallSession
from app.standins.anthropic import API_KEY, NO_TOOL_TEXT, AnthropicStandIn, Reply, ToolCall, local_brain_responder
from app.standins.fault import Fault
from app.store import Store
from tests.conftest import ROOT

TEXT = "We open at nine in the morning and close at six in the evening."
LOOKUP = FunctionSchema(name="lookup", description="Look something up.", properties={"q": {"type": "string"}}, required=["q"])


def says(text: str):
    return lambda body: Reply(text=text)


@pytest.fixture
async def clients():
    """Makes SDK clients (no retries, so a 5xx or 429 is seen once) and closes them after."""
    made: list[AsyncAnthropic] = []

    def make(standin: AnthropicStandIn, *, api_key: str = API_KEY, timeout: float = 2.0) -> AsyncAnthropic:
        made.append(AsyncAnthropic(api_key=api_key, base_url=standin.base_url, timeout=timeout, max_retries=0))
        return made[-1]

    yield make
    for client in made:
        await client.close()


def service(client: AsyncAnthropic) -> AnthropicLLMService:
    return AnthropicLLMService(api_key=API_KEY, client=client)


def turn(text: str = "when do you open", tools: ToolsSchema | None = None) -> LLMContextFrame:
    messages = [{"role": "user", "content": text}]
    return LLMContextFrame(LLMContext(messages=messages, tools=tools) if tools else LLMContext(messages=messages))


def texts(down) -> list[str]:
    return [f.text for f in down if isinstance(f, LLMTextFrame)]


def errors(up) -> list[ErrorFrame]:
    return [f for f in up if isinstance(f, ErrorFrame)]


async def test_streamed_text_arrives_in_several_text_frames(clients):
    async with AnthropicStandIn(responder=says(TEXT)) as claude:
        down, up = await run_test(service(clients(claude)), frames_to_send=[turn()])
    assert len(texts(down)) > 3 and "".join(texts(down)) == TEXT
    assert not errors(up)
    (body,) = claude.script.requests
    assert body["stream"] is True and body["messages"] == [{"role": "user", "content": "when do you open"}]


async def test_tool_use_reply_runs_the_registered_function_with_its_arguments(clients):
    called: list[dict] = []

    async def lookup(params: FunctionCallParams) -> None:
        called.append(params.arguments)
        await params.result_callback({"found": True})

    reply = Reply(text="Let me check.", tool_calls=(ToolCall("lookup", {"q": "opening hours", "days": ["mon", "tue"]}),))
    async with AnthropicStandIn(responder=lambda body: reply) as claude:
        llm = service(clients(claude))
        llm.register_function("lookup", lookup)
        down, _ = await run_test(llm, frames_to_send=[turn(tools=ToolsSchema(standard_tools=[LOOKUP]))])
    assert "".join(texts(down)) == "Let me check."
    assert any(isinstance(f, FunctionCallsStartedFrame) for f in down)
    assert called == [{"q": "opening hours", "days": ["mon", "tue"]}]
    assert [tool["name"] for tool in claude.script.requests[0]["tools"]] == ["lookup"]


async def test_latency_delays_the_answer(clients):
    async with AnthropicStandIn(responder=says(TEXT), latency_s=0.4) as claude:
        started = time.monotonic()
        down, _ = await run_test(service(clients(claude)), frames_to_send=[turn()])
        assert time.monotonic() - started >= 0.4
    assert "".join(texts(down)) == TEXT


async def test_the_time_to_the_first_byte_holds_the_stand_ins_own_work(clients):
    """`took_s` is what the request cost the provider: the latency played and the time spent
    composing the reply (here a responder that takes 50 ms), as a real first-token time holds both."""

    def slow(body: dict) -> Reply:
        time.sleep(0.05)
        return Reply(text=TEXT)

    async with AnthropicStandIn(responder=slow, latency_s=0.1) as claude:
        await run_test(service(clients(claude)), frames_to_send=[turn()])
    (received,) = claude.received
    assert received.took_s is not None and received.took_s >= 0.15 and received.answered_at == received.at + received.took_s


@pytest.mark.parametrize("fault", [Fault("refuse"), Fault("fail", status=500), Fault("fail", status=529), Fault("fail", status=429)])
async def test_error_statuses_reach_pipecat_as_an_error_frame_with_the_status(clients, fault):
    async with AnthropicStandIn(responder=says(TEXT)) as claude:
        claude.script.then(fault)
        down, up = await run_test(service(clients(claude)), frames_to_send=[turn()])
    (error,) = errors(up)
    assert extract_http_status_code(error.exception) == fault.http_status
    assert not texts(down) and len(claude.script.requests) == 1


async def test_hang_never_answers_and_the_client_times_out(clients):
    async with AnthropicStandIn(responder=says(TEXT)) as claude:
        claude.script.then(Fault("hang"))
        started = time.monotonic()
        down, up = await run_test(service(clients(claude, timeout=0.5)), frames_to_send=[turn()])
        assert time.monotonic() - started >= 0.5
    assert not texts(down)
    (error,) = errors(up)  # a timeout before the first byte is an ErrorFrame, not on_completion_timeout
    assert isinstance(error.exception, anthropic.APITimeoutError)


async def test_stall_sends_some_text_then_nothing(clients):
    timeouts: list[object] = []
    async with AnthropicStandIn(responder=says(TEXT), words_per_chunk=2) as claude:
        claude.script.then(Fault("stall", after=2))
        llm = service(clients(claude, timeout=0.5))

        @llm.event_handler("on_completion_timeout")
        async def on_timeout(service):
            timeouts.append(service)

        down, up = await run_test(llm, frames_to_send=[turn()])
    assert texts(down) == ["We open ", "at nine "]
    assert timeouts and not errors(up)  # a read timeout mid-stream is not an ErrorFrame


async def test_wrong_api_key_gets_anthropics_authentication_error(clients):
    async with AnthropicStandIn() as claude:
        with pytest.raises(anthropic.AuthenticationError) as raised:
            await clients(claude, api_key="sk-wrong").messages.create(model="claude-sonnet-4-6", max_tokens=50, messages=[{"role": "user", "content": "hi"}])
    assert raised.value.status_code == 401
    assert raised.value.body == {"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}
    assert not claude.script.requests  # rejected before the script


async def test_non_streaming_answer_with_text_and_tool_use(clients):
    reply = Reply(text="One moment.", tool_calls=(ToolCall("lookup", {"q": "hours"}),))
    async with AnthropicStandIn(responder=lambda body: reply) as claude:
        message = await clients(claude).messages.create(model="claude-sonnet-4-6", max_tokens=50, messages=[{"role": "user", "content": "hi"}])
    assert message.stop_reason == "tool_use" and message.model == "claude-sonnet-4-6"
    assert [block.type for block in message.content] == ["text", "tool_use"]
    assert message.content[0].text == "One moment." and message.content[1].input == {"q": "hours"}


async def test_a_cache_control_prefix_is_written_once_then_read(clients):
    system = [{"type": "text", "text": "You are a front desk. " * 20, "cache_control": {"type": "ephemeral"}}]
    async with AnthropicStandIn() as claude:
        client = clients(claude)
        usages = []
        for _ in range(2):
            async with client.messages.stream(model="claude-sonnet-4-6", max_tokens=50, system=system, messages=[{"role": "user", "content": "hi"}]) as stream:
                usages.append((await stream.get_final_message()).usage)
    first, second = usages
    assert first.cache_creation_input_tokens > 0 and first.cache_read_input_tokens == 0
    assert second.cache_read_input_tokens == first.cache_creation_input_tokens and second.cache_creation_input_tokens == 0
    assert claude.script.requests[0]["system"][0]["cache_control"] == {"type": "ephemeral"}


@pytest.fixture
def session(tmp_path):
    bot = load_bot(ROOT / "bot.yaml")
    with Store(tmp_path / "db.sqlite") as store:
        session = CallSession(bot, store, call_id="c1", clock=lambda: datetime(2026, 11, 23, 10))
        session.flow_manager = SimpleNamespace(current_node="book", state={})
        session.enter_if_new()
        session.question("book")
        yield session


FILL_BOOK = FunctionSchema(name="fill_book", description="Fill the booking form.", properties={"service": {"type": "string"}}, required=[])


@pytest.mark.parametrize(
    ("utterance", "tools", "expected_call", "expected_text"),
    [
        ("a haircut please", [FILL_BOOK], {"service": "haircut"}, ""),
        ("a haircut please", [LOOKUP], None, NO_TOOL_TEXT),  # the brain's function is not offered
        ("what are your opening hours", [FILL_BOOK], None, "We're open Tuesday to Saturday"),
    ],
)
async def test_local_brain_responder_answers_as_the_local_brain_would(clients, session, utterance, tools, expected_call, expected_text):
    called: list[dict] = []

    async def fill_book(params: FunctionCallParams) -> None:
        called.append(params.arguments)
        await params.result_callback({})

    frame = turn(utterance, ToolsSchema(standard_tools=tools))
    responder = local_brain_responder(lambda: session, frame.context.get_messages)
    async with AnthropicStandIn(responder=responder) as claude:
        llm = service(clients(claude))
        llm.register_function("fill_book", fill_book)
        down, _ = await run_test(llm, frames_to_send=[frame])
    assert called == ([expected_call] if expected_call else [])
    assert "".join(texts(down)).startswith(expected_text)


async def test_local_brain_responder_answers_a_request_ahead_of_the_live_context(clients, session):
    # An early start: the request carries the caller's interim words, the live context does not yet.
    live = [{"role": "assistant", "content": "What can I book for you?"}]
    responder = local_brain_responder(lambda: session, lambda: live)
    async with AnthropicStandIn(responder=responder) as claude:
        down, _ = await run_test(service(clients(claude)), frames_to_send=[turn("what are your opening hours")])
    assert "".join(texts(down)).startswith("We're open Tuesday to Saturday")


async def test_requests_are_kept_with_their_times_and_a_cancelled_one_is_marked(clients):
    async with AnthropicStandIn(responder=says(TEXT), latency_s=0.3) as claude:
        client = clients(claude)
        await client.messages.create(model="m", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
        task = asyncio.create_task(client.messages.create(model="m", max_tokens=16, messages=[{"role": "user", "content": "bye"}]))
        await asyncio.sleep(0.1)
        task.cancel()  # the client goes away before the answer
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.sleep(0.1)
    answered, cancelled = claude.received
    assert answered.reply == Reply(text=TEXT) and answered.answered_at - answered.at >= 0.3 and not answered.cancelled
    assert cancelled.cancelled and cancelled.answered_at is None and cancelled.body["messages"][0]["content"] == "bye"

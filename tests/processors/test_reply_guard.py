"""ReplyGuard: cleaning and the sentence limit, offline and streamed, and stopping the LLM."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest
import yaml
from anthropic import AsyncAnthropic
from pipecat.frames.frames import (
    Frame,
    FunctionCallFromLLM,
    FunctionCallInProgressFrame,
    FunctionCallResultFrame,
    FunctionCallsStartedFrame,
    InterruptionFrame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TextFrame,
    TTSSpeakFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.anthropic.llm import AnthropicLLMService
from pipecat.services.llm_service import LLMService
from pipecat.services.settings import LLMSettings
from pipecat.tests.utils import SleepFrame, run_test

from app.standins.anthropic import API_KEY, AnthropicStandIn, Reply
from processors.reply_guard import ReplyGuard, clean_text, split_sentences, spoken

CORPUS = yaml.safe_load((Path(__file__).parent / "reply_corpus.yaml").read_text(encoding="utf-8"))
START, END = LLMFullResponseStartFrame, LLMFullResponseEndFrame


def chunks(text: str, seed: int) -> list[str]:
    """The text cut into tokens of 1 to 8 characters."""
    rnd = random.Random(seed)
    out, i = [], 0
    while i < len(text):
        n = rnd.randint(1, 8)
        out.append(text[i : i + n])
        i += n
    return out


def reply_frames(text: str, seed: int = 0) -> list[Frame]:
    return [START(), *(LLMTextFrame(t) for t in chunks(text, seed)), END()]


def replies(down) -> list[str]:
    """The text of each response that went downstream, by start/end pair."""
    out: list[str] = []
    current: list[str] | None = None
    for frame in down:
        if isinstance(frame, START):
            current = []
        elif isinstance(frame, END):
            assert current is not None, "end frame without a start"
            out.append("".join(current))
            current = None
        elif isinstance(frame, LLMTextFrame) and current is not None:
            current.append(frame.text)
    assert current is None, "a response was left open"
    return out


# -- the corpus --------------------------------------------------------------------------------


def test_corpus_is_large_enough():
    assert len(CORPUS) >= 50
    assert all(set(item) <= {"reply", "spoken", "max_sentences"} for item in CORPUS)


@pytest.mark.parametrize("item", CORPUS, ids=[f"{i}" for i in range(len(CORPUS))])
def test_corpus_offline(item):
    n = item.get("max_sentences", 3)
    assert " ".join(split_sentences(clean_text(item["reply"]))[:n]) == item["spoken"]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("n", sorted({item.get("max_sentences", 3) for item in CORPUS}))
async def test_corpus_streamed_equals_offline(n, seed):
    items = [item for item in CORPUS if item.get("max_sentences", 3) == n]
    frames = [f for i, item in enumerate(items) for f in reply_frames(item["reply"], seed * 1000 + i)]
    down, up = await run_test(ReplyGuard(max_sentences=n), frames_to_send=frames)
    assert replies(down) == [spoken(item["reply"], n) for item in items]
    assert replies(down) == [item["spoken"] for item in items]
    cut_in_stream = sum(1 for f in up if isinstance(f, InterruptionFrame))
    assert cut_in_stream <= sum(1 for item in items if len(split_sentences(clean_text(item["reply"]))) > n)


class _Collecting(ReplyGuard):
    """A guard driven without a pipeline: what it pushes is collected."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.pushed: list[tuple[Frame, FrameDirection]] = []

    async def push_frame(self, frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM):
        self.pushed.append((frame, direction))


async def test_corpus_streamed_in_many_ways():
    """Every corpus reply, cut 40 ways, word tokens included: the same speech every time."""
    for i, item in enumerate(CORPUS):
        n = item.get("max_sentences", 3)
        words = [w + " " for w in item["reply"].split(" ")]
        words[-1] = words[-1][:-1]
        for seed in range(40):
            tokens = words if seed == 0 else chunks(item["reply"], seed * 7919 + i)
            guard = _Collecting(max_sentences=n)
            for frame in [START(), *(LLMTextFrame(t) for t in tokens), END()]:
                await guard.process_frame(frame, FrameDirection.DOWNSTREAM)
            down = [f for f, d in guard.pushed if d == FrameDirection.DOWNSTREAM]
            assert replies(down) == [item["spoken"]], (i, seed, tokens)


# -- frame sequences ---------------------------------------------------------------------------


async def test_markdown_reply_is_spoken_clean_sentence_by_sentence():
    guard = ReplyGuard()
    text = "**Great news!** Your table for *two* is booked at 7 p.m. See [the map](https://x.io/m) 🎉."
    down, up = await run_test(
        guard,
        frames_to_send=reply_frames(text),
        expected_down_frames=[START, LLMTextFrame, LLMTextFrame, LLMTextFrame, END],
        expected_up_frames=[],
    )
    assert [f.text for f in down if isinstance(f, LLMTextFrame)] == [
        "Great news!",
        " Your table for two is booked at 7 p.m.",
        " See the map.",
    ]
    assert guard.stats["markdown"] >= 1 and guard.stats["url"] >= 1 and guard.stats["emoji"] >= 1
    assert guard.stats["sentences"] == 3 and guard.stats["cut"] == 0


async def test_list_reply_becomes_one_sentence():
    text = "Here are our pizzas:\n- Margherita\n- Pepperoni 🍕\n- Veggie\n\nWhich one would you like?"
    down, _ = await run_test(
        ReplyGuard(),
        frames_to_send=reply_frames(text),
        expected_down_frames=[START, LLMTextFrame, LLMTextFrame, END],
    )
    assert replies(down) == ["Here are our pizzas: Margherita, Pepperoni, and Veggie. Which one would you like?"]


LONG = " ".join(f"Sentence number {i} is here." for i in range(1, 40))


async def test_sentence_limit_cuts_the_stream_and_cancels_the_llm():
    events: list[str] = []
    guard = ReplyGuard(max_sentences=2, on_event=events.append)
    frames = reply_frames(LONG)
    down, up = await run_test(
        guard,
        frames_to_send=frames,
        expected_down_frames=[START, LLMTextFrame, LLMTextFrame, END],
        expected_up_frames=[InterruptionFrame],
    )
    assert replies(down) == ["Sentence number 1 is here. Sentence number 2 is here."]
    assert events == ["guard:cut"]
    assert guard.stats["cut"] == 1 and guard.stats["sentences"] == 2
    assert guard.stats["dropped_chars"] > len(LONG) - 80  # nearly all the rest was dropped
    assert guard.totals["cut"] == 1 and guard.totals["replies"] == 1


async def test_limit_reached_at_the_end_of_a_reply_needs_no_cancel():
    events: list[str] = []
    guard = ReplyGuard(max_sentences=1, on_event=events.append)
    down, up = await run_test(
        guard,
        frames_to_send=reply_frames("Yes. We deliver."),
        expected_down_frames=[START, LLMTextFrame, END],
        expected_up_frames=[],
    )
    assert replies(down) == ["Yes."]
    assert guard.stats["cut"] == 1 and "guard:cut" in events


async def test_interruption_mid_reply_resets_and_the_next_reply_starts_fresh():
    guard = ReplyGuard(max_sentences=2)
    frames = [
        START(),
        LLMTextFrame("First reply, first sentence. First reply, "),
        LLMTextFrame("second sentence"),  # still open, the caller barges in
        SleepFrame(sleep=0.05),
        InterruptionFrame(),
        SleepFrame(sleep=0.05),
        *reply_frames("A fresh start. Two sentences here. A third one is cut."),
    ]
    down, up = await run_test(guard, frames_to_send=frames)
    texts = [f.text for f in down if isinstance(f, LLMTextFrame)]
    assert texts == ["First reply, first sentence.", "A fresh start.", " Two sentences here."]
    assert any(isinstance(f, InterruptionFrame) for f in down)
    assert [type(f) for f in up] == [InterruptionFrame]  # the cut of the second reply
    assert guard.stats["sentences"] == 2 and guard.stats["cut"] == 1


async def test_text_outside_a_response_passes_through_untouched():
    raw = "**Hello** 👋 Dr. Who. One. Two. Three. Four."
    frames = [TTSSpeakFrame(raw), TextFrame("# raw"), LLMTextFrame("*as is*")]
    down, _ = await run_test(
        ReplyGuard(max_sentences=1),
        frames_to_send=frames,
        expected_down_frames=[TTSSpeakFrame, TextFrame, LLMTextFrame],
    )
    assert [f.text for f in down] == [raw, "# raw", "*as is*"]


async def test_function_call_frames_pass_through_a_reply():
    call = FunctionCallFromLLM(function_name="book", tool_call_id="t1", arguments={}, context=LLMContext())
    frames = [
        START(),
        LLMTextFrame("Let me **book** that. "),
        FunctionCallsStartedFrame(function_calls=[call]),
        FunctionCallInProgressFrame(function_name="book", tool_call_id="t1", arguments={}),
        FunctionCallResultFrame(function_name="book", tool_call_id="t1", arguments={}, result={"ok": True}),
        END(),
    ]
    down, _ = await run_test(ReplyGuard(), frames_to_send=frames)
    kinds = [type(f) for f in down]
    for kind in (FunctionCallsStartedFrame, FunctionCallInProgressFrame, FunctionCallResultFrame):
        assert kinds.count(kind) == 1
    assert replies(down) == ["Let me book that."]


async def test_strip_markdown_off_keeps_the_text_and_the_limit():
    down, _ = await run_test(
        ReplyGuard(max_sentences=1, strip_markdown=False),
        frames_to_send=reply_frames("**Sure!** Here it is. And more."),
    )
    assert replies(down) == ["**Sure!**"]


def test_max_sentences_must_be_positive():
    with pytest.raises(ValueError, match="max_sentences"):
        ReplyGuard(max_sentences=0)


def test_several_urls_in_one_sentence():
    assert clean_text("Visit https://a.io and https://b.io 🍕 🍕") == "Visit the link and the link"


async def test_events_are_counted_per_reply():
    events: list[str] = []
    guard = ReplyGuard(on_event=events.append)
    text = "**Hi** 🍕 🎉. See https://a.io or https://b.io.\n\n| A | B |\n|---|---|\n| 1 | 2 |\n"
    text += "- x\n- y\n```\ncode\n```"
    await run_test(guard, frames_to_send=reply_frames(text) + reply_frames("Plain text."))
    assert sorted(events) == sorted(
        ["guard:markdown", "guard:emoji", "guard:url", "guard:table", "guard:list", "guard:code"]
    )
    assert guard.totals["replies"] == 2 and guard.totals["emoji"] == 1 and guard.totals["url"] >= 1


# -- in a pipeline, with a streaming LLM and the real assistant aggregator ----------------------


class StreamingLLM(LLMService):
    """Streams a fixed reply token by token, like AnthropicLLMService (end frame in `finally`)."""

    def __init__(self, reply: str, gap: float = 0.01):
        settings = LLMSettings(
            model="fake", system_instruction=None, temperature=None, max_tokens=None, top_p=None, top_k=None,
            frequency_penalty=None, presence_penalty=None, seed=None, filter_incomplete_user_turns=False,
            user_turn_completion_config=None,
        )  # fmt: skip
        super().__init__(settings=settings)
        self.tokens = [w + " " for w in reply.split(" ")]
        self.gap = gap
        self.produced = 0
        self.cancelled = False
        self.interruptions = 0

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, InterruptionFrame):
            self.interruptions += 1
        if not (isinstance(frame, LLMContextFrame) and direction == FrameDirection.DOWNSTREAM):
            await self.push_frame(frame, direction)
            return
        try:
            await self.push_frame(LLMFullResponseStartFrame())
            for token in self.tokens:
                await asyncio.sleep(self.gap)
                await self.push_frame(LLMTextFrame(token))
                self.produced += 1
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        finally:
            await self.push_frame(LLMFullResponseEndFrame())


@pytest.mark.parametrize("fence", [True, False])
async def test_pipeline_context_holds_only_what_was_spoken_and_the_llm_stops(fence):
    reply = "**Sure!** Your table for *four* is booked 🎉. " + LONG
    llm = StreamingLLM(reply)
    guard = ReplyGuard(max_sentences=3)
    context = LLMContext(messages=[{"role": "user", "content": "Book a table for four."}])
    assistant = LLMContextAggregatorPair(context).assistant()
    stages = [guard.fence()] if fence else []
    pipeline = Pipeline([*stages, llm, guard, assistant])

    down, up = await run_test(pipeline, frames_to_send=[LLMContextFrame(context), SleepFrame(sleep=0.6)])

    said = "Sure! Your table for four is booked. Sentence number 1 is here."
    assert context.messages[-1] == {"role": "assistant", "content": said}
    assert llm.cancelled and llm.interruptions == 1
    assert llm.produced < 25 < len(llm.tokens)  # stopped a few tokens after the third sentence
    interruptions_up = [f for f in up if isinstance(f, InterruptionFrame)]
    assert len(interruptions_up) == (0 if fence else 1)
    assert not any(isinstance(f, InterruptionFrame) for f in down)  # the bot's audio is not interrupted


class _CountText(FrameProcessor):
    """Counts the LLM's text frames on their way to the guard."""

    def __init__(self):
        super().__init__()
        self.count = 0

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMTextFrame):
            self.count += 1
        await self.push_frame(frame, direction)


async def test_real_anthropic_service_stops_streaming_at_the_cut():
    """Pipecat's AnthropicLLMService on the loopback stand-in: the HTTP stream is closed at the cut."""
    reply = "Sure, **four** it is. " + LONG  # 200 words, one per delta, 10 ms apart
    async with AnthropicStandIn(responder=lambda body: Reply(text=reply), words_per_chunk=1, chunk_gap_s=0.01) as claude:
        client = AsyncAnthropic(api_key=API_KEY, base_url=claude.base_url, max_retries=0, timeout=5.0)
        try:
            counter = _CountText()
            guard = ReplyGuard(max_sentences=2)
            context = LLMContext(messages=[{"role": "user", "content": "A table for four."}])
            assistant = LLMContextAggregatorPair(context).assistant()
            llm = AnthropicLLMService(api_key=API_KEY, client=client)
            pipeline = Pipeline([guard.fence(), llm, counter, guard, assistant])
            down, up = await run_test(pipeline, frames_to_send=[LLMContextFrame(context), SleepFrame(sleep=1.0)])
        finally:
            await client.close()
    assert context.messages[-1] == {"role": "assistant", "content": "Sure, four it is. Sentence number 1 is here."}
    assert counter.count < 30 < len(reply.split())  # ~100 deltas would have arrived in that second
    assert not any(isinstance(f, InterruptionFrame) for f in down + up)

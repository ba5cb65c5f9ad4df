"""The local brain as a Pipecat LLM service: offline, deterministic, drives any form/menu flow.

It sits where an LLM sits and speaks the same frames: it reads the LLM context Pipecat hands it,
and answers with text or with function calls that Pipecat runs (so Flows moves the conversation
exactly as it would for Claude). What it says comes from the flow (prompts, read-backs, results).
"""

from __future__ import annotations

import json
import re
import uuid

from loguru import logger
from pipecat.frames.frames import (
    Frame,
    FunctionCallFromLLM,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
)
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.llm_service import LLMService
from pipecat.services.settings import LLMSettings

from app.brain.understand import NOTHING_HEARD, Call, Decision, Say, decide, on_entry
from app.flows.session import CallSession
from processors.reply_guard import AUTHORED

_QUOTED = re.compile(r"[\"“']([^\"”']{8,})[\"”']")


class LocalBrainService(LLMService):
    """An `LLMService` whose answers come from `app.brain.understand`, not from a model."""

    def __init__(self, session: CallSession, **kwargs):
        settings = LLMSettings(
            model="frontdesk-local", system_instruction=None, temperature=None, max_tokens=None,
            top_p=None, top_k=None, frequency_penalty=None, presence_penalty=None, seed=None,
            filter_incomplete_user_turns=False, user_turn_completion_config=None,
        )  # fmt: skip
        super().__init__(settings=settings, **kwargs)
        self.session = session

    def can_generate_metrics(self) -> bool:
        return True

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if not isinstance(frame, LLMContextFrame):
            await self.push_frame(frame, direction)
            return
        # What it says is written in the flow: the reply guard cleans it but does not cut it.
        start = LLMFullResponseStartFrame()
        start.metadata[AUTHORED] = True
        await self.push_frame(start)
        await self.start_processing_metrics()
        try:
            await self._respond(frame.context)
        finally:
            await self.stop_processing_metrics()
            await self.push_frame(LLMFullResponseEndFrame())

    async def _respond(self, context: LLMContext) -> None:
        decision = answer(self.session, context.get_messages())
        if isinstance(decision, Call):
            logger.debug(f"local brain: call {decision.function}({decision.arguments})")
            await self.run_function_calls(
                [FunctionCallFromLLM(function_name=decision.function, tool_call_id=f"local-{uuid.uuid4().hex[:12]}", arguments=decision.arguments, context=context)]
            )
            return
        if decision.text:
            await self._push_llm_text(decision.text)


def answer(session: CallSession, messages: list) -> Decision:
    """The local brain's reply to a context: to the caller's words, a function's result, or a node
    being entered. (Also what the Anthropic stand-in answers with, so a test's "Claude" drives a
    flow the way the local brain would.)"""
    last = messages[-1] if messages else {}
    role = last.get("role") if isinstance(last, dict) else None
    if role == "user":
        decision = decide(session, _text(last.get("content")))
    elif role == "developer" and _text(last.get("content")) == NOTHING_HEARD:
        decision = decide(session, "")
    elif role == "tool":
        decision = Say(session.speak(_result_say(last.get("content"))))
    else:
        decision = on_entry(session)
        if isinstance(decision, Say) and not decision.text:
            decision = Say(_instruction_text(messages))
    if isinstance(decision, Call) and decision.carry:
        session.carry = _text(last.get("content")) if role == "user" else None
    return decision


def _text(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def _result_say(content) -> str:
    try:
        result = json.loads(_text(content))
    except (json.JSONDecodeError, TypeError):
        return ""
    return str(result.get("say") or "") if isinstance(result, dict) else ""


def _instruction_text(messages: list) -> str:
    """A plain FlowConfig node has no `say`: speak the quoted words of its task, else the task."""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") in ("system", "developer"):
            content = _text(message.get("content"))
            quoted = _QUOTED.search(content)
            return quoted.group(1) if quoted else content
    return ""

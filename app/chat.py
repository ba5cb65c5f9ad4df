"""`frontdesk chat`: a conversation in text through the same pipeline and Flows runtime as a call."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import datetime

from pipecat.frames.frames import EndFrame, TranscriptionFrame, UserStartedSpeakingFrame, UserStoppedSpeakingFrame
from pipecat.pipeline.runner import WorkerRunner

from app.config.load import LoadedBot
from app.pipeline import CallAssembly, ChatResult, assemble_call, clock_for
from app.store import Store


async def run_chat(
    bot: LoadedBot,
    store: Store,
    turns: AsyncIterator[str],
    *,
    now: datetime | None = None,
    on_bot: Callable[[str], None] | None = None,
    on_ready: Callable[[CallAssembly], None] | None = None,
) -> ChatResult:
    """Hold one conversation: the bot greets, then each caller turn is answered until the flow ends."""
    clock = clock_for(bot, now)
    result = ChatResult()

    def bot_line(text: str) -> None:
        result.transcript.append({"role": "bot", "text": text})
        store.add_turn(call.session.call_id, "bot", text, clock())
        if on_bot:
            on_bot(text)

    call = assemble_call(bot, store, clock=clock, transport="chat", on_bot_line=bot_line)
    result.call_id = call.session.call_id
    if on_ready:
        on_ready(call)
    started = asyncio.Event()

    @call.worker.event_handler("on_pipeline_started")
    async def _started(worker, frame):
        started.set()

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(call.worker)
    running = asyncio.create_task(runner.run())
    try:
        await asyncio.wait_for(started.wait(), timeout=30)
        before = call.transcript.responses
        await call.start()
        await call.transcript.settled(after=before)
        async for text in turns:
            text = text.strip()
            if call.transcript.ended:
                break
            if not text:
                continue
            result.transcript.append({"role": "caller", "text": text})
            store.add_turn(call.session.call_id, "caller", text, clock())
            before = call.transcript.responses
            await call.worker.queue_frames([
                UserStartedSpeakingFrame(),
                TranscriptionFrame(text, "caller", clock().isoformat(), finalized=True),
                UserStoppedSpeakingFrame(),
            ])  # fmt: skip
            await call.transcript.settled(after=before)
    finally:
        if not call.transcript.ended:
            await call.worker.queue_frame(EndFrame())
        await asyncio.wait_for(running, timeout=30)
    return call.finish(result, clock)

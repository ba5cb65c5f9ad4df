"""Handlers as HTTP webhooks on loopback: the collected slots are POSTed, errors transition."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web

from app.chat import run_chat
from app.config.load import load_bot
from app.store import Store

FLOW = """
initial_node: ask
nodes:
  ask:
    form:
      slots:
        - name: name
          type: name
          prompt: What's your name?
        - name: party
          type: integer
          prompt: How many people?
          validate:
            - rule: range
              min: 1
              max: 8
              message: We seat one to eight people. How many?
      on_complete:
        handler:
          webhook: {url: "http://127.0.0.1:PORT/PATH", timeout_s: 0.5}
        next:
          - if: result.accepted
            goto: accepted
          - goto: refused
        on_error: failed
  accepted:
    say: "Done, {{ name }}."
    end: true
  refused:
    say: Sorry, we're full.
    end: true
  failed:
    say: Our system is down, please call back later.
    end: true
  transfer:
    transfer: true
"""


async def lines(*turns: str):
    for turn in turns:
        yield turn


@pytest.fixture
async def server():
    received: list[dict] = []

    async def accept(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.json_response({"accepted": True})

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.json_response({"accepted": True})

    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=500, text="boom")

    app = web.Application()
    app.add_routes([web.post("/accept", accept), web.post("/slow", slow), web.post("/broken", broken)])
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield port, received
    await runner.cleanup()


def bot_for(tmp_path, port: int, path: str):
    (tmp_path / "flow.yaml").write_text(FLOW.replace("PORT", str(port)).replace("PATH", path))
    (tmp_path / "bot.yaml").write_text("name: Tables\nflow: flow.yaml\n")
    return load_bot(tmp_path / "bot.yaml")


async def test_webhook_receives_slots_and_its_result_branches(tmp_path, server):
    port, received = server
    with Store(tmp_path / "db.sqlite") as store:
        result = await run_chat(bot_for(tmp_path, port, "accept"), store, lines("Kim Park", "twelve", "four"))
    assert [t["text"] for t in result.transcript if t["role"] == "bot"] == [
        "What's your name?", "How many people?", "We seat one to eight people. How many?", "Done, Kim Park.",
    ]
    assert received[0]["slots"] == {"name": "Kim Park", "party": 4}
    assert received[0]["node"] == "ask"
    assert result.node == "accepted"


@pytest.mark.parametrize("path", ["slow", "broken"])
async def test_webhook_timeout_or_error_takes_on_error(tmp_path, server, path):
    port, _ = server
    with Store(tmp_path / "db.sqlite") as store:
        result = await run_chat(bot_for(tmp_path, port, path), store, lines("Kim Park", "2"))
        assert result.node == "failed"
        assert result.transcript[-1]["text"] == "Our system is down, please call back later."
        call = store.get_call(result.call_id)
    assert call is not None and json.loads(json.dumps(call["metrics"]))["handler_errors"] == 1

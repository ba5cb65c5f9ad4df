"""Daily rooms: the real room and token requests (Pipecat's DailyRESTHelper) against a loopback
stand-in of Daily's REST API; the bot's call started with a fake transport (joining a real room
needs Daily's servers)."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import httpx
import pytest
from pipecat.transports.daily.utils import DailyRESTHelper

from app.config.load import load_bot
from app.server.app import create_app
from app.server.daily import startup_note
from app.server.reload import BotSource
from app.standins.daily import API_KEY, DailyStandIn
from app.standins.fault import Fault
from app.store import Store
from tests.server.test_app import FakeCalls


class FakeTransport:
    """Stands in for DailyTransport: records where the bot was sent."""

    def __init__(self, room_url: str, token: str, bot_name: str, access) -> None:
        self.room_url, self.token, self.bot_name = room_url, token, bot_name


@pytest.fixture
async def daily(monkeypatch):
    async with DailyStandIn() as standin:
        monkeypatch.setenv("DAILY_API_KEY", API_KEY)
        monkeypatch.setenv("DAILY_API_URL", standin.api_url)
        yield standin


@pytest.fixture
async def server(bot_dir):
    """(client, started calls) for an app whose Daily transport is FakeTransport."""
    calls = FakeCalls(hold=asyncio.Event())
    with Store(bot_dir / "calls.db") as store:
        app = create_app(BotSource("bot.yaml"), store, run_call=calls, warm_up=None)
        app.state.daily.transport_factory = FakeTransport
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            yield client, calls
        calls.hold.set()
        await app.state.frontdesk.calls.drain(1.0)


async def test_start_creates_a_room_and_tokens_and_sends_the_bot_in(server, daily):
    client, calls = server
    response = await client.post("/start", json={"createDailyRoom": True})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"dailyRoom", "dailyToken", "sessionId"}
    [room] = daily.rooms.values()
    assert body["dailyRoom"] == room["url"] and room["privacy"] == "private"
    assert room["config"]["eject_at_room_exp"] and 119 * 60 < room["config"]["exp"] - time.time() <= 120 * 60
    # The bot joins with its own owner token; the browser gets a plain one for the same room.
    await asyncio.sleep(0)
    [(_, transport, name)] = calls.started
    assert name == "daily" and isinstance(transport, FakeTransport)
    assert (transport.room_url, transport.bot_name) == (room["url"], "Shear Delight")
    bot, caller = daily.tokens[transport.token], daily.tokens[body["dailyToken"]]
    assert bot["is_owner"] and not caller["is_owner"]
    assert bot["room_name"] == caller["room_name"] == room["name"]
    # The room is there to be read back (GET /rooms/{name}).
    async with aiohttp.ClientSession() as session:
        helper = DailyRESTHelper(daily_api_key=API_KEY, daily_api_url=daily.api_url, aiohttp_session=session)
        assert (await helper.get_room_from_url(room["url"])).name == room["name"]


async def test_daily_redirects_the_browser_into_the_room(server, daily):
    client, calls = server
    response = await client.get("/daily")
    assert response.status_code == 307
    [room] = daily.rooms.values()
    url, token = response.headers["location"].split("?t=")
    assert url == room["url"] and not daily.tokens[token]["is_owner"]
    await asyncio.sleep(0)
    assert [name for _, _, name in calls.started] == ["daily"]


@pytest.mark.parametrize(
    "faults, status, says",
    [
        ([Fault("refuse")], 502, "Daily refused the API key in DAILY_API_KEY (HTTP 401)"),
        ([Fault("fail", status=500)], 502, "Daily could not create the room (HTTP 500)"),
        ([Fault(), Fault("fail", status=500)], 502, "(HTTP 500)"),  # the room, then the token fails
        ([Fault("fail", status=429)], 503, "rate-limiting"),
    ],
    ids=["401", "500", "token-500", "429"],
)
async def test_daily_errors_answer_clearly_and_start_no_call(server, daily, faults, status, says):
    client, calls = server
    daily.script.then(*faults)
    response = await client.post("/start", json={"createDailyRoom": True})
    assert response.status_code == status and says in response.json()["detail"]
    assert calls.started == []
    assert (await client.get("/health")).status_code == 200


async def test_a_wrong_key_and_an_unreachable_daily_are_named(server, daily, monkeypatch):
    client, calls = server
    monkeypatch.setenv("DAILY_API_KEY", "not-the-key")
    response = await client.get("/daily")
    assert response.status_code == 502 and "DAILY_API_KEY" in response.json()["detail"]
    monkeypatch.setenv("DAILY_API_URL", "http://127.0.0.1:9/v1")
    response = await client.post("/start", json={"transport": "daily"})
    assert response.status_code == 502 and "could not reach Daily at http://127.0.0.1:9/v1" in response.json()["detail"]
    assert calls.started == [] and daily.rooms == {}


async def test_without_a_key_daily_is_off_and_says_which_variable(server, monkeypatch):
    client, calls = server
    monkeypatch.delenv("DAILY_API_KEY", raising=False)
    for response in (await client.post("/start", json={"createDailyRoom": True}), await client.get("/daily")):
        assert response.status_code == 400
        assert response.json()["detail"].startswith("Daily is off: DAILY_API_KEY is not set")
    assert calls.started == []
    bot = load_bot("bot.yaml")
    assert startup_note(bot.config, "http://localhost:7860", {}).startswith("Daily is off because DAILY_API_KEY is not set")
    assert startup_note(bot.config, "http://localhost:7860", {"DAILY_API_KEY": "k"}) == (
        "Daily: open http://localhost:7860/daily (rooms from https://api.daily.co/v1)"
    )


async def test_bot_yaml_names_the_key_variable_and_the_api_url(server, bot_dir, monkeypatch):
    client, calls = server
    async with DailyStandIn(api_key="other-key") as standin:
        monkeypatch.delenv("DAILY_API_URL", raising=False)
        monkeypatch.setenv("MY_DAILY_KEY", "other-key")
        bot_yaml = bot_dir / "bot.yaml"
        bot_yaml.write_text(bot_yaml.read_text() + f"\ndaily:\n  api_key: ${{MY_DAILY_KEY}}\n  api_url: {standin.api_url}\n  room_expiry_min: 5\n")
        response = await client.post("/start", json={"createDailyRoom": True})
        assert response.status_code == 200, response.text
        [room] = standin.rooms.values()
        assert room["config"]["exp"] - time.time() <= 5 * 60

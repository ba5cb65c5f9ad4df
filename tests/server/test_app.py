"""The server in process: routes, health, draining, call start-up (with a fake call runner)."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from app.server.app import Calls, create_app
from app.server.cli import main as run_main
from app.server.reload import BotSource
from app.store import Store
from tests.server.test_reload import bump_mtime


class FakeCalls:
    """Records the calls the server starts instead of running the voice stack."""

    def __init__(self, hold: asyncio.Event | None = None):
        self.started: list[tuple] = []
        self.hold = hold

    async def __call__(self, bot, store, transport, *, transport_name):
        self.started.append((bot, transport, transport_name))
        if self.hold is not None:
            await self.hold.wait()
        return "done"


@pytest.fixture
def server(bot_dir):
    store = Store(bot_dir / "calls.db")
    calls = FakeCalls()
    app = create_app(BotSource("bot.yaml"), store, drain_timeout_s=1.0, run_call=calls, warm_up=None)
    with TestClient(app) as client:
        yield client, app, calls
    store.close()


def test_health(server):
    client, _, _ = server
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "active_calls": 0,
        "bot": "Shear Delight",
        "flow": "flows/scheduling.yaml",
        "config_generation": 1,
        "last_reload_error": None,
    }


def test_root_redirects_to_the_client(server):
    client, _, _ = server
    response = client.get("/", follow_redirects=False)
    assert response.status_code in (307, 302)
    assert response.headers["location"] == "/client/"


def test_client_serves_the_prebuilt_ui(server):
    client, _, _ = server
    response = client.get("/client/")
    assert response.status_code == 200
    assert "text/html" in response.headers["content-type"]
    assert "<html" in response.text.lower()


def test_health_reports_reloads_and_refused_edits(server, bot_dir):
    client, _, _ = server
    bot_yaml = bot_dir / "bot.yaml"
    bot_yaml.write_text(bot_yaml.read_text().replace("name: Shear Delight", "name: Shear Delight Two"))
    bump_mtime(bot_yaml)
    body = client.get("/health").json()
    assert (body["bot"], body["config_generation"], body["last_reload_error"]) == ("Shear Delight Two", 2, None)

    bot_yaml.write_text(bot_yaml.read_text().replace("name: Shear Delight Two", "name: [oops"))
    bump_mtime(bot_yaml)
    body = client.get("/health").json()
    assert body["bot"] == "Shear Delight Two"
    assert body["config_generation"] == 2
    assert re.match(r"bot\.yaml:\d+:\d+: ", body["last_reload_error"]), body["last_reload_error"]


def test_draining_refuses_new_calls(server):
    client, app, calls = server
    app.state.frontdesk.calls.draining = True
    response = client.post("/api/offer", json={"sdp": "v=0", "type": "offer"})
    assert response.status_code == 503
    health = client.get("/health")
    assert health.status_code == 503
    assert health.json()["status"] == "draining"
    with pytest.raises(WebSocketDisconnect) as closed:
        with client.websocket_connect("/ws") as ws:
            ws.receive_text()
    assert closed.value.code == 1013
    assert calls.started == []


def test_ws_serves_pipecat_eval_harness(server):
    from pipecat.evals.fastapi_transport import EvalFastAPIWebsocketTransport
    from pipecat.evals.serializer import EvalConnectionFlags, eval_connect_message

    client, _, calls = server
    with client.websocket_connect("/ws") as ws:
        ws.send_text(eval_connect_message(EvalConnectionFlags(skip_tts=True)))
        with pytest.raises(WebSocketDisconnect):
            ws.receive_text()  # the fake call ends at once; the server closes the socket
    [(bot, transport, name)] = calls.started
    assert name == "eval"
    assert isinstance(transport, EvalFastAPIWebsocketTransport)
    assert bot.config.name == "Shear Delight"


def test_ws_refuses_other_clients(server):
    client, _, calls = server
    with client.websocket_connect("/ws") as ws:
        ws.send_text('{"event": "hello"}')
        ws.send_text('{"event": "hello"}')
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
    assert closed.value.code == 1003
    assert calls.started == []


async def test_webrtc_offer_starts_a_call_with_the_current_bot(bot_dir):
    from aiortc import RTCPeerConnection
    from pipecat.transports.smallwebrtc.transport import SmallWebRTCTransport

    hold = asyncio.Event()
    calls = FakeCalls(hold)
    with Store(bot_dir / "calls.db") as store:
        app = create_app(BotSource("bot.yaml"), store, run_call=calls, warm_up=None)
        state = app.state.frontdesk
        browser = RTCPeerConnection()
        try:
            browser.addTransceiver("audio", direction="sendrecv")
            await browser.setLocalDescription(await browser.createOffer())
            offer = {"sdp": browser.localDescription.sdp, "type": browser.localDescription.type}
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
                response = await client.post("/api/offer", json=offer)
                assert response.status_code == 200, response.text
                assert response.json()["type"] == "answer"
                await asyncio.sleep(0)
                assert state.calls.active == 1
                assert (await client.get("/health")).json()["active_calls"] == 1
            [(bot, transport, name)] = calls.started
            assert name == "webrtc"
            assert isinstance(transport, SmallWebRTCTransport)
            hold.set()
            assert await state.calls.drain(5.0)
        finally:
            await browser.close()
            await state.calls.cancel_all()


async def test_drain_waits_for_calls_then_gives_up():
    calls = Calls()
    finish = asyncio.Event()

    async def call():
        await finish.wait()

    calls.start(call(), "a")
    assert calls.active == 1
    assert not await calls.drain(0.05)  # still running after the timeout
    assert calls.draining
    finish.set()
    assert await calls.drain(1.0)
    assert calls.active == 0


async def test_cancel_all_after_a_drain_timeout():
    calls = Calls()
    calls.start(asyncio.sleep(60), "stuck")
    assert not await calls.drain(0.01)
    await calls.cancel_all()
    assert calls.active == 0


def test_run_exits_1_on_a_broken_bot(bot_dir, capsys):
    bot_yaml = bot_dir / "bot.yaml"
    bot_yaml.write_text(bot_yaml.read_text().replace("name: Shear Delight", "name: [oops"))
    assert run_main(["bot.yaml", "--port", "1"]) == 1
    assert re.match(r"bot\.yaml:\d+:\d+: ", capsys.readouterr().err)


def test_start_registers_a_session_for_the_prebuilt_ui(server):
    client, app, _ = server
    assert client.get("/status").json() == {"status": "ready", "transports": ["webrtc"]}
    session = client.post("/start", json={"transport": "webrtc", "enableDefaultIceServers": True}).json()
    assert set(session) == {"sessionId"}  # no public STUN server: calls stay on the local network
    assert client.post("/start", json={"transport": "daily"}).status_code == 400
    assert client.post("/sessions/nope/api/offer", json={"sdp": "v=0", "type": "offer"}).status_code == 404
    app.state.frontdesk.calls.draining = True
    assert client.post("/start", json={}).status_code == 503


async def test_shutdown_drains_then_cancels_calls(bot_dir):
    with Store(bot_dir / "calls.db") as store:
        app = create_app(BotSource("bot.yaml"), store, drain_timeout_s=0.2, run_call=FakeCalls(), warm_up=None)
        calls = app.state.frontdesk.calls
        async with app.router.lifespan_context(app):
            stuck = calls.start(asyncio.sleep(60), "stuck")
        assert calls.draining
        assert stuck.cancelled()
        assert calls.active == 0

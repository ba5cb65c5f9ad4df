"""`frontdesk run --workers 2` (app/server/workers.py, worker.py, peers.py) as deployed: the real
command in a subprocess on a loopback port, the embedded speech stack, real HTTP and WebSocket
clients. Twilio callers (app/standins/twilio_media.py) hear the greeting and hang up; WebRTC
signalling is sent straight to one worker's private port so that its follow-ups must be forwarded;
SIGTERM drains every worker. (One worker is today's server: the other tests in tests/server.)
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest

from app.standins.twilio import TwilioStandIn
from tests.conftest import ROOT
from tests.server.conftest import KEYS
from tests.server.test_reload import bump_mtime
from tests.server.test_twilio import CALLER, SALON, dial, free_port, point_at, sign, tunnel_headers, webhook_params
from app.standins.twilio_media import MediaStreamsClient

WORKERS = 2


class Workers:
    """`python -m app.cli run --workers N` in a subprocess; its merged stdout/stderr in `log`."""

    def __init__(self, bot: Path, count: int = WORKERS, drain_timeout_s: float = 5.0):
        self.bot = bot
        self.count = count
        self.port = free_port()
        self.log = bot.parent / "server.log"
        self.drain_timeout_s = drain_timeout_s
        self.process: subprocess.Popen | None = None

    async def __aenter__(self) -> Workers:
        env = {k: v for k, v in os.environ.items() if k not in KEYS}
        command = [
            sys.executable, "-m", "app.cli", "run", str(self.bot), "--host", "127.0.0.1", "--port", str(self.port),
            "--workers", str(self.count), "--drain-timeout", str(self.drain_timeout_s),
        ]  # fmt: skip
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        await self.up()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # drain, then a second Ctrl-C: stop now
            await asyncio.sleep(0.5)
            self.process.send_signal(signal.SIGINT)
            try:
                await asyncio.to_thread(self.process.wait, 30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    async def health(self, port: int | None = None) -> dict:
        """/health on the public port (or a worker's private one), whatever its status code."""

        def get() -> dict:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port or self.port}/health", timeout=5) as response:
                    return json.load(response)
            except urllib.error.HTTPError as e:  # 503 while draining
                return json.load(e)

        return await asyncio.to_thread(get)

    async def up(self, timeout_s: float = 60.0) -> dict:
        """/health once every worker is serving."""
        assert self.process is not None
        async with asyncio.timeout(timeout_s):
            while True:
                assert self.process.poll() is None, f"the server exited:\n{self.text()[-4000:]}"
                try:
                    health = await self.health()
                    if all(row["up"] for row in health["worker_calls"]):
                        return health
                except OSError:
                    pass
                await asyncio.sleep(0.2)

    async def private_ports(self) -> list[int]:
        return [row["private_port"] for row in (await self.health())["worker_calls"]]

    async def dial(self, twilio: TwilioStandIn, call_sid: str, *, webhook_port: int | None = None, stream_port: int | None = None) -> MediaStreamsClient:
        """A Twilio call on the public port, or with its webhook and stream sent to given workers."""
        return await dial(twilio, call_sid, webhook_port or self.port, stream_port)

    def worker_of(self, call_sid: str) -> int | None:
        """Which worker took a Twilio call, from the tag on its log line."""
        match = re.search(rf"\| w(\d+) \|[^\n]*Twilio call {call_sid} from", self.text())
        return int(match.group(1)) if match else None


async def greeted_then_hung_up(client: MediaStreamsClient) -> None:
    async with client:
        await client.playing(timeout_s=40)
        await asyncio.sleep(0.3)


async def test_concurrent_twilio_calls_are_served_by_both_workers(twilio_bot):
    """Calls placed at once on the public port spread over both workers (the kernel hands each
    connection to whichever worker accepts first); each caller hears the greeting. One more call's
    stream goes to the worker that did not answer its webhook: the TwiML's ticket admits it."""
    async with TwilioStandIn() as twilio:
        point_at(twilio_bot, twilio.base_url)
        async with Workers(twilio_bot) as server:
            ports = await server.private_ports()
            # Webhook on worker 0, stream on worker 1: worker 0's TwiML carries a ticket worker 1 accepts.
            crossed = "CA" + "e" * 32
            await greeted_then_hung_up(first := await server.dial(twilio, crossed, webhook_port=ports[0], stream_port=ports[1]))
            assert first.extensions is None  # the server takes no websocket compression (audio hardly shrinks)

            sids: list[str] = []
            for batch in range(3):  # until both workers have taken calls (almost always the first batch)
                batch_sids = [f"CA{batch}{i}" + "f" * 30 for i in range(4)]
                sids += batch_sids
                clients = [await server.dial(twilio, sid) for sid in batch_sids]
                await asyncio.gather(*(greeted_then_hung_up(c) for c in clients))
                if {server.worker_of(sid) for sid in sids} == {0, 1}:
                    break
            async with asyncio.timeout(15):
                while (health := await server.health())["active_calls"]:
                    await asyncio.sleep(0.2)

    log = server.text()
    assert server.worker_of(crossed) == 1, log[-4000:]
    taken = {sid: server.worker_of(sid) for sid in sids}
    assert None not in taken.values(), (taken, log[-4000:])
    assert set(taken.values()) == {0, 1}, taken
    # /health on any worker counts the whole server's calls.
    rows = health["worker_calls"]
    assert [row["calls"] for row in rows] == [sum(1 for w in taken.values() if w == i) + (i == 1) for i in range(WORKERS)]
    assert health["workers"] == WORKERS and health["active_calls"] == 0
    assert "no signed webhook announced" not in log


async def test_webrtc_signalling_reaches_the_worker_that_holds_the_session(twilio_bot):
    """The prebuilt UI's sequence (/start, the session's offer, its ICE candidates) with every
    follow-up sent to the other worker's port: each is forwarded to the session's worker, and the
    call runs there (the browser's media goes to that worker directly). Then an edit of bot.yaml
    reaches both workers."""
    from aiortc import RTCPeerConnection, RTCSessionDescription

    async with Workers(twilio_bot) as server:
        w0, w1 = await server.private_ports()
        browser = RTCPeerConnection()
        try:
            browser.addTransceiver("audio", direction="sendrecv")
            await browser.setLocalDescription(await browser.createOffer())
            offer = {"sdp": browser.localDescription.sdp, "type": browser.localDescription.type}
            async with httpx.AsyncClient(timeout=30) as http:
                started = await http.post(f"http://127.0.0.1:{w0}/start", json={"transport": "webrtc"})
                session = started.json()["sessionId"]
                assert session.startswith("w0-")
                answer = await http.post(f"http://127.0.0.1:{w1}/sessions/{session}/api/offer", json=offer)
                assert answer.status_code == 200, answer.text
                assert answer.json()["type"] == "answer"
                pc_id = answer.json()["pc_id"]
                assert pc_id.startswith("w0-")
                await browser.setRemoteDescription(RTCSessionDescription(answer.json()["sdp"], "answer"))
                candidate = {"candidate": _host_candidate(browser.localDescription.sdp), "sdp_mid": "0", "sdp_mline_index": 0}
                for path in (f"/sessions/{session}/api/offer", "/api/offer"):  # the session's route, and the bare one by pc_id
                    patched = await http.patch(f"http://127.0.0.1:{w1}{path}", json={"pc_id": pc_id, "candidates": [candidate]})
                    assert (patched.status_code, patched.json()) == (200, {"status": "success"}), patched.text
                # What worker 0 does not know is still 404, whichever worker is asked.
                unknown = await http.patch(f"http://127.0.0.1:{w1}/api/offer", json={"pc_id": "w0-nope", "candidates": []})
                assert unknown.status_code == 404
                assert (await http.post(f"http://127.0.0.1:{w1}/sessions/w0-nope/api/offer", json=offer)).status_code == 404
                health = await server.health(w1)
                assert [row["active_calls"] for row in health["worker_calls"]] == [1, 0]
                assert health["active_calls"] == 1
        finally:
            await browser.close()
        async with asyncio.timeout(20):
            while (health := await server.health())["active_calls"]:
                await asyncio.sleep(0.2)
        assert [row["calls"] for row in health["worker_calls"]] == [1, 0]  # the call ran on worker 0, start to end

        # Hot reload in every worker: each re-reads bot.yaml for its next call (or /health).
        twilio_bot.write_text(twilio_bot.read_text(encoding="utf-8").replace("name: Shear Delight", "name: Shear Delight Two"), encoding="utf-8")
        bump_mtime(twilio_bot)
        for port in (w0, w1):
            health = await server.health(port)
            assert (health["worker"], health["bot"], health["config_generation"]) == ((w0, w1).index(port), "Shear Delight Two", 2)


def _host_candidate(sdp: str) -> str:
    """The first ICE candidate of an SDP (aiortc puts them all in its offer)."""
    return next(line.removeprefix("a=") for line in sdp.splitlines() if line.startswith("a=candidate:"))


async def test_a_dead_worker_is_restarted_and_sigterm_drains_every_worker(twilio_bot):
    """A worker killed outright is restarted by the parent. SIGTERM to the parent: every worker
    stops taking calls (503) while its call goes on; once the callers hang up, all exit, status 0."""
    async with TwilioStandIn() as twilio:
        point_at(twilio_bot, twilio.base_url)
        async with Workers(twilio_bot, drain_timeout_s=30) as server:
            w0, w1 = await server.private_ports()
            killed = (await server.health())["worker_calls"][1]["pid"]
            os.kill(killed, signal.SIGKILL)
            async with asyncio.timeout(60):
                while not ((row := (await server.health(w0))["worker_calls"][1])["up"] and row["pid"] != killed):
                    await asyncio.sleep(0.2)
            assert f"worker 1 (pid {killed}) died (signal 9); restarting it" in server.text()

            callers = [await server.dial(twilio, f"CA{i}" + "d" * 31, webhook_port=port, stream_port=port) for i, port in enumerate((w0, w1))]
            async with callers[0], callers[1]:
                await asyncio.gather(*(caller.playing(timeout_s=40) for caller in callers))
                server.process.send_signal(signal.SIGTERM)
                async with asyncio.timeout(10):
                    while True:
                        health = await server.health(w0)
                        if all(row["draining"] for row in health["worker_calls"]):
                            break
                        await asyncio.sleep(0.1)
                assert health["status"] == "draining" and health["active_calls"] == 2
                params = webhook_params("CA" + "9" * 32)
                async with httpx.AsyncClient() as http:
                    for port in (w0, w1):
                        refused = await http.post(f"http://127.0.0.1:{port}/", data=params, headers=tunnel_headers(sign(params)))
                        assert refused.status_code == 503
                await asyncio.sleep(1.0)
                assert server.process.poll() is None  # still waiting for the two calls
            status = await asyncio.to_thread(server.process.wait, 30)
    log = server.text()
    assert status == 0, log[-4000:]
    for index in (0, 1):
        assert re.search(rf"worker {index} \(pid \d+\) stopped", log)
    assert "killing" not in log and "cancelling" not in log


# --- in process: the pieces ---------------------------------------------------------------------


def test_ids_carry_their_worker():
    from app.server.peers import Board, PeerSettings, Peers

    peers = Peers(PeerSettings(1, (40001, 40002, 40003), "k"), Board([0] * Board.size(3), 3))
    assert peers.own("SmallWebRTCConnection#0-ab12") == "w1-SmallWebRTCConnection#0-ab12"
    assert peers.owner("w2-SmallWebRTCConnection#0-ab12") == (2, "SmallWebRTCConnection#0-ab12")
    assert peers.owner("w0-5f0c") == (0, "5f0c")
    # Ids without a worker (made before the restart of a single-process server), or naming a worker
    # this server does not have, are looked up here (and are unknown: 404).
    assert peers.owner("SmallWebRTCConnection#0-ab12") == (1, "SmallWebRTCConnection#0-ab12")
    assert peers.owner("w7-abc") == (1, "w7-abc")


def test_the_busier_worker_lets_another_accept_first():
    from app.server.peers import Board, PeerSettings, Peers

    board = Board([0] * Board.size(2), 2)
    w0, w1 = (Peers(PeerSettings(i, (40001, 40002), "k"), board) for i in (0, 1))
    board.set(0, up=1, active_calls=3, connections=3)
    board.set(1, up=1, active_calls=2, connections=2)
    assert w0.others_less_busy() and not w1.others_less_busy()
    board.set(1, draining=1)  # a draining worker takes no calls: it does not count
    assert not w0.others_less_busy()
    board.set(1, draining=0, up=0)  # nor does one that is not up (restarting)
    assert not w0.others_less_busy()


def test_a_twilio_ticket_admits_the_stream_on_any_worker_of_the_server(twilio_bot):
    """The webhook answered by one worker, the stream taken by another (two apps sharing a key, as
    two workers do); a ticket for another call, an expired or forged one, or one made under another
    server's key is refused."""
    from fastapi.testclient import TestClient
    from starlette.websockets import WebSocketDisconnect

    from app.server.app import create_app
    from app.server.peers import Board, PeerSettings, Peers
    from app.server.reload import BotSource
    from app.server.twilio import TICKET, make_ticket
    from app.store import Store
    from tests.server.test_twilio import FakeCalls, twilio_start

    board = Board([0] * Board.size(2), 2)
    store = Store(twilio_bot.parent / "calls.db")
    calls = [FakeCalls(), FakeCalls()]
    apps = [
        create_app(BotSource(twilio_bot), store, run_call=calls[i], warm_up=None, peers=Peers(PeerSettings(i, (40001, 40002), "shared"), board))
        for i in (0, 1)
    ]  # fmt: skip
    call_sid = "CA" + "7" * 32

    def stream(client: TestClient, parameters: dict[str, str]) -> int | None:
        with client.websocket_connect("/ws") as ws:
            for message in twilio_start(call_sid):
                start = json.loads(message)
                if start["event"] == "start":
                    start["start"]["customParameters"] = parameters
                ws.send_text(json.dumps(start))
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_text()
        return closed.value.code

    try:
        with TestClient(apps[0]) as first, TestClient(apps[1]) as second:
            params = webhook_params(call_sid)
            twiml = first.post("/", data=params, headers=tunnel_headers(sign(params))).text
            parameters = {p.get("name"): p.get("value") for p in ET.fromstring(twiml).iter("Parameter")}
            assert set(parameters) == {"from_number", "to_number", TICKET}
            base = {"from_number": CALLER, "to_number": SALON}
            expired = make_ticket(b"shared", call_sid, 1_000_000_000)
            other_call = make_ticket(b"shared", "CA" + "8" * 32, 4_000_000_000)
            other_key = make_ticket(b"another server", call_sid, 4_000_000_000)
            forged = parameters[TICKET][:-4] + "0000"
            for ticket in (None, expired, other_call, other_key, forged):
                assert stream(second, base | ({TICKET: ticket} if ticket else {})) == 1003, ticket
            assert calls[1].started == []
            stream(second, parameters)
            [(transport, name)] = calls[1].started
            assert (name, transport.call_sid, transport.caller) == ("twilio", call_sid, CALLER)
    finally:
        store.close()

"""The real thing: headless Chromium calls `frontdesk run` over WebRTC and speaks into the call.

The caller's microphone is a WAV file (espeak-ng: "I would like to book a haircut"); the server is
`frontdesk run` in a subprocess on the embedded stack (Whisper tiny.en, local brain, Piper). We
check from the server's side (the SQLite turns) that the caller was transcribed and answered, and
from the browser's side (WebRTC stats) that the bot's audio arrived.

The prebuilt UI at /client is loaded and its Connect button found, but the call itself is placed
by a few lines of page JavaScript doing what the UI's SmallWebRTC transport does (POST /start, then
the offer to /sessions/{id}/api/offer): the prebuilt UI manages devices through Daily's call
machine, which it downloads from c.daily.co at Connect, and this test has no network.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import websockets

from tests.conftest import ROOT
from tests.e2e.audio import caller_wav, espeak_available
from tests.e2e.cdp import CHROMIUM, Page, free_port, launch_chromium, page_websocket_url

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() or not espeak_available(),
    reason="needs Debian chromium and espeak-ng (`make test` installs them)",
)

# Every RTCPeerConnection the page makes, kept for getStats() (installed before the UI's scripts run).
CAPTURE_PEER_CONNECTIONS = """
window.__pcs = [];
const Native = window.RTCPeerConnection;
window.RTCPeerConnection = function (...args) { const pc = new Native(...args); window.__pcs.push(pc); return pc; };
window.RTCPeerConnection.prototype = Native.prototype;
Object.setPrototypeOf(window.RTCPeerConnection, Native);
"""

# What the prebuilt UI's SmallWebRTC transport does at Connect, without its Daily media manager.
CALL = """
(async () => {
  const pc = new RTCPeerConnection();
  window.__pcs.push(pc);
  const audio = pc.addTransceiver('audio', {direction: 'sendrecv'});
  pc.addTransceiver('video', {direction: 'sendrecv'});
  pc.createDataChannel('chat', {ordered: true});
  const mic = await navigator.mediaDevices.getUserMedia({audio: true});
  await audio.sender.replaceTrack(mic.getAudioTracks()[0]);
  pc.ontrack = (e) => { const el = new Audio(); el.srcObject = e.streams[0] || new MediaStream([e.track]); el.play(); };
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((done) => {
    if (pc.iceGatheringState === 'complete') return done();
    pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && done());
  });
  const post = (url, body) => fetch(url, {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)})
    .then((r) => { if (!r.ok) throw new Error(url + ': ' + r.status); return r.json(); });
  const {sessionId} = await post('/start', {transport: 'webrtc', enableDefaultIceServers: false});
  const answer = await post(`/sessions/${sessionId}/api/offer`, {sdp: pc.localDescription.sdp, type: 'offer', restart_pc: false});
  await pc.setRemoteDescription({sdp: answer.sdp, type: answer.type});
  return answer.pc_id;
})()
"""

BOT_AUDIO_RECEIVED = """
(async () => {
  let bytes = 0;
  for (const pc of window.__pcs) {
    (await pc.getStats()).forEach(s => { if (s.type === 'inbound-rtp' && s.kind === 'audio') bytes += s.bytesReceived || 0; });
  }
  return bytes;
})()
"""


def _run_command() -> list[str]:
    from app.cli import build_parser

    choices = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    return ["-m", "app.cli", "run"] if "run" in choices else ["-m", "app.server.cli"]


@pytest.fixture
def bot_yaml(tmp_path) -> Path:
    shutil.copytree(ROOT / "flows", tmp_path / "flows")
    text = (ROOT / "bot.yaml").read_text(encoding="utf-8")
    text = text.replace("path: data/frontdesk.db", f"path: {tmp_path / 'calls.db'}")
    text += "\nturn:\n  detector: silence   # synthetic speech confuses smart-turn\n"
    path = tmp_path / "bot.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def server(bot_yaml, tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("ANTHROPIC_API_KEY", "DEEPGRAM_API_KEY", "CARTESIA_API_KEY")}
    env["FRONTDESK_LOG_LEVEL"] = "DEBUG"
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, *_run_command(), str(bot_yaml), "--host", "127.0.0.1", "--port", str(port), "--drain-timeout", "10"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        yield process, f"http://127.0.0.1:{port}", log
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


async def _health(base: str, timeout_s: float, process: subprocess.Popen, log: Path) -> dict:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        assert process.poll() is None, f"server exited early:\n{log.read_text()}"
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as response:
                return json.load(response)
        except OSError:
            if loop.time() > deadline:
                raise TimeoutError(f"server did not come up:\n{log.read_text()}") from None
            await asyncio.sleep(0.2)


def _turns(db: Path) -> list[tuple[str, str]]:
    if not db.exists():
        return []
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT role, text FROM turns ORDER BY id").fetchall()


def _answered(turns: list[tuple[str, str]]) -> bool:
    heard = next((i for i, (role, text) in enumerate(turns) if role == "caller" and "haircut" in text.lower().replace(" ", "")), None)
    return heard is not None and any(role == "bot" for role, _ in turns[heard + 1 :])


async def test_browser_call_books_a_haircut(server, tmp_path):
    process, base, log = server
    health = await _health(base, 30, process, log)
    assert health["status"] == "ok"
    # The caller speaks after the greeting (~5 s): a barge-in before its first sentence is out
    # would leave nothing of it said, and the greeting unrecorded.
    mic = caller_wav("I would like to book a haircut.", tmp_path / "caller.wav", lead_s=7.0)
    db = tmp_path / "calls.db"

    devtools = free_port()
    browser = launch_chromium(tmp_path / "profile", mic, devtools, tmp_path / "chromium.log")
    try:
        async with websockets.connect(await page_websocket_url(devtools), max_size=None) as ws:
            page = Page(ws)
            await page.call("Page.enable")
            await page.call("Page.addScriptToEvaluateOnNewDocument", source=CAPTURE_PEER_CONNECTIONS)
            await page.call("Page.navigate", url=f"{base}/client/")
            await page.wait_for("!!document.querySelector('button[data-slot=connect-button]')", 20, "the prebuilt UI's Connect button")
            assert await page.js(CALL)

            loop = asyncio.get_running_loop()
            deadline = loop.time() + 45
            while not _answered(turns := _turns(db)):
                assert loop.time() < deadline, f"no answer to the caller; turns: {turns}\n{log.read_text()[-4000:]}"
                await asyncio.sleep(0.5)
            assert turns[0][0] == "bot"  # the greeting, spoken when the caller connected
            audio_bytes = await page.wait_for(BOT_AUDIO_RECEIVED, 10, "the bot's audio in the browser")
            assert audio_bytes > 10_000
            assert (await _health(base, 5, process, log))["active_calls"] == 1
            await page.js("window.__pcs.forEach((pc) => pc.close()); true")  # the caller hangs up
    finally:
        browser.terminate()
        browser.wait(10)

    # The caller left: the call ends, and Ctrl-C drains and exits cleanly.
    process.send_signal(signal.SIGINT)
    try:
        status = await asyncio.to_thread(process.wait, 20)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the server did not exit after Ctrl-C:\n{log.read_text()[-4000:]}")
    assert status == 0, log.read_text()[-4000:]
    with sqlite3.connect(db) as conn:
        [(transport, ended_at)] = conn.execute("SELECT transport, ended_at FROM calls").fetchall()
    assert transport == "webrtc"
    assert ended_at is not None

"""Just enough of the Chrome DevTools Protocol to drive headless Chromium from a test."""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import subprocess
import urllib.request
from pathlib import Path

import websockets

CHROMIUM = Path("/usr/bin/chromium")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_chromium(profile: Path, fake_mic: Path, port: int, log: Path) -> subprocess.Popen:
    """Headless Chromium with a WAV file as its microphone and DevTools on `port` (loopback)."""
    args = [
        str(CHROMIUM), "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={fake_mic}", "--autoplay-policy=no-user-gesture-required",
        f"--user-data-dir={profile}", "--remote-debugging-address=127.0.0.1", f"--remote-debugging-port={port}",
        "about:blank",
    ]  # fmt: skip
    with log.open("wb") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)


async def page_websocket_url(port: int, timeout_s: float = 20.0) -> str:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as response:
                targets = json.load(response)
            return next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
        except (OSError, StopIteration, ValueError):
            if loop.time() > deadline:
                raise TimeoutError("Chromium's DevTools did not come up") from None
            await asyncio.sleep(0.2)


class Page:
    """One page over CDP: send commands, evaluate JavaScript (events are read past and dropped)."""

    def __init__(self, ws: websockets.ClientConnection):
        self._ws = ws
        self._ids = itertools.count(1)

    async def call(self, method: str, **params) -> dict:
        call_id = next(self._ids)
        await self._ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(await self._ws.recv())
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    async def js(self, expression: str):
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression!r}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout_s: float, what: str):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not (value := await self.js(expression)):
            if loop.time() > deadline:
                raise TimeoutError(f"timed out waiting for {what}")
            await asyncio.sleep(0.25)
        return value

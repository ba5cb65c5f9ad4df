"""The server's warm-up (app/voice.py `warm_up`) imports everything a call needs: after it, a
phone call on the production chains (Deepgram, Claude, Cartesia stand-ins, the embedded stack
behind them) imports no module. Otherwise a worker's first call imports some 700 of them on the
event loop, stalling every call on that worker for about a second. And what it loaded is frozen
out of the garbage collector's full collections (each walked all of it: ~170 ms of the loop).

The check needs a fresh interpreter (this one has imported everything already): the test runs this
file as a script, which serves `create_app` on loopback and places one Twilio call after warm-up.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.parse
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOT_KEYS = ("DEEPGRAM_API_KEY", "CARTESIA_API_KEY", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "TWILIO_AUTH_TOKEN", "TWILIO_ACCOUNT_SID")


def test_a_call_after_warm_up_imports_nothing():
    env = {k: v for k, v in os.environ.items() if k not in BOT_KEYS}
    done = subprocess.run([sys.executable, __file__], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["greeting_heard"], done.stderr[-3000:]
    assert report["brain"] == "LLMFailover" and report["providers_imported_before"]
    assert report["imported_during_call"] == []
    assert report["frozen_after_warm_up"] > 100_000  # ~290k objects: modules, models, the bot


async def _post(port: int, path: str, form: dict[str, str]) -> str:
    """The webhook, over a bare socket: an HTTP client library would import modules of its own."""
    body = urllib.parse.urlencode(form).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nConnection: close\r\nContent-Length: {len(body)}\r\n\r\n"
    writer.write(head.encode() + body)
    raw = (await reader.read()).decode()
    writer.close()
    return raw.split("\r\n\r\n", 1)[1]


async def _one_call() -> dict:
    import uvicorn
    from loguru import logger

    from app.server.app import create_app
    from app.server.reload import BotSource
    from app.standins import anthropic as anthropic_standin
    from app.standins import cartesia as cartesia_standin
    from app.standins.anthropic import AnthropicStandIn
    from app.standins.cartesia import CartesiaStandIn
    from app.standins.deepgram import DeepgramStandIn, ScriptedTranscriber
    from app.standins.twilio_media import MediaStreamsClient
    from app.store import Store
    from app.voice import warm_up

    logger.remove()
    logger.add(sys.stderr, level="INFO")
    lines: list[str] = []
    logger.add(lambda message: lines.append(str(message)), level="INFO")
    work = Path(tempfile.mkdtemp())
    os.environ |= {"DEEPGRAM_API_KEY": "warm-up-test", "CARTESIA_API_KEY": cartesia_standin.API_KEY, "ANTHROPIC_API_KEY": anthropic_standin.API_KEY}
    async with DeepgramStandIn(ScriptedTranscriber([]), api_key="warm-up-test") as deepgram, CartesiaStandIn() as cartesia, AnthropicStandIn() as claude:
        os.environ["ANTHROPIC_BASE_URL"] = claude.base_url
        text = (ROOT / "bot.yaml").read_text(encoding="utf-8").replace("flow: flows/", f"flow: {ROOT}/flows/")
        text = text.replace("stt:\n", f"stt:\n  - provider: deepgram\n    base_url: {deepgram.base_url}\n", 1)
        text = text.replace("tts:\n", f"tts:\n  - provider: cartesia\n    base_url: {cartesia.url}\n", 1)
        bot = work / "bot.yaml"
        bot.write_text(text + "\nturn:\n  detector: silence\n", encoding="utf-8")
        warmed = asyncio.Event()

        async def warm_up_then_signal(loaded) -> None:
            await warm_up(loaded)
            warmed.set()

        with Store(work / "calls.db") as store:
            app = create_app(BotSource(bot), store, drain_timeout_s=2.0, warm_up=warm_up_then_signal)
            server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
            serving = asyncio.create_task(server.serve())
            await asyncio.wait_for(warmed.wait(), 120)
            frozen = gc.get_freeze_count()
            port = server.servers[0].sockets[0].getsockname()[1]
            providers = {"app.providers.deepgram", "app.providers.claude", "pipecat.services.cartesia.tts"}
            before = set(sys.modules)
            call_sid, account = "CA" + "a" * 32, "AC" + "b" * 32
            twiml = await _post(port, "/", {"CallSid": call_sid, "AccountSid": account, "From": "+15551234567", "To": "+15557654321"})
            stream = ET.fromstring(twiml).find("./Connect/Stream")
            parameters = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
            async with MediaStreamsClient(f"ws://127.0.0.1:{port}/ws", call_sid=call_sid, account_sid=account, parameters=parameters) as client:
                greeting = await client.playing()
                await asyncio.sleep(0.5)
                heard = len(greeting.audio) > 0
            async with asyncio.timeout(10):
                while app.state.frontdesk.calls.active:
                    await asyncio.sleep(0.05)
            imported = sorted(set(sys.modules) - before)
            server.should_exit = True
            await serving
    return {"greeting_heard": heard, "imported_during_call": imported, "providers_imported_before": providers <= before, "brain": _brain(lines), "frozen_after_warm_up": frozen}


def _brain(log: list[str]) -> str | None:
    """The brain the call was assembled with (app/pipeline.py logs it)."""
    found = [m.group(1) for line in log if (m := re.search(r"call \w+: .* via twilio, brain (\w+)", line))]
    return found[0] if len(found) == 1 else None


if __name__ == "__main__":
    print(json.dumps(asyncio.run(_one_call())))

"""Loaded by the server of `bench/concurrent_calls.py --loop-turn-ms MS` (on its PYTHONPATH, with
FRONTDESK_BENCH_LOOP_TURN_MS set): from the first call on, every turn of each server process's
event loop takes at least MS, a callback that keeps the CPU busy that long and schedules itself
again. A turn's answer then comes about MS later per loop turn on its way, so a run with it
against a run without counts those turns, whatever the machine's speed. Not for production."""

import os

if os.environ.get("FRONTDESK_BENCH_LOOP_TURN_MS"):
    import asyncio
    import importlib.abc
    import importlib.util
    import sys
    import time

    _TURN_S = float(os.environ["FRONTDESK_BENCH_LOOP_TURN_MS"]) / 1000

    def _occupy(loop: asyncio.AbstractEventLoop) -> None:
        def busy() -> None:
            until = time.perf_counter() + _TURN_S
            while time.perf_counter() < until:
                pass
            loop.call_soon(busy)

        loop.call_soon(busy)

    def _on_first_call(module) -> None:
        import app.voice as voice

        run_voice_call = voice.run_voice_call
        started: list[bool] = []

        async def run_occupied(*args, **kwargs):
            if not started:
                started.append(True)
                _occupy(asyncio.get_running_loop())
            return await run_voice_call(*args, **kwargs)

        voice.run_voice_call = run_occupied

    class _Finder(importlib.abc.MetaPathFinder):
        """Waits for the server's module (one process: app.server.cli; a worker: app.server.worker)."""

        def find_spec(self, name, path, target=None):
            if name not in ("app.server.cli", "app.server.worker"):
                return None
            sys.meta_path.remove(self)
            spec = importlib.util.find_spec(name)
            execute = spec.loader.exec_module

            def exec_module(module):
                execute(module)
                _on_first_call(module)

            spec.loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, _Finder())

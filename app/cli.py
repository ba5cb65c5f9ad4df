"""The `frontdesk` command: check, chat, graph (and, with the voice stack, run and simulate)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

from app.errors import ConfigError, FrontdeskError

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


def _parse_now(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--now expects ISO-8601 like 2026-11-23T10:00, not '{value}'") from None


def _default_targets() -> list[Path]:
    bot = Path("bot.yaml")
    flows = sorted(Path("flows").glob("*.yaml")) if Path("flows").is_dir() else []
    return ([bot] if bot.exists() else []) + flows


def cmd_check(args: argparse.Namespace) -> int:
    from app.config.load import check_files

    targets = [Path(p) for p in args.files] or _default_targets()
    if not targets:
        print("frontdesk check: nothing to check (no bot.yaml or flows/*.yaml here)", file=sys.stderr)
        return EXIT_USAGE
    problems = check_files(targets)
    for problem in problems:
        print(problem.format())
    if problems:
        print(f"{len(problems)} problem{'s' if len(problems) != 1 else ''} found", file=sys.stderr)
        return EXIT_PROBLEMS
    print(f"ok: {', '.join(str(t) for t in targets)}")
    return EXIT_OK


async def _stdin_lines(interactive: bool) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    while True:
        if interactive:
            sys.stdout.write("you> ")
            sys.stdout.flush()
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        yield line.rstrip("\n")


def cmd_chat(args: argparse.Namespace) -> int:
    from app.chat import run_chat
    from app.config.load import load_bot
    from app.store import Store

    _quiet_logs(args.verbose)
    bot = load_bot(args.bot)
    db = Path(args.db) if args.db else bot.resolve(bot.config.storage.path)
    interactive = sys.stdin.isatty() and not args.json

    def show(text: str) -> None:
        if not args.json:
            print(f"bot> {text}" if interactive else text, flush=True)

    with Store(db) as store:
        result = asyncio.run(run_chat(bot, store, _stdin_lines(interactive), now=args.now, on_bot=show))
    if args.json:
        print(json.dumps(result.as_json(), indent=2, ensure_ascii=False))
    return EXIT_OK


def cmd_simulate(args: argparse.Namespace) -> int:
    from app.config.load import load_bot
    from app.simulate.caller import load_script, turns_from_lines
    from app.simulate.run import simulate
    from app.store import Store

    _quiet_logs(args.verbose)
    bot = load_bot(args.bot)
    db = Path(args.db) if args.db else bot.resolve(bot.config.storage.path)
    noise = args.noise_db
    if args.script:
        turns, script_noise = load_script(Path(args.script))
        noise = noise if noise is not None else script_noise
    else:
        turns = turns_from_lines(sys.stdin.read().splitlines())
    with Store(db) as store:
        result = asyncio.run(simulate(bot, store, turns, now=args.now, voice=args.caller_voice, noise_db=noise, record=Path(args.record) if args.record else None))
    if args.json:
        print(json.dumps(result.as_json(), indent=2, ensure_ascii=False))
    else:
        for line in result.chat.transcript:
            print(f"{line['role']}> {line['text']}")
    return EXIT_OK


def cmd_graph(args: argparse.Namespace) -> int:
    from app.config.diagnostics import Diagnostics
    from app.config.load import load_flow
    from app.flows.graph import render_svg, to_mermaid

    out = Diagnostics()
    compiled = load_flow(Path(args.flow), out)
    if compiled is None:
        raise ConfigError(out.sorted())
    if args.format == "svg":
        svg = render_svg(compiled.flow)
        if svg is None:
            print("frontdesk graph: SVG needs Graphviz's `dot` (the README's set-up installs it); writing Mermaid", file=sys.stderr)
            args.format = "mermaid"
        text = svg
    if args.format == "mermaid":
        text = to_mermaid(compiled.flow)
    if args.output:
        Path(args.output).write_text(text or "", encoding="utf-8")
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text or "")
    return EXIT_OK


def _quiet_logs(verbose: bool) -> None:
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level="DEBUG" if verbose else os.environ.get("FRONTDESK_LOG_LEVEL", "WARNING"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="frontdesk", description="Voice agents written as YAML, running on Pipecat.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = commands.add_parser("check", help="report every problem in bot.yaml and flows as file:line:col", description="Check bot.yaml and flow files; print each problem as file:line:col: message; exit 1 if any.")
    check.add_argument("files", nargs="*", help="bot or flow YAML files (default: ./bot.yaml and ./flows/*.yaml)")
    check.set_defaults(run=cmd_check)

    chat = commands.add_parser("chat", help="talk to the bot in text, through the same pipeline as a call", description="Hold a conversation in text. With stdin not a terminal, each line is one caller turn.")
    chat.add_argument("bot", nargs="?", default="bot.yaml", help="bot file (default: bot.yaml)")
    chat.add_argument("--now", type=_parse_now, help="fix the clock, e.g. 2026-11-23T10:00 (reproducible runs)")
    chat.add_argument("--json", action="store_true", help="print one JSON object at the end: transcript, node, slots, outcome")
    chat.add_argument("--db", help="SQLite file to use instead of bot.yaml's storage.path")
    chat.add_argument("-v", "--verbose", action="store_true", help="debug logs on stderr")
    chat.set_defaults(run=cmd_chat)

    sim = commands.add_parser("simulate", help="place a call through the full audio pipeline with a synthetic caller", description="A voice call without a browser, in real time: each stdin line is a caller turn (text to synthesize, or a .wav path).")
    sim.add_argument("bot", nargs="?", default="bot.yaml", help="bot file (default: bot.yaml)")
    sim.add_argument("--now", type=_parse_now, help="fix the clock, e.g. 2026-11-23T10:00")
    sim.add_argument("--json", action="store_true", help="print the chat JSON plus per-turn latency_ms and a p50/p95 summary")
    sim.add_argument("--script", help="YAML: turns: [{say|wav, pause_s, barge_in_ms, noise_db}], noise_db")
    sim.add_argument("--record", metavar="DIR", help="write caller.wav and bot.wav to DIR")
    sim.add_argument("--caller-voice", choices=["piper", "espeak"], default="piper", help="the caller's synthetic voice (default: Piper, pitch-shifted)")
    sim.add_argument("--noise-db", type=float, help="background noise on the caller's line, dBFS (e.g. -40)")
    sim.add_argument("--db", help="SQLite file to use instead of bot.yaml's storage.path")
    sim.add_argument("-v", "--verbose", action="store_true")
    sim.set_defaults(run=cmd_simulate)

    graph = commands.add_parser("graph", help="draw a flow as Mermaid (or SVG)", description="Write a flow's graph as Mermaid text, or SVG through Graphviz.")
    graph.add_argument("flow", help="flow YAML file")
    graph.add_argument("--format", choices=["mermaid", "svg"], default="mermaid")
    graph.add_argument("-o", "--output", help="file to write (default: stdout)")
    graph.set_defaults(run=cmd_graph)

    from app.server.cli import add_run_command

    add_run_command(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except ConfigError as e:
        for diagnostic in e.diagnostics:
            print(diagnostic.format(), file=sys.stderr)
        return EXIT_PROBLEMS
    except FrontdeskError as e:
        print(f"frontdesk: {e}", file=sys.stderr)
        return e.exit_status


if __name__ == "__main__":
    sys.exit(main())

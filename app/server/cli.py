"""`frontdesk run [bot.yaml] --host --port --workers`: serve the bot, draining calls on Ctrl-C."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.server.reload import BotSource

# The server's modules (uvicorn, aiortc, Pipecat transports) load only when `run` runs, so the
# other commands start fast.

EXIT_OK, EXIT_PROBLEMS, EXIT_INTERRUPTED = 0, 1, 130


def _display_url(host: str, port: int) -> str:
    shown = "localhost" if host in ("0.0.0.0", "::", "127.0.0.1", "localhost") else host
    return f"http://{shown}:{port}/client"


# loguru's default format, with the process's tag (`main`, `w0`, `w1`, ...) when there are workers
TAGGED_FORMAT = (
    "<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> | <level>{level: <8}</level> | <magenta>{extra[worker]}</magenta> | "
    "<cyan>{name}</cyan>:<cyan>{function}</cyan>:<cyan>{line}</cyan> - <level>{message}</level>"
)


def _log_level(verbose: bool) -> str:
    return "DEBUG" if verbose else os.environ.get("FRONTDESK_LOG_LEVEL", "INFO")


def log_to_stderr(level: str, tag: str | None = None) -> None:
    """Logs on stderr at `level`; with a tag, each line names the process it comes from."""
    from loguru import logger

    logger.remove()
    if tag is None:
        logger.add(sys.stderr, level=level)
    else:
        logger.configure(extra={"worker": tag})
        logger.add(sys.stderr, level=level, format=TAGGED_FORMAT)


def worker_count(value: int | str) -> int:
    """`--workers` / `server.workers`: a number, or "auto" for one per CPU."""
    return (os.cpu_count() or 1) if value == "auto" else int(value)


def _workers_arg(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError(f"--workers expects a number from 1 to 64 or 'auto', not '{text}'")
    return value


def cmd_run(args: argparse.Namespace) -> int:
    import uvicorn

    from app.errors import ConfigError
    from app.server.app import DEFAULT_DRAIN_TIMEOUT_S, UVICORN_OPTIONS, DrainingServer, create_app
    from app.server.reload import BotSource
    from app.store import Store

    log_to_stderr(_log_level(args.verbose))
    try:
        source = BotSource(args.bot)
    except ConfigError as e:
        for diagnostic in e.diagnostics:
            print(diagnostic.format(), file=sys.stderr)
        return EXIT_PROBLEMS
    bot = source.current()
    host = args.host or bot.config.server.host
    port = args.port or bot.config.server.port
    db = Path(args.db) if args.db else bot.resolve(bot.config.storage.path)
    drain_timeout = DEFAULT_DRAIN_TIMEOUT_S if args.drain_timeout is None else args.drain_timeout
    workers = worker_count(args.workers if args.workers is not None else bot.config.server.workers)
    if workers > 1:
        return _run_workers(args, source, host, port, db, drain_timeout, workers)
    with Store(db) as store:
        app = create_app(source, store, drain_timeout_s=drain_timeout)
        config = uvicorn.Config(app, host=host, port=port, **UVICORN_OPTIONS)
        server = DrainingServer(config, app.state.frontdesk.calls, drain_timeout)
        _log_start(source, host, port, f"storage {db}")
        try:
            server.run()
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
    return EXIT_OK


def _run_workers(args: argparse.Namespace, source: BotSource, host: str, port: int, db: Path, drain_timeout: float, workers: int) -> int:
    """`--workers N` (N > 1): this process binds the socket and looks after N worker processes."""
    from app.server.workers import RunSettings, serve_workers
    from app.store import Store

    log_to_stderr(_log_level(args.verbose), tag="main")
    Store(db).close()  # the schema is migrated once, here, before the workers open the file
    _log_start(source, host, port, f"storage {db}, {workers} worker processes")
    settings = RunSettings(bot=str(source.path), db=str(db), drain_timeout_s=drain_timeout, log_level=_log_level(args.verbose))
    return serve_workers(settings, workers, host, port)


def _log_start(source: BotSource, host: str, port: int, note: str) -> None:
    from loguru import logger

    from app.providers.report import chain_report
    from app.server.daily import startup_note

    bot = source.current()
    logger.info(f"{bot.config.name} on {bot.flow.file}: open {_display_url(host, port)} ({note})")
    logger.info(startup_note(bot.config, _display_url(host, port).removesuffix("/client")))
    for line in chain_report(bot.config):
        logger.info(f"providers {line}")


def add_run_command(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `frontdesk run` on the CLI's subparsers."""
    run = subparsers.add_parser(
        "run",
        help="serve the bot to a browser (/client), Pipecat evals (/ws); hot reload of bot.yaml and flows",
        description="Start the server: the Pipecat prebuilt UI at /client over WebRTC, /ws for `pipecat eval`, /health. "
        "Edits to bot.yaml and flows apply to the next call; a broken edit is refused and the last good version kept.",
    )
    run.add_argument("bot", nargs="?", default="bot.yaml", help="bot file (default: bot.yaml)")
    run.add_argument("--host", help="interface to listen on (default: bot.yaml server.host, localhost)")
    run.add_argument("--port", type=int, help="port (default: bot.yaml server.port, 7860)")
    run.add_argument("--db", help="SQLite file to use instead of bot.yaml's storage.path")
    run.add_argument(
        "--workers", type=_workers_arg, metavar="N",
        help="worker processes serving calls, so that calls use several CPUs (default: bot.yaml server.workers, 1); 'auto': one per CPU",
    )  # fmt: skip
    run.add_argument("--drain-timeout", type=float, metavar="SECONDS", help="on Ctrl-C/SIGTERM, how long to wait for active calls (default: 30)")
    run.add_argument("-v", "--verbose", action="store_true", help="debug logs on stderr")
    run.set_defaults(run=cmd_run)
    return run


def main(argv: list[str] | None = None) -> int:
    """`python -m app.server.cli [bot.yaml] ...`: the same as `frontdesk run`."""
    parser = argparse.ArgumentParser(prog="frontdesk")
    add_run_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["run", *(sys.argv[1:] if argv is None else argv)])
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())

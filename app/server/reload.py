"""Hot reload: each new call gets the bot as it is on disk now, or the last version that passed.

A call keeps the `LoadedBot` it started with: it is immutable, so a reference is all it needs.
"""

from __future__ import annotations

from pathlib import Path

from loguru import logger

from app.config.load import LoadedBot, load_bot
from app.errors import ConfigError

# (path, mtime_ns, size) of every file a bot is read from; a missing file is (path, -1, -1)
Stamp = tuple[tuple[str, int, int], ...]


class BotSource:
    """bot.yaml and its flows, re-read when they change; a broken edit never replaces a good bot.

    The constructor raises `ConfigError` when the first load fails (`frontdesk run` reports it
    and exits). Later failures are logged, kept in `last_error` for /health, and the previous
    good bot stays in service.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        stamp = self._stamp_of(self._watched(None))
        self._bot: LoadedBot = load_bot(self.path)
        self._stamp: Stamp = self._restamp(stamp)
        self.generation = 1
        self.last_error: str | None = None

    def current(self) -> LoadedBot:
        """The bot a new call should run; files are re-parsed only when their mtime or size changed."""
        stamp = self._stamp_of(self._watched(self._bot))
        if stamp != self._stamp:
            self._reload(stamp)
        return self._bot

    def _reload(self, stamp: Stamp) -> None:
        try:
            bot = load_bot(self.path)
        except ConfigError as e:
            for diagnostic in e.diagnostics:
                logger.error(diagnostic.format())
            logger.error(f"{self.path}: edit refused; new calls keep generation {self.generation} until the files are fixed")
            self.last_error = "\n".join(d.format() for d in e.diagnostics) or str(e)
            self._stamp = stamp  # don't re-parse the same broken files for every call
            return
        self._bot = bot
        self._stamp = self._restamp(stamp)
        self.generation += 1
        self.last_error = None
        logger.info(f"reloaded {self.path}: {bot.config.name} on {bot.flow.file} (generation {self.generation})")

    def _watched(self, bot: LoadedBot | None) -> list[Path]:
        files = [self.path]
        folders = [self.path.parent / "flows"]
        if bot is not None:
            flow_file = bot.resolve(bot.config.flow)
            files.append(flow_file)
            folders.append(flow_file.parent)
        for folder in dict.fromkeys(folders):
            if folder.is_dir():
                files += sorted(folder.glob("*.yaml"))
        return list(dict.fromkeys(files))

    def _restamp(self, before: Stamp) -> Stamp:
        # A new `flow:` may point outside flows/: stamp what the new bot watches. Files seen before
        # the load keep their earlier stamp, so an edit made while parsing is read next time.
        old = {entry[0]: entry for entry in before}
        return tuple(old.get(entry[0], entry) for entry in self._stamp_of(self._watched(self._bot)))

    @staticmethod
    def _stamp_of(files: list[Path]) -> Stamp:
        stamp = []
        for file in files:
            try:
                st = file.stat()
                stamp.append((str(file), st.st_mtime_ns, st.st_size))
            except OSError:
                stamp.append((str(file), -1, -1))
        return tuple(stamp)

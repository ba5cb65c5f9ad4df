"""`frontdesk run`: the server a browser (or Pipecat's eval harness) talks to, with hot reload."""

from app.server.app import Calls, create_app
from app.server.reload import BotSource

__all__ = ["BotSource", "Calls", "create_app"]

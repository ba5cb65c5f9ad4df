"""The exceptions frontdesk raises, under one root so the CLI can map each to an exit status."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.config.diagnostics import Diagnostic


class FrontdeskError(Exception):
    """Root of every error frontdesk raises on purpose."""

    exit_status = 1


class ConfigError(FrontdeskError):
    """bot.yaml or a flow file is wrong; carries every problem found, each with its location."""

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = diagnostics
        super().__init__("\n".join(d.format() for d in diagnostics))


class FlowRuntimeError(FrontdeskError):
    """A flow failed while a call was running (a handler raised, a webhook was unusable)."""


class ProviderError(FrontdeskError):
    """A speech or language provider could not be built or reached."""

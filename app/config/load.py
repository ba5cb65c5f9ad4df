"""Load bot.yaml and its flow: syntax, schema and semantic passes, all problems reported together."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.config.bot import BotConfig, literal_secrets
from app.config.diagnostics import Diagnostics
from app.config.source import Document, load_yaml, validate
from app.errors import ConfigError
from app.flows.checks import check_flow
from app.flows.compiler import CompiledFlow, compile_flow
from app.flows.model import Flow


@dataclass(frozen=True)
class LoadedBot:
    """A bot that passed every check: its configuration and its compiled flow."""

    path: Path
    config: BotConfig
    flow: CompiledFlow

    @property
    def root(self) -> Path:
        return self.path.parent

    def resolve(self, relative: str) -> Path:
        """A path written in bot.yaml, taken relative to bot.yaml's folder."""
        path = Path(relative)
        return path if path.is_absolute() else self.root / path


def _secrets(doc: Document, out: Diagnostics) -> None:
    for path, _ in literal_secrets(doc.data):
        out.add(doc.span(path), "this looks like a literal API key or account id", "keep secrets out of YAML: write ${ENV_VAR} and set the variable in the environment")


def load_flow(path: Path, out: Diagnostics) -> CompiledFlow | None:
    doc = load_yaml(path)
    out.extend(doc.problems)
    if doc.problems:
        return None
    if not isinstance(doc.data, dict):
        out.add(doc.span(()), "a flow file must be a mapping with 'initial_node' and 'nodes'")
        return None
    _secrets(doc, out)
    flow, problems = validate(Flow, doc)
    out.extend(problems)
    if flow is None:
        return None
    before = len(out.items)
    check_flow(flow, doc, out)
    if len(out.items) > before:
        return None
    return compile_flow(flow, doc.file)


def load_bot(path: str | Path) -> LoadedBot:
    """Load and check everything; raise ConfigError listing every problem found."""
    path = Path(path)
    out = Diagnostics()
    doc = load_yaml(path)
    out.extend(doc.problems)
    config: BotConfig | None = None
    if not doc.problems:
        if not isinstance(doc.data, dict):
            out.add(doc.span(()), "bot.yaml must be a mapping (name:, flow:, ...)")
        else:
            _secrets(doc, out)
            config, problems = validate(BotConfig, doc)
            out.extend(problems)
    flow = None
    if config is not None:
        flow_path = Path(config.flow) if Path(config.flow).is_absolute() else path.parent / config.flow
        if not flow_path.is_file():
            out.add(doc.span(("flow",)), f"flow file '{config.flow}' not found", f"looked for {flow_path}")
        else:
            flow = load_flow(flow_path, out)
    if out or config is None or flow is None:
        raise ConfigError(out.sorted())
    return LoadedBot(path=path, config=config, flow=flow)


def check_files(paths: list[Path]) -> list:
    """`frontdesk check` on bot files and flow files alike; returns every diagnostic."""
    out = Diagnostics()
    for path in paths:
        doc = load_yaml(path)
        is_bot = isinstance(doc.data, dict) and "flow" in doc.data and "nodes" not in doc.data
        if is_bot:
            try:
                load_bot(path)
            except ConfigError as e:
                out.extend(e.diagnostics)
        else:
            load_flow(path, out)
    return out.sorted()

"""A flow as a diagram: Mermaid text, and Graphviz DOT for SVG when `dot` is installed."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

from app.flows.model import Flow, Node


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str


def flow_edges(flow: Flow) -> list[Edge]:
    found: list[Edge] = []
    for name, node in flow.nodes.items():
        found += _node_edges(flow, name, node)
    for intent in flow.global_intents:
        target = intent.transition_to or (flow.initial_node if intent.intent == "start_over" else None)
        if target:
            found.append(Edge("*", target, intent.intent))
    return found


def _node_edges(flow: Flow, name: str, node: Node) -> list[Edge]:
    edges = [Edge(name, i.transition_to, i.name) for i in node.intents]
    for fn in node.functions:
        if isinstance(fn.transition_to, str):
            edges.append(Edge(name, fn.transition_to, fn.name))
        elif fn.transition_to is not None:
            edges += [Edge(name, t, f"{fn.name}: {fn.transition_to.field}={c}") for c, t in fn.transition_to.cases.items()]
    completion = node.form.on_complete if node.form else node.menu.on_done if node.menu else None
    if completion is not None:
        done = "confirmed" if node.form and node.form.confirm else "done"
        if isinstance(completion.next, str):
            edges.append(Edge(name, completion.next, done))
        elif completion.next:
            edges += [Edge(name, b.goto, b.if_ or "otherwise") for b in completion.next]
        if completion.on_error:
            edges.append(Edge(name, completion.on_error, "error"))
    if node.form:
        action = node.form.on_no_match
        target = action.transition_to or next((n for n, x in flow.nodes.items() if x.kind == action.action), None)
        if action.action != "skip" and target:
            edges.append(Edge(name, target, "no match"))
    return edges


def _shape(name: str, node: Node) -> str:
    label = f"{name}<br/><i>{node.kind}</i>" if node.kind != "node" else name
    if node.kind in ("end", "transfer"):
        return f'{name}(["{label}"])'
    if node.kind == "form":
        slots = ", ".join(s.name for s in node.form.slots) if node.form else ""
        return f'{name}["{name}<br/><i>form: {slots}</i>"]'
    if node.kind == "menu":
        return f'{name}[["{label}"]]'
    return f'{name}["{label}"]'


def to_mermaid(flow: Flow) -> str:
    lines = ["flowchart TD", "    start((start)) --> " + flow.initial_node]
    lines += [f"    {_shape(name, node)}" for name, node in flow.nodes.items()]
    if flow.global_intents:
        lines.append('    *{{"any node"}}'.replace("*", "anywhere"))
    for edge in flow_edges(flow):
        source = "anywhere" if edge.source == "*" else edge.source
        label = edge.label.replace('"', "'")
        lines.append(f'    {source} -->|"{label}"| {edge.target}')
    return "\n".join(lines) + "\n"


def to_dot(flow: Flow) -> str:
    lines = ["digraph flow {", "  rankdir=TB; node [fontname=Helvetica]; edge [fontname=Helvetica, fontsize=10];"]
    lines.append('  start [shape=circle, label="start"];')
    for name, node in flow.nodes.items():
        shape = {"end": "doubleoctagon", "transfer": "doubleoctagon", "form": "box", "menu": "box3d"}.get(node.kind, "ellipse")
        detail = f"\\n({node.kind})" if node.kind != "node" else ""
        lines.append(f'  "{name}" [shape={shape}, label="{name}{detail}"];')
    lines.append(f'  start -> "{flow.initial_node}";')
    if flow.global_intents:
        lines.append('  "*" [shape=note, label="any node"];')
    for edge in flow_edges(flow):
        label = edge.label.replace('"', "'")
        lines.append(f'  "{edge.source}" -> "{edge.target}" [label="{label}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_svg(flow: Flow) -> str | None:
    """SVG through Graphviz, or None when `dot` is not installed."""
    dot = shutil.which("dot")
    if dot is None:
        return None
    done = subprocess.run([dot, "-Tsvg"], input=to_dot(flow), capture_output=True, text=True, check=True, timeout=60)
    return done.stdout

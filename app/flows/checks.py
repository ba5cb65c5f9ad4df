"""Semantic checks on a flow, one small function per rule, each reporting at the source position.

Runs after schema validation and before compiling: the compiler assumes what these establish.
"""

from __future__ import annotations

import difflib
import importlib
import re
from collections.abc import Callable, Iterator

from app.config.diagnostics import Diagnostics
from app.config.source import Document
from app.flows.compiler import GLOBAL_INTENT_FUNCTIONS
from app.flows.conditions import parse_condition
from app.flows.model import Completion, Flow, Form, Handler, Node

TEMPLATE = re.compile(r"(\\?)\{\{\s*([A-Za-z_][A-Za-z0-9_]*)(?:\.[A-Za-z0-9_.]+)?\s*\}\}")
BUILTIN_TEMPLATE_NAMES = frozenset({"cart", "total", "bot_name", "caller_phone"})
P = tuple[str | int, ...]


def check_flow(flow: Flow, doc: Document, diagnostics: Diagnostics) -> None:
    for rule in RULES:
        rule(flow, doc, diagnostics)


# --- where transitions lead ---------------------------------------------------------------------


def edges(flow: Flow, name: str, node: Node) -> Iterator[tuple[str, P]]:
    """Every node `node` can lead to, with the path of the value that names it."""
    base: P = ("nodes", name)
    for i, intent in enumerate(node.intents):
        yield intent.transition_to, base + ("intents", i, "transition_to")
    for i, fn in enumerate(node.functions):
        if isinstance(fn.transition_to, str):
            yield fn.transition_to, base + ("functions", i, "transition_to")
        elif fn.transition_to is not None:
            for case, target in fn.transition_to.cases.items():
                yield target, base + ("functions", i, "transition_to", "cases", case)
            if fn.transition_to.default:
                yield fn.transition_to.default, base + ("functions", i, "transition_to", "default")
    if node.form:
        yield from _completion_edges(node.form.on_complete, base + ("form", "on_complete"))
        yield from _no_match_edges(flow, node.form, base + ("form",))
    if node.menu:
        yield from _completion_edges(node.menu.on_done, base + ("menu", "on_done"))


def _completion_edges(completion: Completion, path: P) -> Iterator[tuple[str, P]]:
    if isinstance(completion.next, str):
        yield completion.next, path + ("next",)
    elif completion.next:
        for i, branch in enumerate(completion.next):
            yield branch.goto, path + ("next", i, "goto")
    if completion.on_error:
        yield completion.on_error, path + ("on_error",)


def _no_match_edges(flow: Flow, form: Form, path: P) -> Iterator[tuple[str, P]]:
    cases = [(form.on_no_match, path + ("on_no_match",))] + [
        (slot.on_no_match, path + ("slots", i, "on_no_match")) for i, slot in enumerate(form.slots) if slot.on_no_match
    ]
    for no_match, where in cases:
        if no_match.transition_to:
            yield no_match.transition_to, where + ("transition_to",)
        elif no_match.action != "skip":
            target = _first_of_kind(flow, "transfer" if no_match.action == "transfer" else "end")
            if target:
                yield target, where


def global_edges(flow: Flow) -> Iterator[tuple[str, P]]:
    for i, intent in enumerate(flow.global_intents):
        if intent.transition_to:
            yield intent.transition_to, ("global_intents", i, "transition_to")
        elif intent.intent == "start_over":
            yield flow.initial_node, ("global_intents", i)
    for i, fn in enumerate(flow.global_functions):
        if isinstance(fn.transition_to, str):
            yield fn.transition_to, ("global_functions", i, "transition_to")


def _first_of_kind(flow: Flow, kind: str) -> str | None:
    return next((n for n, node in flow.nodes.items() if node.kind == kind), None)


def _suggest(name: str, options: list[str]) -> str:
    close = difflib.get_close_matches(name, options, n=1)
    return f"did you mean '{close[0]}'? " if close else ""


# --- the rules ----------------------------------------------------------------------------------


def validate_transition_targets(flow: Flow, doc: Document, out: Diagnostics) -> None:
    names = list(flow.nodes)
    if flow.initial_node not in flow.nodes:
        out.add(doc.span(("initial_node",)), f"initial_node '{flow.initial_node}' is not a node of this flow", f"{_suggest(flow.initial_node, names)}nodes: {', '.join(names)}")
    found = [edge for name, node in flow.nodes.items() for edge in edges(flow, name, node)]
    for target, path in found + list(global_edges(flow)):
        if target not in flow.nodes:
            out.add(doc.span(path), f"transition to missing node '{target}'", f"{_suggest(target, names)}define the node under 'nodes:' or fix the name")


def validate_all_nodes_reachable(flow: Flow, doc: Document, out: Diagnostics) -> None:
    if flow.initial_node not in flow.nodes:
        return
    seen = {flow.initial_node} | {t for t, _ in global_edges(flow)}
    todo = list(seen)
    while todo:
        name = todo.pop()
        if name not in flow.nodes:
            continue
        for target, _ in edges(flow, name, flow.nodes[name]):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    for name in flow.nodes:
        if name not in seen:
            out.add(doc.key_span(("nodes", name)), f"node '{name}' is unreachable: no transition leads to it", f"add a transition to '{name}' or remove the node")


def validate_every_node_can_end(flow: Flow, doc: Document, out: Diagnostics) -> None:
    """Each node must have a path to an end or transfer node through its own transitions."""
    can_end = {n for n, node in flow.nodes.items() if node.ends_call}
    changed = True
    while changed:
        changed = False
        for name, node in flow.nodes.items():
            if name not in can_end and any(t in can_end for t, _ in edges(flow, name, node)):
                can_end.add(name)
                changed = True
    for name in flow.nodes:
        if name not in can_end:
            out.add(doc.key_span(("nodes", name)), f"node '{name}' has no way to end: no path from it reaches an end or transfer node", "add a transition towards a node with 'end: true' (or 'transfer'), or end_conversation in its post_actions")


def validate_forms_have_a_way_out(flow: Flow, doc: Document, out: Diagnostics) -> None:
    for name, node in flow.nodes.items():
        if not node.form:
            continue
        base: P = ("nodes", name, "form")
        uses_default = any(s.on_no_match is None for s in node.form.slots)
        cases = [(node.form.on_no_match, base + ("on_no_match",), None)] if uses_default else []
        cases += [(s.on_no_match, base + ("slots", i, "on_no_match"), s) for i, s in enumerate(node.form.slots) if s.on_no_match]
        for no_match, path, slot in cases:
            if no_match.action == "skip":
                if slot is not None and slot.required:
                    out.add(doc.span(path), f"slot '{slot.name}' is required and cannot be skipped on repeated no-match", "use action: transfer or end, or mark the slot 'required: false'")
                elif slot is None and any(s.required and not s.on_no_match for s in node.form.slots):
                    out.add(doc.span(path) if path in doc.value_spans else doc.key_span(base), f"form in node '{name}' skips required slots on repeated no-match, so it has no way out", "use action: transfer or end, or mark the slots 'required: false'")
                continue
            if no_match.transition_to is None and _first_of_kind(flow, "transfer" if no_match.action == "transfer" else "end") is None:
                kind = "transfer" if no_match.action == "transfer" else "end"
                out.add(doc.span(path) if path in doc.value_spans else doc.key_span(base), f"form in node '{name}' has no way out on repeated no-match: it would {no_match.action}, but the flow has no {kind} node", f"add a node with '{kind}: true', or set on_no_match.transition_to")


def validate_templates_name_known_slots(flow: Flow, doc: Document, out: Diagnostics) -> None:
    known = set(BUILTIN_TEMPLATE_NAMES)
    for node in flow.nodes.values():
        if node.form:
            known |= {s.name for s in node.form.slots}
            known |= set(node.form.on_complete.sets)
        if node.menu:
            known |= set(node.menu.on_done.sets)
    for path, text in template_strings(flow):
        for match in TEMPLATE.finditer(text):
            if match.group(1):
                continue
            if match.group(2) not in known:
                out.add(doc.span(path), f"template '{{{{ {match.group(2)} }}}}' names a slot that is never collected", f"{_suggest(match.group(2), sorted(known))}known: {', '.join(sorted(known))}")


def template_strings(flow: Flow) -> Iterator[tuple[P, str]]:
    for name, node in flow.nodes.items():
        base: P = ("nodes", name)
        if node.say:
            yield base + ("say",), node.say
        if node.role_message:
            yield base + ("role_message",), node.role_message
        for i, message in enumerate(node.task_messages):
            yield base + ("task_messages", i, "content"), message.content
        for key in ("pre_actions", "post_actions"):
            for i, action in enumerate(getattr(node, key)):
                text = action.extras().get("text")
                if isinstance(text, str):
                    yield base + (key, i, "text"), text
        for key in ("end", "transfer"):
            closing = getattr(node, key)
            if not isinstance(closing, bool) and closing.say:
                yield base + (key, "say"), closing.say
        if node.form:
            form = node.form
            for i, slot in enumerate(form.slots):
                yield base + ("form", "slots", i, "prompt"), slot.prompt
                for j, text in enumerate(slot.reprompts):
                    yield base + ("form", "slots", i, "reprompt") + ((j,) if isinstance(slot.reprompt, list) else ()), text
                for j, rule in enumerate(slot.validate_):
                    if rule.message:
                        yield base + ("form", "slots", i, "validate", j, "message"), rule.message
            if form.confirm:
                yield base + ("form", "confirm", "say"), form.confirm.say
            if form.on_complete.say:
                yield base + ("form", "on_complete", "say"), form.on_complete.say
        if node.menu and node.menu.on_done.say:
            yield base + ("menu", "on_done", "say"), node.menu.on_done.say


def validate_conditions(flow: Flow, doc: Document, out: Diagnostics) -> None:
    slots = {s.name for node in flow.nodes.values() if node.form for s in node.form.slots}
    sets = {k for node in flow.nodes.values() for c in _completions(node) for k in c.sets}
    for name, node in flow.nodes.items():
        conditions: list[tuple[P, str, bool]] = []
        if node.form:
            conditions += [(("nodes", name, "form", "slots", i, "when"), s.when, False) for i, s in enumerate(node.form.slots) if s.when]
        for key, completion in (("form", node.form and node.form.on_complete), ("menu", node.menu and node.menu.on_done)):
            if completion and isinstance(completion.next, list):
                sub = "on_complete" if key == "form" else "on_done"
                conditions += [(("nodes", name, key, sub, "next", i, "if"), b.if_, True) for i, b in enumerate(completion.next) if b.if_]
        for path, source, allow_result in conditions:
            try:
                condition = parse_condition(source)
            except ValueError as e:
                out.add(doc.span(path), str(e), "write e.g. fulfilment == 'delivery' or result.found")
                continue
            allowed = slots | sets | ({"result"} if allow_result else set())
            for unknown in sorted(condition.names - allowed):
                out.add(doc.span(path), f"condition names '{unknown}', which is not a slot of this flow", f"{_suggest(unknown, sorted(allowed))}conditions read slots" + (" and result.<field>" if allow_result else ""))


def _completions(node: Node) -> list[Completion]:
    return [c for c in (node.form and node.form.on_complete, node.menu and node.menu.on_done) if c]


def validate_handlers_resolve(flow: Flow, doc: Document, out: Diagnostics) -> None:
    for path, handler in handlers(flow):
        if handler.function and resolve_function(handler.function) is None:
            module, _, attr = handler.function.partition(":")
            out.add(doc.span(path), f"handler '{handler.function}' does not resolve", f"check that module '{module}' is importable and defines '{attr}'")
    modules = []
    for i, module in enumerate(flow.handlers):
        try:
            modules.append(importlib.import_module(module))
        except Exception as e:  # an import error of any kind is the user's to see
            out.add(doc.span(("handlers", i)), f"handler module '{module}' cannot be imported: {e}")
    generated = {f"{prefix}_{n}" for n in flow.nodes for prefix in ("fill", "confirm", "update_order", "finish_order")} | set(GLOBAL_INTENT_FUNCTIONS.values())
    for path, name in _direct_function_names(flow):
        if name in generated:
            continue
        if not any(callable(getattr(m, name, None)) for m in modules):
            out.add(doc.span(path), f"function '{name}' does not resolve: it is not transition_only and no handler module defines it", "list the module defining it under 'handlers:', or make it transition_only with a description")


def _direct_function_names(flow: Flow) -> Iterator[tuple[P, str]]:
    for name, node in flow.nodes.items():
        for i, fn in enumerate(node.functions):
            if not fn.transition_only:
                yield ("nodes", name, "functions", i, "name"), fn.name
        for key in ("pre_actions", "post_actions"):
            for i, action in enumerate(getattr(node, key)):
                if action.handler and ":" not in action.handler:
                    yield ("nodes", name, key, i, "handler"), action.handler
    for i, fn in enumerate(flow.global_functions):
        if not fn.transition_only:
            yield ("global_functions", i, "name"), fn.name


def handlers(flow: Flow) -> Iterator[tuple[P, Handler]]:
    for name, node in flow.nodes.items():
        base: P = ("nodes", name)
        if node.form:
            for i, slot in enumerate(node.form.slots):
                for j, rule in enumerate(slot.validate_):
                    if rule.handler:
                        yield base + ("form", "slots", i, "validate", j, "handler"), rule.handler
            if node.form.on_complete.handler:
                yield base + ("form", "on_complete", "handler"), node.form.on_complete.handler
        if node.menu and node.menu.on_done.handler:
            yield base + ("menu", "on_done", "handler"), node.menu.on_done.handler


def resolve_function(dotted: str) -> Callable | None:
    module_name, _, attr = dotted.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception:
        return None
    target = getattr(module, attr, None)
    return target if callable(target) else None


RULES = [
    validate_transition_targets,
    validate_all_nodes_reachable,
    validate_every_node_can_end,
    validate_forms_have_a_way_out,
    validate_templates_name_known_slots,
    validate_conditions,
    validate_handlers_resolve,
]

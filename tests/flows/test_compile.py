"""Both shipped flows and a plain FlowConfig compile into configs Pipecat itself accepts."""

from __future__ import annotations

from pathlib import Path

import pytest
from pipecat.flows import Flow as PipecatFlow
from pipecat.flows import FlowConfig

from app.config.diagnostics import Diagnostics
from app.config.load import load_bot, load_flow
from app.pipeline import flow_handlers
from tests.conftest import ROOT


@pytest.mark.parametrize("name", ["flows/scheduling.yaml", "flows/ordering.yaml", "tests/fixtures/plain_flow.yaml"])
def test_compiles_to_a_valid_pipecat_flow_config(name):
    out = Diagnostics()
    compiled = load_flow(ROOT / name, out)
    assert out.items == [] and compiled is not None
    # The compiled config is a real FlowConfig: Pipecat's own validation accepts its dump.
    FlowConfig.model_validate(compiled.config.model_dump(exclude_none=True))


def test_plain_flow_config_is_unchanged_by_compiling():
    compiled = load_flow(ROOT / "tests/fixtures/plain_flow.yaml", Diagnostics())
    assert compiled is not None
    original = FlowConfig.from_file(ROOT / "tests/fixtures/plain_flow.yaml")
    assert compiled.config.model_dump(exclude_none=True) == original.model_dump(exclude_none=True)


@pytest.mark.parametrize("name", ["flows/scheduling.yaml", "flows/ordering.yaml"])
def test_node_instructions_are_developer_messages(name, tmp_path):
    """An initial system message of the context is dropped by Pipecat's Anthropic adapter when the
    service has a system instruction (test_claude_calls.py): a node's instructions, generated or
    written as `role: system`, go in as developer messages."""
    compiled = load_flow(ROOT / name, Diagnostics())
    assert compiled is not None
    roles = {m.role for node in compiled.config.nodes.values() for m in node.task_messages}
    assert roles == {"developer"}
    written = tmp_path / "plain.yaml"
    written.write_text((ROOT / "tests/fixtures/plain_flow.yaml").read_text().replace("role: developer", "role: system", 1))
    plain = load_flow(written, Diagnostics())
    assert plain is not None and {m.role for node in plain.config.nodes.values() for m in node.task_messages} == {"developer"}


def test_form_compiles_to_generated_functions_with_branching():
    bot = load_bot(ROOT / "bot.yaml")
    book = bot.flow.config.nodes["book"]
    fill = next(f for f in book.functions if f.name == "fill_book")
    assert fill.transition_to is not None and set(fill.transition_to.cases) == {"booked", "transfer"}
    assert [f.name for f in book.functions] == ["fill_book", "confirm_book"]
    assert {f.name for f in bot.flow.config.global_functions} == {"speak_to_human", "start_over", "repeat_that", "goodbye"}
    # Joined to the generated functions, Pipecat's Flow resolves every name and builds tool schemas.
    flow = PipecatFlow(bot.flow.config, handlers=flow_handlers(bot))
    schema = next(f for f in flow.node("book")["functions"] if f.name == "fill_book")
    assert set(schema.properties) == {"service", "date", "time", "name", "phone", "not_understood", "redo"}
    assert schema.required == []


def test_menu_compiles_and_checkout_can_edit_the_cart():
    out = Diagnostics()
    compiled = load_flow(ROOT / "flows/ordering.yaml", out)
    assert compiled is not None
    assert [f.name for f in compiled.config.nodes["order"].functions] == ["update_order_order", "finish_order_order"]
    assert "update_order_order" in [f.name for f in compiled.config.nodes["checkout"].functions]
    assert compiled.menus["order"].catalog.sized_items == frozenset({"margherita", "pepperoni", "veggie"})


def test_end_and_transfer_nodes_end_the_conversation():
    compiled = load_flow(ROOT / "flows/scheduling.yaml", Diagnostics())
    assert compiled is not None
    for name in ("goodbye", "transfer", "kept"):
        assert [a.type for a in compiled.config.nodes[name].post_actions] == ["end_conversation"]


def test_the_nodes_where_the_call_ends_are_known():
    scheduling = load_flow(ROOT / "flows/scheduling.yaml", Diagnostics())
    assert scheduling is not None
    assert {"goodbye", "transfer", "kept"} <= scheduling.closing_nodes
    assert not {"greeting", "book", "booked"} & scheduling.closing_nodes
    # A plain FlowConfig node ends the call with an end_conversation action.
    plain = load_flow(ROOT / "tests/fixtures/plain_flow.yaml", Diagnostics())
    assert plain is not None and plain.closing_nodes == {"pizza", "sushi"}


def test_graph_mermaid_and_svg(tmp_path):
    import shutil
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "app.cli", "graph", "flows/scheduling.yaml"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("flowchart TD\n    start((start)) --> greeting\n")
    assert '    greeting -->|"book_appointment"| book' in done.stdout
    assert '    book -->|"confirmed"| booked' in done.stdout
    assert '    book -->|"no match"| transfer' in done.stdout
    assert shutil.which("dot"), "the set-up installs Graphviz"
    out = tmp_path / "flow.svg"
    done = subprocess.run([sys.executable, "-m", "app.cli", "graph", "flows/ordering.yaml", "--format", "svg", "-o", str(out)], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    svg = out.read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and "checkout" in svg


def test_help_for_every_command():
    import subprocess
    import sys

    for command in (["--help"], ["check", "--help"], ["chat", "--help"], ["graph", "--help"]):
        done = subprocess.run([sys.executable, "-m", "app.cli", *command], capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert done.returncode == 0 and "usage: frontdesk" in done.stdout


def test_check_command_exit_status_and_output(tmp_path):
    import subprocess
    import sys

    bad = tmp_path / "bad.yaml"
    bad.write_text("initial_node: a\nnodes:\n  a:\n    say: Hi\n    intents:\n      - name: go\n        examples: [go]\n        transition_to: b\n")
    done = subprocess.run([sys.executable, "-m", "app.cli", "check", str(bad)], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 1
    assert f"{bad}:8:24: transition to missing node 'b'" in done.stdout
    ok = subprocess.run([sys.executable, "-m", "app.cli", "check"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert Path(ROOT / "bot.yaml").exists()


def test_fixed_lines_are_the_flows_word_for_word_prompts():
    lines = load_flow(ROOT / "flows/scheduling.yaml", Diagnostics()).fixed_lines
    assert "What day would you like to come in?" in lines  # a slot prompt
    assert "Thanks for calling Shear Delight. Goodbye!" in lines  # a node's say
    assert all("{" not in line for line in lines)  # templated lines are spoken with values in them
    assert len(lines) == len(set(lines))

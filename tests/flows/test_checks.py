"""Every flow diagnostic, pinned with its exact position and wording."""

from __future__ import annotations

from app.config.diagnostics import Diagnostics
from app.config.load import check_files, load_flow

BROKEN = """
initial_node: greeting
global_intents:
  - intent: human
nodes:
  greeting:
    say: Hello {{ nmae }}, book or cancel?
    intents:
      - name: book
        examples: [book]
        transition_to: booking
      - name: cancel
        examples: [cancel]
        transition_to: cancelation
  booking:
    form:
      slots:
        - name: name
          type: name
          prompt: Your name?
        - name: address
          type: text
          when: fulfilment = 'delivery'
          prompt: Address?
      on_complete:
        handler: app.handlers.nowhere:save
        next:
          - if: colour == 'red'
            goto: done
          - goto: done
  done:
    say: Bye.
    end: true
  orphan:
    say: Nobody comes here.
    intents:
      - name: loop
        examples: [again]
        transition_to: orphan
"""


def messages(write, text: str) -> list[str]:
    path = write("flows/broken.yaml", text)
    out = Diagnostics()
    assert load_flow(path, out) is None
    return [d.format() for d in out.sorted()]


def test_every_semantic_problem_with_its_position(write):
    assert messages(write, BROKEN) == [
        "flows/broken.yaml:6:10: template '{{ nmae }}' names a slot that is never collected\n"
        "    hint: did you mean 'name'? known: address, bot_name, caller_phone, cart, name, total",
        "flows/broken.yaml:13:24: transition to missing node 'cancelation'\n"
        "    hint: define the node under 'nodes:' or fix the name",
        "flows/broken.yaml:15:5: form in node 'booking' has no way out on repeated no-match: it would transfer, but the flow has no transfer node\n"
        "    hint: add a node with 'transfer: true', or set on_no_match.transition_to",
        "flows/broken.yaml:22:17: condition 'fulfilment = 'delivery'' is not valid: invalid syntax\n"
        "    hint: write e.g. fulfilment == 'delivery' or result.found",
        "flows/broken.yaml:25:18: handler 'app.handlers.nowhere:save' does not resolve\n"
        "    hint: check that module 'app.handlers.nowhere' is importable and defines 'save'",
        "flows/broken.yaml:27:17: condition names 'colour', which is not a slot of this flow\n"
        "    hint: conditions read slots and result.<field>",
        "flows/broken.yaml:33:3: node 'orphan' has no way to end: no path from it reaches an end or transfer node\n"
        "    hint: add a transition towards a node with 'end: true' (or 'transfer'), or end_conversation in its post_actions",
        "flows/broken.yaml:33:3: node 'orphan' is unreachable: no transition leads to it\n"
        "    hint: add a transition to 'orphan' or remove the node",
    ]


def test_schema_problems_in_a_flow(write):
    text = """
    initial_node: a
    nodes:
      a:
        form:
          slots:
            - name: when
              type: dates
              prompt: When?
            - name: pick
              type: choice
              prompt: Which?
          confirm:
            sey: ok?
    """
    assert messages(write, text) == [
        "flows/broken.yaml:7:17: nodes.a.form.slots.0.type: Input should be 'text', 'name', 'date', 'time', 'datetime', 'integer', 'number', 'phone', 'email', 'yes_no', 'choice' or 'pattern'",
        "flows/broken.yaml:9:11: nodes.a.form.slots.1: slot 'pick' is a choice and needs 'choices'",
        "flows/broken.yaml:12:7: nodes.a.form.confirm: missing required key 'say'",
        "flows/broken.yaml:13:9: unknown key 'sey'\n    hint: check the spelling; see the README's reference",
    ]


def test_skip_on_required_slot_is_no_way_out(write):
    text = """
    initial_node: a
    nodes:
      a:
        form:
          slots:
            - name: n
              type: integer
              prompt: How many?
              on_no_match: {action: skip}
          on_complete: {next: b}
      b:
        end: {say: Bye.}
    """
    assert messages(write, text) == [
        "flows/broken.yaml:9:24: slot 'n' is required and cannot be skipped on repeated no-match\n"
        "    hint: use action: transfer or end, or mark the slot 'required: false'",
    ]


def test_unresolved_direct_function_in_plain_config(write):
    text = """
    initial_node: a
    nodes:
      a:
        task_messages: [{role: developer, content: Ask.}]
        functions:
          - name: lookup_order
            transition_to: b
      b:
        task_messages: [{role: developer, content: Bye.}]
        post_actions: [{type: end_conversation}]
    """
    assert messages(write, text) == [
        "flows/broken.yaml:6:15: function 'lookup_order' does not resolve: it is not transition_only and no handler module defines it\n"
        "    hint: list the module defining it under 'handlers:', or make it transition_only with a description",
    ]


def test_shipped_files_check_clean(monkeypatch):
    from tests.conftest import ROOT

    monkeypatch.chdir(ROOT)
    from pathlib import Path

    assert check_files([Path("bot.yaml"), Path("flows/scheduling.yaml"), Path("flows/ordering.yaml"), Path("tests/fixtures/plain_flow.yaml")]) == []

"""bot.yaml: every problem reported as file:line:col with a hint, all in one run."""

from __future__ import annotations

import pytest

from app.config.load import load_bot
from app.config.source import parse_yaml
from app.errors import ConfigError

FLOW = """
initial_node: hello
nodes:
  hello:
    say: Hi there.
    end: true
"""


def problems(path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_bot(path)
    return [d.format() for d in caught.value.diagnostics]


def test_valid_bot_loads_with_defaults(write):
    write("flows/hello.yaml", FLOW)
    path = write("bot.yaml", "name: Test\nflow: flows/hello.yaml\n")
    bot = load_bot(path)
    assert bot.config.voice.max_sentences == 3
    assert bot.config.voice.strip_markdown is True
    assert [p.provider for p in bot.config.brain] == ["local"]
    assert [p.provider for p in bot.config.stt] == ["whisper"]
    assert [p.provider for p in bot.config.tts] == ["piper"]
    assert bot.config.storage.path == "data/frontdesk.db"
    assert bot.flow.flow.initial_node == "hello"


def test_every_schema_problem_at_its_position(write):
    write("flows/hello.yaml", FLOW)
    path = write(
        "bot.yaml",
        """
        name: Test
        flow: flows/hello.yaml
        timezone: Mars/Olympus
        voice:
          max_sentences: 7
          strip_markdwn: false
        brain:
          - provider: anthropic
            api_key: abc123
          - provider: lokal
        """,
    )
    assert problems(path) == [
        "bot.yaml:3:11: timezone: unknown timezone 'Mars/Olympus' (use an IANA name like America/New_York)",
        "bot.yaml:5:18: voice.max_sentences: Input should be less than or equal to 3",
        "bot.yaml:6:3: unknown key 'strip_markdwn'\n    hint: check the spelling; see the README's reference",
        "bot.yaml:9:14: brain.0.api_key: a secret must be an environment reference like ${ANTHROPIC_API_KEY}, not a literal value",
        "bot.yaml:10:15: brain.1.provider: unknown provider 'lokal'\n    hint: one of: local, anthropic",
    ]


def test_literal_key_anywhere_is_refused(write):
    write("flows/hello.yaml", FLOW)
    path = write("bot.yaml", "name: Test\nflow: flows/hello.yaml\npersona: 'my key is sk-ant-api03-abcdefghijklmnop'\n")
    assert problems(path) == [
        "bot.yaml:3:10: this looks like a literal API key or account id\n"
        "    hint: keep secrets out of YAML: write ${ENV_VAR} and set the variable in the environment"
    ]


def test_missing_required_key_and_missing_flow_file(write):
    path = write("bot.yaml", "flow: flows/nowhere.yaml\n")
    assert problems(path) == ["bot.yaml:1:1: missing required key 'name'"]
    path = write("bot.yaml", "name: X\nflow: flows/nowhere.yaml\n")
    [problem] = problems(path)
    assert problem.startswith("bot.yaml:2:7: flow file 'flows/nowhere.yaml' not found")


def test_yaml_syntax_error_is_located(write):
    path = write("bot.yaml", "name: X\nflow: [unclosed\n")
    [problem] = problems(path)
    assert problem.startswith("bot.yaml:3:1: YAML syntax error:")


def test_tab_indentation_hint():
    doc = parse_yaml("voice:\n\tmax_sentences: 2\n", "bot.yaml")
    [problem] = doc.problems
    assert problem.span.line == 2 and problem.hint == "indent with spaces, not tabs"


def test_duplicate_keys_are_reported():
    doc = parse_yaml("name: A\nflow: x.yaml\nname: B\n", "bot.yaml")
    assert [d.format() for d in doc.problems] == [
        "bot.yaml:3:1: duplicate key 'name' (first written at line 1)\n"
        "    hint: YAML keeps only the last one; remove or rename one of them"
    ]

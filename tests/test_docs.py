"""The README is the entry point: every command the CLI has is documented there, and the two
commands it promises exist and are what CI runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from greenfoundry.cli import build_parser

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text(encoding="utf-8")


def _commands(parser: argparse.ArgumentParser, prefix: str = "") -> list[str]:
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                full = f"{prefix} {name}".strip()
                nested = _commands(sub, full)
                out.extend(nested or [full])
    return out


def test_every_command_is_in_the_readme():
    commands = _commands(build_parser())
    assert "stack up" in commands and "score" in commands
    missing = [c for c in commands if f"greenfoundry {c}" not in README]
    assert not missing, f"commands not documented in README.md: {missing}"


def test_every_command_has_help_text():
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                assert choice.help, f"{choice.dest} has no help text"


def test_the_readme_commands_exist_and_ci_runs_the_test_command():
    assert "scripts/demo.sh" in README and "scripts/test.sh" in README
    for script in ("scripts/demo.sh", "scripts/test.sh", "scripts/setup.sh"):
        assert (REPO / script).exists(), script
    assert "scripts/test.sh" in (REPO / ".ci" / "run").read_text()


def _options(parser: argparse.ArgumentParser, path: list[str]) -> list[str]:
    for name in path:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    return [o for a in parser._actions for o in a.option_strings if o.startswith("--")]


def test_every_scoring_option_is_in_the_scoring_readme():
    # scoring/README.md documents the options of `standard show/check/limits` and `score`.
    text = (REPO / "scoring" / "README.md").read_text(encoding="utf-8")
    parser = build_parser()
    for path in (["standard", "show"], ["standard", "check"], ["standard", "limits"], ["score"]):
        missing = [o for o in _options(parser, path) if o != "--help" and o not in text]
        assert not missing, f"greenfoundry {' '.join(path)}: {missing} not in scoring/README.md"

"""Every `greenfoundry metrics` command and option is documented in metrics/README.md, and a
bad option is one `error:` line."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from greenfoundry.cli import build_parser, main

README = (Path(__file__).resolve().parents[2] / "metrics" / "README.md").read_text()


def _metrics_parsers():
    top = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    metrics = top.choices["metrics"]
    sub = next(a for a in metrics._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices


def test_every_metrics_command_and_option_is_in_the_readme():
    for name, parser in _metrics_parsers().items():
        assert f"greenfoundry metrics {name}" in README, name
        for action in parser._actions:
            for opt in action.option_strings:
                if opt.startswith("--") and opt != "--help":
                    assert opt in README, f"metrics {name} {opt}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2025-02-30", "--to", "2025-03-01"], "--from '2025-02-30' is not allowed"),
        (["--from", "2025-03-02", "--to", "2025-03-01"], "--to 2025-03-01 is not allowed"),
    ],
)
def test_a_bad_backfill_range_is_one_error_line(args, message, capsys):
    from greenfoundry.config import plant_file

    code = main(["metrics", "backfill", "--config", str(plant_file()), *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("error: ") and message in err[-1]

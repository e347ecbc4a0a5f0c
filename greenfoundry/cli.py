"""The `greenfoundry` command: a thin CLI over the library.

Each area registers its own subcommands (`register(subparsers)` in its `cli` module), so the
ingest, scoring and simulator code owns its command-line surface. The library raises
`GreenfoundryError`; this module turns it into one `error: …` line and a non-zero exit.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from greenfoundry import __version__
from greenfoundry.errors import GreenfoundryError

# Modules that contribute subcommands, in the order `--help` lists them.
COMMAND_MODULES = (
    "greenfoundry.stack",
    "greenfoundry.ingest.cli",
    "greenfoundry.sim.cli",
    "greenfoundry.metrics.cli",
    "greenfoundry.demo",
    "greenfoundry.scoring.cli",
    "greenfoundry.grade.cli",
    "greenfoundry.grade.report_cli",
    "greenfoundry.alerts.cli",
    "greenfoundry.dashboards.cli",
    "greenfoundry.park.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="greenfoundry",
        description="Foundry plant monitoring scored against T/CFA 0308011.5-2024.",
    )
    parser.add_argument("--version", action="version", version=f"greenfoundry {__version__}")
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging level for the run (default INFO)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.func(args) or 0)
    except GreenfoundryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader (`| head`) went away: stop quietly, as Unix tools do.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())

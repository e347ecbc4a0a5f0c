"""Subcommands of this area; see greenfoundry.cli."""

from greenfoundry.scoring import score_cli


def register(subparsers) -> None:
    """Add `standard …` (this module) and `score` (score_cli) to the `greenfoundry` parser."""
    score_cli.register(subparsers)

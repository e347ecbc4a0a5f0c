"""Subcommands of this area; see greenfoundry.cli."""


def register(subparsers) -> None:
    """Add this area's subcommands to the `greenfoundry` parser."""

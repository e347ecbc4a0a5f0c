"""Subcommands of this package (placeholder of the lead: its owner fills it in)."""


def register(subparsers) -> None:
    return None

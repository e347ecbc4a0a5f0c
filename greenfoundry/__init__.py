"""greenfoundry: foundry plant monitoring scored against T/CFA 0308011.5-2024."""

__version__ = "0.1.0"

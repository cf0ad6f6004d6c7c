"""The ``edge`` command and its subcommands (the composition root: it may use every package)."""

from edge.cli.app import main

__all__ = ["main"]

"""What several subcommands share: the ``--config`` / ``--model`` options and the too-short-file check."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from edge.core.errors import EXIT_USAGE, EdgeError

if TYPE_CHECKING:  # the command line starts without numpy
    from edge.capture.sources import Source


def add_config_and_model(p: argparse.ArgumentParser) -> None:
    """The ``--config`` and ``--model`` options shared by the commands that run the listener."""
    p.add_argument("--config", metavar="FILE", help="configuration file (YAML; default: built-in defaults)")
    p.add_argument("--model", metavar="FILE", help="ONNX model file (overrides model.path)")


def check_file_length(source: Source, window_s: float, code: int = EXIT_USAGE) -> None:
    """A file shorter than the model's window would end without one score and without a word (bad input: 2)."""
    duration = source.duration_s
    if duration is None or duration >= window_s:
        return
    source.stop()
    raise EdgeError(f"{getattr(source, 'path', source.kind)}: {duration:.3f} s of audio is shorter than the "
                    f"model's {window_s:.3f} s window: nothing to classify", exit_code=code)

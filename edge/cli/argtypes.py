"""argparse ``type=`` callables shared by the commands: a bad value is argparse's one-line usage error."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def seed(text: str) -> int:
    """A random seed: numpy needs an integer >= 0."""
    try:
        v = int(text)
    except ValueError:
        v = -1
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return v


def fold_list(text: str) -> list[int]:
    """Folds as ``1,5``: integers >= 1, each once."""
    try:
        folds = [int(x) for x in text.split(",")]
    except ValueError:
        folds = []
    if not folds or min(folds) < 1 or len(set(folds)) != len(folds):
        raise argparse.ArgumentTypeError(f"expected folds as integers >= 1 separated by commas, e.g. 1,5; got {text!r}")
    return folds


def positive(kind: type) -> Callable[[str], float | int]:
    """A number of ``kind`` (int or float) above 0."""
    def parse(text: str) -> float | int:
        try:
            v = kind(text)
        except ValueError:
            v = 0
        if not v > 0:
            raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
        return v
    return parse

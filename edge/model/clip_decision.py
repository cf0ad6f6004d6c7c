"""The clip decision: a clip's window scores -> one label, by the model's pooling and per-label thresholds.

A model's contract says how it decides a whole clip (``extra.clip_pooling``,
``thresholds``); the recipe tunes both on inner-validation clips and
``edge eval-clips`` applies them. Pure numpy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edge.core.errors import EdgeError

BACKGROUND = "background"
POOLINGS = ("max", "meanmax", "mean")


def pool_scores(window_scores: np.ndarray, pooling: str) -> np.ndarray:
    """``(n_windows, n_labels)`` -> ``(n_labels,)``; ``meanmax`` is the average of mean and max."""
    if window_scores.shape[0] == 0:
        return np.zeros(window_scores.shape[1], np.float32)
    if pooling == "max":
        return window_scores.max(axis=0)
    if pooling == "mean":
        return window_scores.mean(axis=0)
    if pooling == "meanmax":
        return 0.5 * (window_scores.max(axis=0) + window_scores.mean(axis=0))
    raise EdgeError(f"unknown clip pooling {pooling!r} (expected one of {', '.join(POOLINGS)})")


def decide(pooled: np.ndarray, labels: Sequence[str], thresholds: np.ndarray) -> list[str]:
    """Per clip: the top label if its score >= its threshold, else ``background``.

    ``pooled`` is ``(n_clips, n_labels)``; ``thresholds`` is ``(n_labels,)``.
    """
    if pooled.shape[0] == 0:
        return []
    top = pooled.argmax(axis=1)
    ok = pooled[np.arange(pooled.shape[0]), top] >= thresholds[top]
    return [labels[t] if k else BACKGROUND for t, k in zip(top, ok, strict=True)]

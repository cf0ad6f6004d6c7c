"""Clip-level classification metrics (pure numpy, no scikit-learn).

One clip has one true label and one predicted label (strings). ``background``
is an ordinary label here: a clip predicted ``background`` is a clip on which
the model reported nothing.

``clip_metrics`` returns a JSON-ready dict::

    {
      "n_clips": int,
      "accuracy": float,                 # fraction of clips predicted exactly
      "macro_f1": float,                 # mean F1 over labels with support > 0
      "macro_f1_labels": [str, ...],     # the labels that mean is taken over
      "per_class": {label: {"precision", "recall", "f1", "support", "predicted"}},
      "labels": [str, ...],              # row/column order of the matrix
      "confusion": [[int, ...], ...],    # rows = true label, columns = predicted
    }

Precision of a label never predicted is 0 (and so is its F1), as in
scikit-learn's ``zero_division=0``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


def confusion_matrix(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    """Counts ``(n_labels, n_labels)`` int64; rows are true labels, columns predicted ones.

    Raises ValueError naming the first label that is not in ``labels``.
    """
    if len(y_true) != len(y_pred):
        raise ValueError(f"metrics: {len(y_true)} true labels but {len(y_pred)} predictions")
    index = {lab: i for i, lab in enumerate(labels)}
    if len(index) != len(labels):
        raise ValueError("metrics: duplicate entries in labels")
    for name, seq in (("true", y_true), ("predicted", y_pred)):
        unknown = sorted(set(seq) - index.keys())
        if unknown:
            raise ValueError(f"metrics: {name} label {unknown[0]!r} is not in labels {list(labels)}")
    t = np.fromiter((index[v] for v in y_true), dtype=np.int64, count=len(y_true))
    p = np.fromiter((index[v] for v in y_pred), dtype=np.int64, count=len(y_pred))
    cm = np.zeros((len(labels), len(labels)), dtype=np.int64)
    np.add.at(cm, (t, p), 1)
    return cm


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.zeros_like(num, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def clip_metrics(y_true: list[str], y_pred: list[str], labels: list[str]) -> dict:
    """Accuracy, macro-F1 over the labels present in ``y_true``, per-class P/R/F1, confusion matrix."""
    labels = list(labels)
    cm = confusion_matrix(y_true, y_pred, labels)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    precision = _safe_div(tp, predicted.astype(np.float64))
    recall = _safe_div(tp, support.astype(np.float64))
    f1 = _safe_div(2.0 * precision * recall, precision + recall)
    present = [lab for lab, s in zip(labels, support, strict=True) if s > 0]
    n = int(cm.sum())
    per_class = {
        lab: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
            "predicted": int(predicted[i]),
        }
        for i, lab in enumerate(labels)
    }
    return {
        "n_clips": n,
        "accuracy": float(tp.sum() / n) if n else 0.0,
        "macro_f1": macro_f1(per_class, present),
        "macro_f1_labels": present,
        "per_class": per_class,
        "labels": labels,
        "confusion": cm.tolist(),
    }


def macro_f1(per_class: dict, labels: Iterable[str]) -> float:
    """Mean F1 of ``per_class[label]`` over ``labels`` (0.0 for an empty list).

    E.g. macro-F1 without background:
    ``macro_f1(m["per_class"], [x for x in m["macro_f1_labels"] if x != "background"])``.
    """
    vals = [per_class[lab]["f1"] for lab in labels]
    return float(np.mean(vals)) if vals else 0.0


def metrics(truth: Sequence[str], pred: Sequence[str], classes: Sequence[str] | None = None) -> dict:
    """:func:`clip_metrics` as ``edge eval-clips`` reports it: accuracy, macro-F1 over the classes present in
    ``truth`` (``macro_f1_classes``), per-class P/R/F1/support, confusion ``{labels, matrix}``.

    ``classes`` fixes the row/column order of the confusion matrix (default: sorted
    union of truth and predictions, ``background`` last).
    """
    if classes is None:
        cl = sorted((set(truth) | set(pred)) - {"background"})
        classes = cl + (["background"] if "background" in set(truth) | set(pred) else [])
    m = clip_metrics(list(truth), list(pred), list(classes))
    return {"n_clips": m["n_clips"], "accuracy": m["accuracy"], "macro_f1": m["macro_f1"],
            "macro_f1_classes": sorted(set(truth)), "per_class": m["per_class"],
            "confusion": {"labels": list(classes), "matrix": m["confusion"]}}

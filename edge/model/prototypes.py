"""Embedding prototypes a model file may carry: per label, centroids of its training windows' embeddings.

The model's second output is a window embedding ``(embedding_dim,)``. The
recipe (:mod:`edge.train.prototypes`) fits, per label, up to ``k`` spherical
k-means centroids of the embeddings of that label's training windows and a
cosine threshold calibrated on held-out clips; the contract stores them as
int8 unit vectors (x127, base64). The familiarity check
(:mod:`edge.detect.familiarity`) compares an onset's embeddings with them.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge.core.errors import EdgeError


def unit_rows(x: np.ndarray) -> np.ndarray:
    """``x`` ``(n, dim)`` with every row scaled to length 1 (cosine similarity is then a dot product)."""
    return x / (np.linalg.norm(x, axis=-1, keepdims=True) + 1e-12)


def int8_base64(v: np.ndarray) -> str:
    """Unit vectors ``v`` ``(n, dim)`` as int8 (x127, rounded) bytes in base64: how model files store them."""
    q = np.clip(np.round(np.asarray(v) * 127.0), -127, 127).astype(np.int8)
    return base64.b64encode(q.tobytes()).decode("ascii")


def from_int8_base64(text: str) -> np.ndarray:
    """The flat int8 values ``(n * dim,)`` of :func:`int8_base64` text (ValueError if it is not base64)."""
    return np.frombuffer(base64.b64decode(text, validate=True), dtype=np.int8)


class PrototypeError(EdgeError, ValueError):
    """The model's ``prototypes`` entry is malformed."""


@dataclass(frozen=True)
class Prototypes:
    """Per-label unit prototype vectors ``(k_label, dim)`` and the calibrated threshold."""

    vectors: dict[str, np.ndarray]
    min_similarity: float
    dim: int

    def per_window(self, label: str, embeddings: np.ndarray) -> np.ndarray:
        """``(n,)``: each embedding's best cosine similarity to ``label``'s prototypes (1.0 without any)."""
        e = np.atleast_2d(np.asarray(embeddings, dtype=np.float32))
        p = self.vectors.get(label)
        if p is None:
            return np.ones(e.shape[0], np.float32)
        return np.max(unit_rows(e) @ p.T, axis=1) if e.shape[0] else np.zeros(0, np.float32)

    def to_dict(self, **info: Any) -> dict[str, Any]:
        """JSON-ready form for the model contract: int8 vectors (x127), base64, per label."""
        enc = {}
        for lab, v in sorted(self.vectors.items()):
            enc[lab] = {"k": int(v.shape[0]), "int8": int8_base64(v)}
        return {"dim": self.dim, "min_similarity": round(float(self.min_similarity), 4), "labels": enc, **info}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], labels: Sequence[str]) -> Prototypes:
        try:
            dim = int(d["dim"])
            thr = float(d["min_similarity"])
            vectors = {}
            for lab, entry in dict(d["labels"]).items():
                if lab not in labels:
                    raise PrototypeError(f"prototypes for {lab!r}, which is not a model label")
                k = int(entry["k"])
                raw = from_int8_base64(entry["int8"])
                if k < 1 or raw.size != k * dim:
                    raise PrototypeError(f"prototypes of {lab!r}: expected {k} x {dim} values, got {raw.size}")
                vectors[str(lab)] = unit_rows(raw.reshape(k, dim).astype(np.float32))
        except PrototypeError:
            raise
        except (KeyError, TypeError, ValueError) as e:
            raise PrototypeError(f"malformed prototypes entry ({type(e).__name__}: {e})") from None
        if not -1.0 <= thr <= 1.0 or dim < 1:
            raise PrototypeError(f"prototypes: min_similarity must be in [-1, 1] and dim >= 1, got {thr}, {dim}")
        return cls(vectors, thr, dim)

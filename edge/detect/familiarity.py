"""Familiarity check: an onset passes only if the sound resembles that label's training sounds.

The classifier's head says *which* of its labels a window looks most like; it
has no way to say "none of them, this is something I have never heard". The
model's window embedding (the second output, ``(embedding_dim,)``) does carry
that: a sound unlike anything in training lands away from every label's
training windows. The model file carries, per label, up to ``k`` prototypes
(spherical k-means centroids of the embeddings of that label's training
windows, unit vectors stored as int8) and a similarity threshold calibrated on
held-out clips of the training folds (``min_similarity``: a quantile of their
best cosine similarity, see :mod:`edge.train.prototypes`).

:class:`FamiliarityGate` sits between the detector and the sinks: it remembers
the embeddings of the last few hops and drops an onset whose best cosine
similarity to its label's prototypes stays below the threshold (and the
matching offset). Labels without prototypes are never held back: the recipe
fits none for :data:`NEVER_HELD` (smoke and CO alarms, glass breaking, a baby
crying), where a missed event costs more than a false alarm.

With ``detector.home_background`` (a file from ``edge learn-background``, see
:mod:`edge.detect.home_background`) an onset is also dropped when each of its hops is
closer to a window of this home's ordinary background than to every prototype
of its label: the fridge, television or traffic that the model keeps mistaking
for a cough or a knock.
"""

from __future__ import annotations

import base64
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from edge.service.config import DetectorConfig
from edge.detect.detector import ALARM_LABELS, SAFETY_LABELS
from edge.core.events import Event

if TYPE_CHECKING:
    from edge.detect.home_background import HomeBackground

#: Never held back, so the recipe fits no prototypes for them: a missed event costs more
#: than a false alarm. The smoke/CO beep rhythm has its own check (:mod:`edge.detect.alarm_pattern`).
NEVER_HELD = ALARM_LABELS | frozenset(SAFETY_LABELS)


def unit_rows(x: np.ndarray) -> np.ndarray:
    """``x`` ``(n, dim)`` with every row scaled to length 1 (cosine similarity is then a dot product)."""
    return x / (np.linalg.norm(x, axis=-1, keepdims=True) + 1e-12)


def familiarity_threshold(det: DetectorConfig, protos: Prototypes) -> float:
    """``detector.min_similarity``, else the model's calibrated value; 0 turns the check off."""
    v = det.min_similarity
    v = protos.min_similarity if v is None else float(v)
    return v if v > 0 else -2.0  # cosine similarity is >= -1: nothing is held back


class PrototypeError(ValueError):
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
            q = np.clip(np.round(v * 127.0), -127, 127).astype(np.int8)
            enc[lab] = {"k": int(q.shape[0]), "int8": base64.b64encode(q.tobytes()).decode("ascii")}
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
                raw = np.frombuffer(base64.b64decode(entry["int8"], validate=True), dtype=np.int8)
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


class FamiliarityGate:
    """Drops onsets (and their offsets) of sounds unlike their label's training sounds.

    Args:
        prototypes: the model's :class:`Prototypes`.
        min_similarity: cosine threshold; ``<= -1`` lets everything through.
        lookback: hops of embeddings kept; an onset is judged on the best of them
            (the detector's persistence window, the hops that raised it).
    """

    def __init__(self, prototypes: Prototypes, min_similarity: float, lookback: int) -> None:
        self.prototypes = prototypes
        self.min_similarity = float(min_similarity)
        self._recent: deque[np.ndarray] = deque(maxlen=max(1, int(lookback)))
        self._held: set[str] = set()
        self.held_back = 0  # onsets dropped so far
        #: this home's learnt background (:mod:`edge.detect.home_background`): an onset closer to it than
        #: to its label's prototypes is dropped too
        self.home: HomeBackground | None = None
        self.held_as_home = 0  # of which: sounded like the home's background
        self.last_similarity: dict[str, float] = {}

    @classmethod
    def for_detector(cls, prototypes: Prototypes, det: DetectorConfig) -> FamiliarityGate:
        """A gate for the detector settings ``det`` (resolved: ``persistence_n`` set), as the listener uses it."""
        gate = cls(prototypes, 0.0, 1)
        gate.configure(det)
        return gate

    def configure(self, det: DetectorConfig) -> None:
        """Threshold and look-back from (resolved) detector settings, e.g. after a SIGHUP reload."""
        self.min_similarity = familiarity_threshold(det, self.prototypes)
        self._recent = deque(self._recent, maxlen=max(1, int(det.persistence_n or 1)))

    def push(self, embedding: np.ndarray) -> None:
        """The window embedding ``(dim,)`` of the hop just scored."""
        self._recent.append(np.asarray(embedding, dtype=np.float32).reshape(-1))

    def filter(self, events: Sequence[Event]) -> list[Event]:
        out = []
        for ev in events:
            if ev.state == "on":
                if ev.label not in self.prototypes.vectors or not self._recent:
                    out.append(ev)
                    continue
                recent = np.stack(self._recent)
                per_hop = self.prototypes.per_window(ev.label, recent)
                sim = float(per_hop.max())
                self.last_similarity[ev.label] = sim
                unfamiliar = sim < self.min_similarity
                # Like the home's background in *every* hop: a real event over that background has
                # at least one hop where it sounds more like its label (measured: docs/evaluation.md).
                homelike = (not unfamiliar and self.home is not None
                            and bool(np.all(self.home.per_window(recent) > per_hop)))
                if unfamiliar or homelike:
                    self._held.add(ev.id)
                    self.held_back += 1
                    self.held_as_home += int(homelike)
                    continue
                out.append(ev)
            elif ev.id in self._held:
                self._held.discard(ev.id)
            else:
                out.append(ev)
        return out

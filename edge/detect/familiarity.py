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
fits none for :data:`edge.detect.labels.NEVER_HELD` (smoke and CO alarms, glass breaking, a baby
crying), where a missed event costs more than a false alarm.

With ``detector.home_background`` (a file from ``edge learn-background``, see
:mod:`edge.detect.home_background`) an onset is also dropped when each of its hops is
closer to a window of this home's ordinary background than to every prototype
of its label: the fridge, television or traffic that the model keeps mistaking
for a cough or a knock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import numpy as np

from edge.core.events import Event
from edge.detect.home_background import HomeBackground
from edge.detect.settings import DetectorSettings
from edge.model.prototypes import Prototypes


def familiarity_threshold(det: DetectorSettings) -> float:
    """The cosine threshold of the gate: ``min_similarity`` (resolved: the config's, else the model's);
    0 turns the check off."""
    v = float(det.min_similarity)
    return v if v > 0 else -2.0  # cosine similarity is >= -1: nothing is held back


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
    def for_detector(cls, prototypes: Prototypes, det: DetectorSettings) -> FamiliarityGate:
        """A gate for the detector settings ``det``, as the event chain uses it."""
        gate = cls(prototypes, 0.0, 1)
        gate.configure(det)
        return gate

    def configure(self, det: DetectorSettings) -> None:
        """Threshold and look-back from the detector settings, e.g. after a SIGHUP reload."""
        self.min_similarity = familiarity_threshold(det)
        self._recent = deque(self._recent, maxlen=max(1, int(det.persistence_n)))

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

"""Learning this home's background from a running listener (``edge learn-background`` and the HA button).

:class:`BackgroundSession` is fed the listener's hop embeddings (``Listener.on_embedding``)
and its onsets, and turns them into a :class:`~edge.detect.home_background.HomeBackground`
file. It never sees audio, and it does not stop the listener: the offline command
stops it when enough has been learnt, the service (:mod:`edge.service.remote`) keeps
listening and only switches the new file on. Everything runs on the processing thread.

Light to import (numpy and the detector load when a session starts): ``edge --help`` imports it.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from edge.core.events import Event
    from edge.detect.home_background import HomeBackground


def default_path() -> Path:
    """``<state dir>/home-background.npz`` (see :func:`edge.core.paths.state_dir`)."""
    from edge.core.paths import state_dir

    return state_dir() / "home-background.npz"


class BackgroundSession:
    """Collects ``seconds`` of hop embeddings (each hop is ``hop_s`` s of audio) into a background.

    Args:
        contract: the running model's contract (embedding size, fingerprint).
        seconds: audio time to learn from (s); at least one hop.
        hop_s: seconds of audio per hop.
        before: windows learnt in an earlier sitting, merged into the result (``--add``).
    """

    def __init__(self, contract: Any, seconds: float, hop_s: float, before: HomeBackground | None = None) -> None:
        from edge.detect.home_background import Learner

        self.contract = contract
        self.seconds = float(seconds)
        self.hop_s = float(hop_s)
        self.want_hops = max(1, int(round(self.seconds / self.hop_s)))
        self.before = before
        self.learner = Learner(contract.embedding_dim)
        self.onsets: Counter[str] = Counter()  # onsets raised while learning, per label

    @property
    def done(self) -> bool:
        return self.learner.hops >= self.want_hops

    @property
    def hops(self) -> int:
        return self.learner.hops

    @property
    def progress(self) -> float:
        """Fraction of the hops wanted that were learnt, 0-1."""
        return min(1.0, self.learner.hops / self.want_hops)

    def push(self, embedding: np.ndarray) -> bool:
        """One hop's window embedding ``(embedding_dim,)``; True once enough were learnt (later ones are ignored)."""
        if not self.done:
            self.learner.push(embedding)
        return self.done

    def note(self, ev: Event) -> None:
        """An event the listener raised while learning (onsets are counted)."""
        if ev.state == "on" and not self.done:
            self.onsets[ev.label] += 1

    def result(self) -> HomeBackground:
        """What was learnt (merged with ``before``); at least one hop must have been pushed."""
        from edge.detect.home_background import fingerprint

        bank = self.learner.result(fingerprint(self.contract), self.learner.hops * self.hop_s, dict(self.onsets))
        return self.before.merged(bank) if self.before is not None else bank

    def held_and_kept(self) -> tuple[str, str]:
        """The onsets raised while learning, as text: (labels held back from now on, safety labels never held)."""
        from edge.detect.labels import NEVER_HELD

        held = ", ".join(f"{k} {n}" for k, n in self.onsets.most_common() if k not in NEVER_HELD) or "none"
        kept = ", ".join(f"{k} {n}" for k, n in self.onsets.most_common() if k in NEVER_HELD)
        return held, kept

"""The event chain: scores of each hop -> detector -> familiarity gate -> alarm-pattern gate -> events.

One object, built once from the model contract and the resolved
:class:`~edge.detect.settings.DetectorSettings`, used the same way by the
listener (:mod:`edge.service.listener`), the tuner's replay of recorded scores
(:mod:`edge.evaluate.tune`) and the tests, so what is tuned is what runs:

* :meth:`EventChain.push_frames` - new log-mel frames, for the alarm-pattern
  gate (only with ``alarm_confirm``);
* :meth:`EventChain.push_hop` - one hop's scores ``(n_labels,)`` and window
  embedding ``(embedding_dim,)``: the onsets and offsets it completes;
* :meth:`EventChain.flush` - end every open event (end of stream, shutdown, a lost microphone);
* :meth:`EventChain.reconfigure` - new settings (SIGHUP), except the alarm gate's.

Times are seconds from stream start. ``now`` (default: the hop's end) is the
stream time the alarm gate measures its fallback against; the listener passes
the end of the newest log-mel frame.
"""

from __future__ import annotations

import logging

import numpy as np

from edge.core.events import Event
from edge.detect.alarm_pattern import LABEL_PATTERNS, AlarmGate
from edge.detect.detector import Detector
from edge.detect.familiarity import FamiliarityGate
from edge.detect.home_background import HomeBackground
from edge.detect.settings import DetectorSettings
from edge.model.contract import ModelContract

log = logging.getLogger("edge.pipeline")


class EventChain:
    """Detector and gates for one stream.

    Args:
        contract: the model's contract (labels, front end, prototypes).
        settings: resolved detector settings (:func:`edge.detect.settings.for_model`).
        home: this home's learnt background for the familiarity gate, or None.
        start_wall: Unix time (s) of stream sample 0, for the events' wall-clock times.
        familiarity: apply the familiarity gate when the model carries prototypes (a replay of scores
            recorded without their embeddings cannot).
    """

    def __init__(self, contract: ModelContract, settings: DetectorSettings, home: HomeBackground | None = None,
                 start_wall: float = 0.0, familiarity: bool = True) -> None:
        c = contract
        self.detector = Detector(c.labels, settings, model_version=c.model_version, start_wall=start_wall)
        # Familiarity check: onsets of sounds unlike their label's training sounds are dropped.
        protos = c.familiarity() if familiarity else None
        self.familiar = None if protos is None else FamiliarityGate.for_detector(protos, self.detector.cfg)
        if self.familiar is not None:
            self.familiar.home = home
        # Optional DSP confirmation of the smoke (T3) / CO (T4) beep rhythm.
        self.alarm_gate: AlarmGate | None = None
        if settings.alarm_confirm:
            self.alarm_gate = AlarmGate(c.frontend, [x for x in c.labels if x in LABEL_PATTERNS],
                                        settings.alarm_fallback_s)

    @property
    def settings(self) -> DetectorSettings:
        return self.detector.cfg

    @property
    def held_back(self) -> int:
        """Onsets the familiarity gate has dropped so far."""
        return self.familiar.held_back if self.familiar is not None else 0

    def push_frames(self, frames: np.ndarray, t_end: float) -> None:
        """New log-mel frames ``(n, n_mels)`` ending at ``t_end`` s, for the alarm-pattern gate."""
        if self.alarm_gate is not None:
            self.alarm_gate.push_frames(frames, t_end)

    def push_hop(self, scores: np.ndarray, embedding: np.ndarray | None, start: float, end: float,
                 level_dbfs: float, now: float | None = None) -> list[Event]:
        """One hop: ``scores`` ``(n_labels,)``, its window ``embedding`` ``(embedding_dim,)`` (None: not
        recorded), the newest block's ``start``/``end`` (s) and the hop's level (dBFS).

        Returns the onsets and offsets that pass every gate.
        """
        if self.familiar is not None and embedding is not None:
            self.familiar.push(embedding)
        return self._through(self.detector.update(scores, start, end, level_dbfs), end if now is None else now)

    def flush(self, now: float) -> list[Event]:
        """End every open event; returns the offsets (and onsets the alarm gate still held) that pass."""
        return self._through(self.detector.flush(), now, final=True)

    def reconfigure(self, settings: DetectorSettings, home: HomeBackground | None, now: float) -> list[Event]:
        """New settings and home background; offsets of events whose label was disabled come back.

        The alarm gate keeps its settings (it may hold an onset it has not confirmed yet).
        Raises ``ValueError`` (labels unknown to the model) and changes nothing then.
        """
        events = self.detector.reconfigure(settings)
        if self.familiar is not None:
            self.familiar.configure(self.detector.cfg)
            self.familiar.home = home
        return self._through(events, now)

    def _through(self, events: list[Event], now: float, final: bool = False) -> list[Event]:
        fam = self.familiar
        if fam is not None and events:
            held, as_home = fam.held_back, fam.held_as_home
            events = fam.filter(events)
            if fam.held_as_home > as_home:
                log.debug("onset held back: sounds like this home's learnt background (detector.home_background)")
            elif fam.held_back > held:
                log.debug("onset held back: unlike its label's training sounds (similarity %s < %.3f)",
                          fam.last_similarity, fam.min_similarity)
        if self.alarm_gate is not None:
            events = self.alarm_gate.filter(events, now, final=final)
        return events

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

Taught sounds (:mod:`edge.detect.taught`, ``edge enroll``) run through a second
:class:`~edge.detect.detector.Detector` whose labels are their names and whose
scores are the hop embedding's similarity to their prototypes
(:func:`taught_settings`); their events join the model's. With a home
background, a taught onset is held back when each of its hops is closer to one
of this home's ordinary windows than to the taught sound's prototypes.

Times are seconds from stream start. ``now`` (default: the hop's end) is the
stream time the alarm gate measures its fallback against; the listener passes
the end of the newest log-mel frame.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import deque

import numpy as np

from edge.core.events import Event
from edge.detect.alarm_pattern import LABEL_PATTERNS, AlarmGate
from edge.detect.detector import Detector
from edge.detect.familiarity import FamiliarityGate
from edge.detect.home_background import HomeBackground
from edge.detect.settings import DetectorSettings
from edge.detect.taught import TaughtScorer, TaughtSounds
from edge.model.contract import ModelContract

log = logging.getLogger("edge.pipeline")

#: Detector settings of taught sounds (cosine-similarity scores), in model blocks where they are times:
#: a similarity falls less than a probability when the sound leaves, so the hysteresis is small; the
#: examples' windows hold at least half of the sound, so the score is up while about half a window
#: holds it (onset late by about half a window less a block, offset late by half a window).
TAUGHT_HYSTERESIS = 0.05
TAUGHT_PERSISTENCE = (2, 3)
TAUGHT_RELEASE_S = 0.5


def taught_settings(base: DetectorSettings, sounds: TaughtSounds, contract: ModelContract) -> DetectorSettings:
    """The settings of the taught sounds' detector: their thresholds, :data:`TAUGHT_HYSTERESIS` ...,
    the rest (alarm keys off) from ``base``."""
    half = contract.window_blocks // 2
    bs = contract.block_seconds
    k, n = TAUGHT_PERSISTENCE
    return dataclasses.replace(
        base, labels=sounds.names, thresholds={x: float(s.threshold) for x, s in sounds.sounds.items()},
        hysteresis=TAUGHT_HYSTERESIS, persistence_k=k, persistence_n=n, min_duration_s=0.0,
        release_s=TAUGHT_RELEASE_S, offset_lag_s=half * bs, onset_lead_s=max(half - 1, 0) * bs,
        onset_backtrack_s=0.0, releases={}, min_durations={}, alarm_confirm=False, min_similarity=0.0)


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
                 start_wall: float = 0.0, familiarity: bool = True, taught: TaughtSounds | None = None) -> None:
        c = contract
        self.contract = c
        self.detector = Detector(c.labels, settings, model_version=c.model_version, start_wall=start_wall)
        self.home = home
        self.taught: TaughtScorer | None = None
        self.taught_detector: Detector | None = None
        self._taught_recent: deque[np.ndarray] = deque(maxlen=TAUGHT_PERSISTENCE[1])
        self._taught_held: set[str] = set()
        self._taught_key: str | None = None  # what the taught detector was built from
        self.taught_held_back = 0
        self.last_taught_scores = np.zeros(0, np.float32)  # the newest hop's, (n_taught,)
        self._set_taught(taught, settings)
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

    def _set_taught(self, taught: TaughtSounds | None, settings: DetectorSettings) -> list[Event]:
        """Use ``taught`` (None or empty: none); returns the offsets of taught events that end because of it."""
        key = taught.to_json() if taught is not None and taught.sounds else None
        if key is not None and key == self._taught_key and self.taught_detector is not None:
            # the same sounds (a reload for another reason): open events go on, new base settings apply
            assert taught is not None
            return self.taught_detector.reconfigure(taught_settings(settings, taught, self.contract))
        self._taught_key = key
        out = self.taught_detector.flush() if self.taught_detector is not None else []
        self.last_taught_scores = np.zeros(0, np.float32)
        if taught is None or not taught.sounds:
            self.taught, self.taught_detector = None, None
            return out
        self.taught = TaughtScorer(taught)
        self.taught_detector = Detector(taught.names, taught_settings(settings, taught, self.contract),
                                        model_version=self.contract.model_version,
                                        start_wall=self.detector.start_wall)
        return out

    @property
    def taught_names(self) -> tuple[str, ...]:
        return self.taught.names if self.taught is not None else ()

    def active_labels(self) -> list[str]:
        """Labels (model and taught) with an open event."""
        extra = self.taught_detector.active_labels() if self.taught_detector is not None else []
        return self.detector.active_labels() + extra

    @property
    def settings(self) -> DetectorSettings:
        return self.detector.cfg

    @property
    def held_back(self) -> int:
        """Onsets the familiarity gate has dropped so far."""
        return (self.familiar.held_back if self.familiar is not None else 0) + self.taught_held_back

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
        out = self._through(self.detector.update(scores, start, end, level_dbfs), end if now is None else now)
        if self.taught is not None and self.taught_detector is not None and embedding is not None:
            self.taught_detector.start_wall = self.detector.start_wall
            self._taught_recent.append(np.asarray(embedding, np.float32).reshape(-1))
            self.last_taught_scores = self.taught.scores(embedding)
            ev = self.taught_detector.update(self.last_taught_scores, start, end, level_dbfs)
            out += self._taught_gate(ev)
        return out

    def _taught_gate(self, events: list[Event]) -> list[Event]:
        """Taught onsets (and their offsets) held back when each of the hops that raised them (the last
        ``persistence_k``) sounds more like this home's learnt background than like the taught sound."""
        if not events or self.taught is None or (self.home is None and not self._taught_held):
            return events
        out = []
        for ev in events:
            if ev.state == "on" and self.home is not None and self._taught_recent and self.taught_detector is not None:
                k = self.taught_detector.cfg.persistence_k  # the hops that raised it
                recent = np.stack(list(self._taught_recent)[-k:])
                own = self.taught.similarities(recent)[:, self.taught.names.index(ev.label)]
                if bool(np.all(self.home.per_window(recent) > own)):
                    self._taught_held.add(ev.id)
                    self.taught_held_back += 1
                    continue
            elif ev.id in self._taught_held:
                self._taught_held.discard(ev.id)
                continue
            out.append(ev)
        return out

    def flush(self, now: float) -> list[Event]:
        """End every open event; returns the offsets (and onsets the alarm gate still held) that pass."""
        out = self._through(self.detector.flush(), now, final=True)
        if self.taught_detector is not None:
            out += self._taught_gate(self.taught_detector.flush())
        return out

    def reconfigure(self, settings: DetectorSettings, home: HomeBackground | None, now: float,
                    taught: TaughtSounds | None = None) -> list[Event]:
        """New settings, home background and taught sounds; offsets of events whose label was disabled (or
        whose taught sound was removed or taught again) come back.

        The alarm gate keeps its settings (it may hold an onset it has not confirmed yet).
        Raises ``ValueError`` (labels unknown to the model) and changes nothing then.
        """
        events = self.detector.reconfigure(settings)
        if self.familiar is not None:
            self.familiar.configure(self.detector.cfg)
            self.familiar.home = home
        self.home = home
        out = self._through(events, now)
        return out + self._taught_gate(self._set_taught(taught, settings))

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

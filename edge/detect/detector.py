"""Event detector: per-label scores over time -> onset/offset events. Pure, no I/O.

For each enabled label, every hop:

* **idle**: remember whether the score reached the on-threshold in each of the
  last ``persistence_n`` hops; when ``persistence_k`` of them did, the event
  starts. Its onset is the start of the newest block of the first
  above-threshold hop among those, i.e. the audio that made the score rise.
* **active**: a score at or above the off-threshold (on - hysteresis, but never
  below half the on-threshold, so that an event can always end) keeps it
  alive; the offset is the end of the last such hop minus ``offset_lag_s`` (the
  model's look-back; never less than one block after the onset). When the score has stayed
  below the off-threshold for ``release_s`` seconds, the event ends.
* ``smoke_alarm`` / ``co_alarm`` use ``max(release_s, alarm_release_s)``: an
  alarm's beep pattern pauses (T4: ~5 s between bursts), and one sounding
  alarm should be one event, not an on/off pair per burst. ``releases[label]``
  overrides both for one label (the model's tuned values, then the config's):
  a dog barking or a cat meowing with pauses is one episode, one event.
* ``onset_lead_s``: the reported onset is that much before the start of the
  newest block of the first above-threshold hop (never before 0). The score
  only rises once a window holds enough of a sound, so that block starts on
  average a fraction of a second after the sound did; the lead (tuned on
  held-out scenes) corrects this bias. It moves the timestamp, not the moment
  the onset is emitted.
* ``onset_backtrack_s`` > 0: before the lead, the onset moves back over the
  hops just before the first above-threshold one, as long as their score was
  at least ``backtrack_floor`` x the on-threshold, at most that many seconds
  (only hops after this label's previous event count). A sound that grows, or starts
  quietly under the room's noise, is reported from where its score began to
  rise, not from where it passed the threshold (double-threshold onsets, as in
  DCASE post-processing). Like the lead, it moves the timestamp only.
* ``min_duration_s`` > 0 (per label: ``min_durations``): the onset is emitted only once the event has lasted
  that long; an event that ends sooner is dropped without a trace.
* :meth:`Detector.flush` ends every open event (end of stream, shutdown).

Times are seconds from stream start; wall clock = ``start_wall + seconds``.
The settings (thresholds, releases, ...) come resolved, see :mod:`edge.detect.settings`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from edge.core.events import Event, new_event_id
from edge.detect.settings import DetectorConfig, DetectorSettings, resolve


@dataclass
class _Track:
    on: float
    off: float
    recent: deque[tuple[bool, float, float, float]] = field(default_factory=deque)
    #: how many entries of ``recent`` are above the on-threshold: while none is, a hop below it changes
    #: nothing and is not even appended (most label-hops of a day are such hops)
    n_above: int = 0
    #: block start of the newest hop not in this track's backtracking history (the history is the hops
    #: since the last event ended or the stream was flushed: :attr:`Detector._history` after this)
    since: float = float("-inf")
    rise: float = 0.0  # start of the newest block of the first above-threshold hop (min duration counts from here)
    active: bool = False
    emitted: bool = False
    event_id: str = ""
    onset: float = 0.0
    last_above_end: float = 0.0
    last_end: float = 0.0
    block_s: float = 0.0
    release_s: float = 0.5
    min_duration_s: float = 0.0
    peak: float = 0.0
    total: float = 0.0
    count: int = 0
    level: float = -120.0


class Detector:
    """Turns per-hop score vectors into :class:`~edge.core.events.Event` onsets and offsets.

    Args:
        labels: all model labels, in score order.
        cfg: the resolved :class:`DetectorSettings` (the listener and the tuner pass these), or a raw
            :class:`DetectorConfig`, resolved here against ``model_thresholds`` and ``model_defaults``.
        model_thresholds: the model contract's per-label clip thresholds (raw ``cfg`` only).
        model_version: copied into every event.
        start_wall: Unix time (s) of stream sample 0.
        model_defaults: the model's tuned settings for any ``None`` of a raw ``cfg``
            (see :func:`edge.detect.settings.resolve`).
    """

    def __init__(self, labels: Sequence[str], cfg: DetectorSettings | DetectorConfig,
                 model_thresholds: Mapping[str, float] | None = None, model_version: str = "unversioned",
                 start_wall: float = 0.0, model_defaults: Mapping[str, object] | None = None) -> None:
        self.labels = tuple(labels)
        self.model_defaults = dict(model_defaults or {})
        self.model_thresholds = dict(model_thresholds or {})
        self.model_version = model_version
        self.start_wall = start_wall
        self._tracks: dict[str, _Track] = {}
        #: (block start, scores) of the last ``onset_backtrack_s`` of hops, shared by every label's backtracking
        self._history: deque[tuple[float, list[float]]] = deque()
        self._last_start = float("-inf")  # block start of the newest hop
        self.reconfigure(cfg)

    def threshold(self, label: str) -> float:
        """The on-threshold of ``label``."""
        return float(self.cfg.thresholds[label])

    def reconfigure(self, cfg: DetectorSettings | DetectorConfig) -> list[Event]:
        """Apply new settings (e.g. on SIGHUP). Open events of labels no longer enabled end now.

        Returns the offsets of those events. Raises ``ValueError`` (unknown label, k > n) and changes
        nothing then.
        """
        if isinstance(cfg, DetectorConfig):
            cfg = resolve(cfg, self.labels, self.model_thresholds, self.model_defaults)
        unknown = [x for x in cfg.labels if x not in self.labels]
        if unknown:
            raise ValueError(f"unknown label {unknown[0]!r} (model labels: {', '.join(self.labels)})")
        self.cfg = cfg
        enabled = cfg.labels
        self._pos = {x: self.labels.index(x) for x in enabled}
        out: list[Event] = []
        old = self._tracks
        self._tracks = {}
        for label, tr in old.items():
            if label not in enabled and tr.active:
                ev = self._end(label, tr)
                if ev is not None:
                    out.append(ev)
        for label in enabled:
            on, off = cfg.thresholds[label], cfg.off_threshold(label)
            tr = old.get(label) or _Track(on=on, off=off, since=self._last_start)
            tr.on, tr.off = on, off
            tr.release_s = cfg.release_for(label)
            tr.min_duration_s = cfg.min_duration_for(label)
            tr.recent = deque(tr.recent, maxlen=cfg.persistence_n)
            tr.n_above = sum(1 for r in tr.recent if r[0])
            self._tracks[label] = tr
        return out

    @property
    def enabled_labels(self) -> tuple[str, ...]:
        return tuple(self._tracks)

    def active_labels(self) -> list[str]:
        return [lab for lab, tr in self._tracks.items() if tr.active]

    def update(self, scores: np.ndarray, block_start: float, block_end: float, level_dbfs: float) -> list[Event]:
        """Feed one hop.

        Args:
            scores: ``(n_labels,)`` probabilities in model label order.
            block_start: seconds from stream start at which the newest block of the hop begins.
            block_end: seconds at which the newest block ends.
            level_dbfs: level of the hop's audio.
        Returns the onsets and offsets this hop completes, in label order.
        """
        cfg = self.cfg
        out: list[Event] = []
        values = scores.tolist()
        back_s = float(cfg.onset_backtrack_s)
        self._last_start = block_start
        if back_s > 0:
            hist = self._history
            hist.append((block_start, values))
            while hist[0][0] < block_start - back_s - 1e-9:
                hist.popleft()
        for label, tr in self._tracks.items():
            s = values[self._pos[label]]
            tr.last_end = block_end
            tr.block_s = block_end - block_start
            if not tr.active:
                above = s >= tr.on
                if above or tr.n_above:
                    recent = tr.recent
                    if len(recent) == recent.maxlen and recent[0][0]:
                        tr.n_above -= 1  # the oldest, above, drops out of the window
                    recent.append((above, block_start, s, level_dbfs))
                    tr.n_above += above
                # Fewer than k of the last n were above before this hop (else the track would be
                # active), so only a hop above the threshold can complete k of n.
                if above and tr.n_above >= cfg.persistence_k:
                    first = next(i for i, r in enumerate(tr.recent) if r[0])
                    run = list(tr.recent)[first:]
                    tr.active, tr.emitted = True, False
                    tr.event_id = new_event_id()
                    tr.onset = tr.rise = run[0][1]
                    if back_s > 0:
                        tr.onset = self._backtrack(label, tr, back_s)
                    tr.since = block_start
                    tr.last_above_end = block_end
                    tr.peak = max(r[2] for r in run)
                    tr.total = sum(r[2] for r in run)
                    tr.count = len(run)
                    tr.level = max(r[3] for r in run)
                    tr.recent.clear()
                    tr.n_above = 0
                    ev = self._maybe_onset(label, tr)
                    if ev is not None:
                        out.append(ev)
                continue
            tr.since = block_start  # hops while an event is open are not part of the next one's rise
            if s >= tr.off:
                tr.last_above_end = block_end
                tr.peak = max(tr.peak, s)
                tr.total += s
                tr.count += 1
                tr.level = max(tr.level, level_dbfs)
                ev = self._maybe_onset(label, tr)
                if ev is not None:
                    out.append(ev)
            elif block_end - tr.last_above_end >= tr.release_s - 1e-9:
                ev = self._end(label, tr)
                if ev is not None:
                    out.append(ev)
        return out

    def flush(self) -> list[Event]:
        """End every open event (end of stream or shutdown); returns their offsets."""
        out = []
        for label, tr in self._tracks.items():
            if tr.active:
                ev = self._end(label, tr)
                if ev is not None:
                    out.append(ev)
            tr.recent.clear()
            tr.n_above = 0
            tr.since = self._last_start
        return out

    def _event(self, label: str, tr: _Track, state: str) -> Event:
        # The score stays up while the sound is anywhere in the model's window,
        # so the last active hop ends up to one window after the sound did. A
        # sound still scoring at the newest hop (end of stream) ends there.
        # The sound filled at least the block that raised the score.
        lag = float(self.cfg.offset_lag_s) if tr.last_above_end < tr.last_end else 0.0
        off = max(tr.onset + tr.block_s, tr.last_above_end - lag) if state == "off" else None
        onset = max(0.0, tr.onset - float(self.cfg.onset_lead_s))
        return Event(
            id=tr.event_id, label=label, state=state, onset=onset, offset=off,
            onset_time=self.start_wall + onset,
            offset_time=None if off is None else self.start_wall + off,
            score=tr.peak, mean_score=tr.total / max(tr.count, 1), level_dbfs=tr.level,
            model_version=self.model_version,
        )

    def _backtrack(self, label: str, tr: _Track, back_s: float) -> float:
        """Start of the earliest hop of the contiguous run, ending just before the first above-threshold
        hop, whose scores were all >= ``backtrack_floor`` x on-threshold (within ``back_s``, and after
        this label's previous event)."""
        floor = float(self.cfg.backtrack_floor) * tr.on
        pos = self._pos[label]
        onset = tr.rise
        for start, values in reversed(self._history):
            if start <= tr.since:
                break
            if start >= tr.rise:
                continue
            if values[pos] < floor or start < tr.rise - back_s - 1e-9:
                break
            onset = start
        return onset

    def _maybe_onset(self, label: str, tr: _Track) -> Event | None:
        if tr.emitted or tr.last_above_end - tr.rise < tr.min_duration_s - 1e-9:
            return None
        tr.emitted = True
        return self._event(label, tr, "on")

    def _end(self, label: str, tr: _Track) -> Event | None:
        tr.active = False
        if not tr.emitted:
            return None  # never reached min_duration_s: dropped
        tr.emitted = False
        return self._event(label, tr, "off")

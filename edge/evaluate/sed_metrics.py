"""Sound-event-detection metrics with the definitions of ``sed_eval`` (DCASE).

Pure numpy/Python, so the evaluation runs without ``sed_eval`` installed; the
tests check every count against ``sed_eval`` 0.2.1 when it is importable.

Events are ``(onset_s, offset_s, label)`` tuples, seconds from the start of
their file. Every metric takes ``{file_id: [events]}`` for the reference and
the system output; files are evaluated one by one and the counts summed, as
``sed_eval`` does.

Event-based (``sed_eval.sound_event.EventBasedMetrics``, matching "optimal"):
an estimated event matches a reference event of the same label when
``|onset_est - onset_ref| <= t_collar`` and
``|offset_est - offset_ref| <= max(t_collar, percentage_of_length * (offset_ref - onset_ref))``;
the pairing is a maximum bipartite matching. ``F = 2 Ntp / (Nref + Nsys)``.
Substitutions (an unmatched estimate that meets the time conditions of an
unmatched reference of another label) only enter the error rate.

Segment-based (``SegmentBasedMetrics``): activity rolls with
``time_resolution`` (s) segments (a segment is active when an event overlaps
it: ``floor(onset / res) .. ceil(offset / res)``), padded or cut to the
evaluated length; per segment ``S = min(Nref, Nsys) - Ntp``,
``D = max(0, Nref - Nsys)``, ``I = max(0, Nsys - Nref)``, ``ER = (S + D + I) / Nref``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, SupportsIndex

import numpy as np

EPS = float(np.spacing(1))  # sed_eval divides by (N + eps)

Event = tuple[float, float, str]
EventsByFile = Mapping[str, Sequence[Event]]


def _prf(ntp: float, nsys: float, nref: float) -> tuple[float, float, float]:
    """Precision, recall, F exactly as sed_eval computes them (eps in the denominators)."""
    p = float(ntp) / (float(nsys) + EPS)
    r = float(ntp) / (float(nref) + EPS)
    f = 2.0 * p * r / (p + r + EPS)
    return p, r, f


def _max_matching(adj: Sequence[Sequence[SupportsIndex]], n_right: int) -> dict[int, int]:
    """Maximum-cardinality bipartite matching (augmenting paths), ``left -> right``."""
    match_r = [-1] * n_right

    def augment(u: int, seen: list[bool]) -> bool:
        for v in adj[u]:
            if not seen[v]:
                seen[v] = True
                if match_r[v] < 0 or augment(match_r[v], seen):
                    match_r[v] = u
                    return True
        return False

    for u in range(len(adj)):
        if adj[u]:
            augment(u, [False] * n_right)
    return {u: v for v, u in enumerate(match_r) if u >= 0}


def _time_hits(ref: Sequence[Event], est: Sequence[Event], t_collar: float, pct: float,
               evaluate_onset: bool, evaluate_offset: bool) -> np.ndarray:
    """``(n_ref, n_est)`` bool: the time conditions hold (labels ignored)."""
    if not ref or not est:
        return np.zeros((len(ref), len(est)), dtype=bool)
    r = np.array([(e[0], e[1]) for e in ref], dtype=np.float64)
    s = np.array([(e[0], e[1]) for e in est], dtype=np.float64)
    ok = np.ones((len(ref), len(est)), dtype=bool)
    if evaluate_onset:
        ok &= np.abs(r[:, None, 0] - s[None, :, 0]) <= t_collar
    if evaluate_offset:
        tol = np.maximum(t_collar, pct * (r[:, 1] - r[:, 0]))
        ok &= np.abs(r[:, None, 1] - s[None, :, 1]) <= tol[:, None]
    return ok


@dataclass
class Counts:
    """Event or segment counts of one class (or overall)."""

    Nref: int = 0
    Nsys: int = 0
    Ntp: int = 0
    Nfp: int = 0
    Nfn: int = 0
    Nsubs: int = 0

    def add(self, other: Counts) -> None:
        for k in ("Nref", "Nsys", "Ntp", "Nfp", "Nfn", "Nsubs"):
            setattr(self, k, getattr(self, k) + getattr(other, k))

    @property
    def precision(self) -> float:
        return _prf(self.Ntp, self.Nsys, self.Nref)[0]

    @property
    def recall(self) -> float:
        return _prf(self.Ntp, self.Nsys, self.Nref)[1]

    @property
    def f_measure(self) -> float:
        return _prf(self.Ntp, self.Nsys, self.Nref)[2]

    def to_dict(self) -> dict[str, Any]:
        return {
            "Nref": self.Nref, "Nsys": self.Nsys, "Ntp": self.Ntp, "Nfp": self.Nfp, "Nfn": self.Nfn,
            "precision": round(self.precision, 4), "recall": round(self.recall, 4),
            "f_measure": round(self.f_measure, 4),
        }


@dataclass
class EventResult:
    """Event-based metrics.

    Attributes:
        overall: micro-averaged counts over all classes and files.
        class_wise: per-label counts.
        matches: ``(file_id, ref_event, est_event)`` for every true positive
            (the pairs of the per-class optimal matching), e.g. for onset latency.
    """

    t_collar: float
    percentage_of_length: float
    overall: Counts = field(default_factory=Counts)
    class_wise: dict[str, Counts] = field(default_factory=dict)
    matches: list[tuple[str, Event, Event]] = field(default_factory=list)

    @property
    def f_measure(self) -> float:
        return self.overall.f_measure

    @property
    def error_rate(self) -> float:
        o = self.overall
        return (o.Nsubs + (o.Nfn) + (o.Nfp)) / (o.Nref + EPS)

    def class_wise_average_f(self, only_present: bool = True) -> float:
        """Mean per-class F; with ``only_present`` over labels seen in reference or output."""
        vals = [c.f_measure for c in self.class_wise.values() if not only_present or (c.Nref or c.Nsys)]
        return float(np.mean(vals)) if vals else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "t_collar_s": self.t_collar,
            "percentage_of_length": self.percentage_of_length,
            "f_measure": round(self.f_measure, 4),
            "precision": round(self.overall.precision, 4),
            "recall": round(self.overall.recall, 4),
            "error_rate": round(self.error_rate, 4),
            "class_wise_average_f": round(self.class_wise_average_f(), 4),
            "overall": self.overall.to_dict() | {"Nsubs": self.overall.Nsubs},
            "class_wise": {k: v.to_dict() for k, v in sorted(self.class_wise.items())},
        }


def _labels_of(ref: EventsByFile, est: EventsByFile, labels: Iterable[str] | None) -> list[str]:
    if labels is not None:
        return list(labels)
    found = {e[2] for evs in ref.values() for e in evs} | {e[2] for evs in est.values() for e in evs}
    return sorted(found)


def event_based(ref: EventsByFile, est: EventsByFile, labels: Iterable[str] | None = None,
                t_collar: float = 0.2, percentage_of_length: float = 0.5,
                evaluate_onset: bool = True, evaluate_offset: bool = True) -> EventResult:
    """Event-based metrics (sed_eval definitions), summed over the files of ``ref``.

    Args:
        ref: reference events per file; files only in ``est`` are evaluated too
            (all their events are false positives).
        est: system events per file.
        labels: labels to report per class (default: every label seen).
        t_collar: onset collar and minimum offset collar, seconds.
        percentage_of_length: offset collar as a fraction of the reference event length.
    """
    labs = _labels_of(ref, est, labels)
    res = EventResult(t_collar=t_collar, percentage_of_length=percentage_of_length,
                      class_wise={lab: Counts() for lab in labs})
    for fid in list(ref) + [f for f in est if f not in ref]:
        r_all = list(ref.get(fid, ()))
        s_all = list(est.get(fid, ()))
        hits = _time_hits(r_all, s_all, t_collar, percentage_of_length, evaluate_onset, evaluate_offset)
        r_lab = np.array([e[2] for e in r_all], dtype=object)
        s_lab = np.array([e[2] for e in s_all], dtype=object)
        ref_ok = np.zeros(len(r_all), dtype=bool)
        sys_ok = np.zeros(len(s_all), dtype=bool)
        file_tp = 0
        # Matching never pairs different labels, so one matching per label is the
        # same maximum matching sed_eval builds over the whole file.
        for lab in sorted(set(r_lab.tolist()) | set(s_lab.tolist())):
            ri = np.flatnonzero(r_lab == lab)
            si = np.flatnonzero(s_lab == lab)
            sub = hits[np.ix_(ri, si)] if len(ri) and len(si) else np.zeros((len(ri), len(si)), bool)
            adj = [list(np.flatnonzero(row)) for row in sub]
            m = _max_matching(adj, len(si))
            for a, b in m.items():
                ref_ok[ri[a]] = True
                sys_ok[si[b]] = True
                res.matches.append((fid, r_all[ri[a]], s_all[si[b]]))
            c = res.class_wise.setdefault(lab, Counts())
            c.Nref += len(ri)
            c.Nsys += len(si)
            c.Ntp += len(m)
            c.Nfp += len(si) - len(m)
            c.Nfn += len(ri) - len(m)
            file_tp += len(m)
        # Substitutions: sed_eval's greedy pass over the leftovers, labels ignored.
        nsubs = 0
        counted = np.zeros(len(s_all), dtype=bool)
        left_s = np.flatnonzero(~sys_ok)
        for j in np.flatnonzero(~ref_ok):
            for i in left_s:
                if not counted[i] and hits[j, i]:
                    counted[i] = True
                    nsubs += 1
                    break
        o = res.overall
        o.Nref += len(r_all)
        o.Nsys += len(s_all)
        o.Ntp += file_tp
        o.Nsubs += nsubs
        o.Nfp += len(s_all) - file_tp - nsubs
        o.Nfn += len(r_all) - file_tp - nsubs
    return res


@dataclass
class SegmentResult:
    """Segment-based metrics (counts in segments x classes)."""

    time_resolution: float
    overall: Counts = field(default_factory=Counts)
    S: int = 0
    D: int = 0
    I: int = 0  # noqa: E741 - sed_eval's name for insertions
    class_wise: dict[str, Counts] = field(default_factory=dict)
    evaluated_seconds: float = 0.0

    @property
    def f_measure(self) -> float:
        return self.overall.f_measure

    @property
    def error_rate(self) -> float:
        return (self.S + self.D + self.I) / (self.overall.Nref + EPS)

    def to_dict(self) -> dict[str, Any]:
        return {
            "time_resolution_s": self.time_resolution,
            "f_measure": round(self.f_measure, 4),
            "precision": round(self.overall.precision, 4),
            "recall": round(self.overall.recall, 4),
            "error_rate": round(self.error_rate, 4),
            "substitutions": self.S, "deletions": self.D, "insertions": self.I,
            "overall": self.overall.to_dict(),
            "class_wise": {k: v.to_dict() for k, v in sorted(self.class_wise.items())},
            "evaluated_seconds": round(self.evaluated_seconds, 3),
        }


def event_roll(events: Sequence[Event], labels: Sequence[str], time_resolution: float,
               n_segments: int) -> np.ndarray:
    """Binary activity ``(n_segments, n_labels)``; events of other labels are ignored."""
    roll = np.zeros((n_segments, len(labels)), dtype=bool)
    index = {lab: k for k, lab in enumerate(labels)}
    for on, off, lab in events:
        if lab in index:
            a = int(math.floor(on / time_resolution))
            b = int(math.ceil(off / time_resolution))
            roll[max(a, 0):max(b, 0), index[lab]] = True
    return roll


def segment_based(ref: EventsByFile, est: EventsByFile, labels: Iterable[str] | None = None,
                  time_resolution: float = 1.0, lengths: Mapping[str, float] | None = None) -> SegmentResult:
    """Segment-based metrics (sed_eval definitions).

    Args:
        lengths: evaluated length per file in seconds (e.g. the scene duration);
            missing = the largest offset in reference or output, as sed_eval.
    """
    labs = _labels_of(ref, est, labels)
    res = SegmentResult(time_resolution=time_resolution, class_wise={lab: Counts() for lab in labs})
    for fid in list(ref) + [f for f in est if f not in ref]:
        r = list(ref.get(fid, ()))
        s = list(est.get(fid, ()))
        if lengths is not None and fid in lengths:
            length_s = float(lengths[fid])
        else:
            length_s = max([e[1] for e in r + s], default=0.0)
        n = int(math.ceil(length_s / time_resolution))
        res.evaluated_seconds += length_s
        a = event_roll(r, labs, time_resolution, n)
        b = event_roll(s, labs, time_resolution, n)
        tp = (a & b).sum(axis=1)
        nref = a.sum(axis=1)
        nsys = b.sum(axis=1)
        o = res.overall
        o.Ntp += int(tp.sum())
        o.Nref += int(nref.sum())
        o.Nsys += int(nsys.sum())
        o.Nfp += int((b & ~a).sum())
        o.Nfn += int((a & ~b).sum())
        res.S += int((np.minimum(nref, nsys) - tp).sum())
        res.D += int(np.maximum(0, nref - nsys).sum())
        res.I += int(np.maximum(0, nsys - nref).sum())
        for k, lab in enumerate(labs):
            c = res.class_wise[lab]
            c.Ntp += int((a[:, k] & b[:, k]).sum())
            c.Nref += int(a[:, k].sum())
            c.Nsys += int(b[:, k].sum())
            c.Nfp += int((b[:, k] & ~a[:, k]).sum())
            c.Nfn += int((a[:, k] & ~b[:, k]).sum())
    return res


def onset_latencies(result: EventResult) -> dict[str, list[float]]:
    """Detected onset - true onset (s) of every matched event, per label."""
    out: dict[str, list[float]] = {}
    for _fid, r, s in result.matches:
        out.setdefault(r[2], []).append(float(s[0] - r[0]))
    return out


def latency_summary(values: Sequence[float]) -> dict[str, float | int | None]:
    """``{"n", "median_s", "p95_s"}`` of onset latencies in seconds (``None`` when empty)."""
    if not len(values):
        return {"n": 0, "median_s": None, "p95_s": None}
    v = np.asarray(values, dtype=np.float64)
    return {"n": int(v.size), "median_s": round(float(np.median(v)), 4),
            "p95_s": round(float(np.percentile(v, 95)), 4)}


def read_annotations(path: Any) -> list[Event]:
    """Read a DCASE-style annotation file: ``onset<TAB>offset<TAB>label`` per line (seconds).

    Raises ``ValueError`` naming the file and line on a malformed line.
    """
    events: list[Event] = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split("\t")
            if len(parts) < 3:
                raise ValueError(f"{path}:{n}: expected 'onset<TAB>offset<TAB>label', got {line!r}")
            try:
                on, off = float(parts[0]), float(parts[1])
            except ValueError:
                raise ValueError(f"{path}:{n}: onset/offset are not numbers: {line!r}") from None
            if off < on:
                raise ValueError(f"{path}:{n}: offset {off} before onset {on}")
            events.append((on, off, parts[2]))
    return events


def write_annotations(path: Any, events: Iterable[Event]) -> None:
    """Write events as ``onset<TAB>offset<TAB>label`` lines (seconds, 3 decimals)."""
    with open(path, "w", encoding="utf-8") as fh:
        for on, off, lab in events:
            fh.write(f"{on:.3f}\t{off:.3f}\t{lab}\n")

"""Streaming evaluation: the real listener over every scene, scored with sed_eval definitions.

Every file goes through :func:`edge.service.listener.detect_file` -- the code path of
``edge run --source FILE`` (file source, ring buffer, resampler, incremental
log-mel, classifier, :class:`edge.detect.detector.Detector`), as fast as possible.
Nothing here re-implements detection: the per-hop scores are recorded through
the pipeline's ``on_scores`` hook only so that :mod:`edge.evaluate.tune` can
replay them through the same ``Detector`` class with other settings.

Reported (times in seconds):

* event-based F1 at 200 ms and 500 ms onset collars (offset collar
  ``max(collar, 0.5 * reference length)``), per-class F1 at 500 ms, error rate;
* segment-based F1 and error rate at 1 s;
* recall of the safety classes (smoke_alarm, glass_breaking, baby_cry);
* false alarms per hour: every detected event on the background-only recordings;
* onset latency per class for events matched with a 1 s onset-only collar:
  ``onset_error`` = detected onset - true onset (where the event is placed), and
  ``decision`` = time the onset was *emitted* (end of the hop that fired) - true onset.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.detect.labels import SAFETY_LABELS
from edge.evaluate import sed_metrics as sm
from edge.evaluate.soundscape import load_scene_set
from edge.publish.sinks import BaseSink

LATENCY_COLLAR_S = 1.0


@dataclass
class SceneRun:
    """Output of the listener on one file."""

    name: str
    duration_s: float
    background_only: bool
    reference: list[sm.Event]
    detected: list[sm.Event]
    emitted_at: list[float]  # stream time (s) at which each detected onset was emitted
    hops: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))  # (n, 2) block start/end (s)
    scores: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))  # (n, n_labels)
    wall_s: float = 0.0
    wav: str = ""
    #: (n, embedding_dim) window embedding per recorded hop (for the familiarity check in replay)
    embeddings: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))


class _EmitTimes(BaseSink):
    """Sink recording when each onset was emitted (the end of the hop being processed)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.at: dict[str, float] = {}

    def event(self, ev: Any) -> None:
        if ev.state == "on":
            self.at[ev.id] = self.clock()


def run_file(path: str | Path, cfg: Any, clf: Any, record_scores: bool = True,
             embeddings: list[np.ndarray] | None = None) -> tuple[list[Any], dict[str, float], np.ndarray,
                                                                  np.ndarray]:
    """One file through :func:`edge.service.listener.detect_file`.

    Returns ``(off_events, emitted_at_by_id, hops (n, 2), scores (n, n_labels))``; with
    ``record_scores``, the hop embeddings are appended to ``embeddings`` if given.
    """
    from edge.service.listener import detect_file

    hops: list[tuple[float, float]] = []
    rows: list[np.ndarray] = []
    last_end = [0.0]

    def on_scores(start: float, end: float, scores: np.ndarray) -> None:
        last_end[0] = end
        if record_scores:
            hops.append((start, end))
            rows.append(np.array(scores, dtype=np.float32, copy=True))

    def on_embedding(e: np.ndarray) -> None:
        assert embeddings is not None  # only hooked up when ``keep``
        embeddings.append(np.array(e, dtype=np.float32))

    emit = _EmitTimes(lambda: last_end[0])
    keep = record_scores and embeddings is not None
    events = detect_file(path, cfg, clf, sinks=[emit], on_scores=on_scores,
                         on_embedding=on_embedding if keep else None)
    n_lab = len(clf.labels)
    h = np.array(hops, dtype=np.float64).reshape(-1, 2)
    s = np.stack(rows) if rows else np.zeros((0, n_lab), np.float32)
    return events, emit.at, h, s


def run_scene_set(scene_dir: str | Path, cfg: Any, clf: Any, record_scores: bool = True,
                  progress: Callable[[str], None] | None = None) -> tuple[dict[str, Any], list[SceneRun]]:
    """Run the listener over every scene and background-only file of a generated set."""
    meta = load_scene_set(scene_dir)
    runs: list[SceneRun] = []
    for sc in meta["scenes"]:
        t0 = time.perf_counter()
        embs: list[np.ndarray] = []
        evs, at, hops, scores = run_file(sc["wav"], cfg, clf, record_scores, embs)
        det = [(float(e.onset), float(e.offset), e.label) for e in evs]
        emitted = [float(at.get(e.id, e.onset)) for e in evs]
        emb = np.stack(embs) if embs else np.zeros((0, clf.contract.embedding_dim), np.float32)
        runs.append(SceneRun(sc["name"], float(sc["duration_s"]), bool(sc["background_only"]),
                             sm.read_annotations(sc["annotation"]), det, emitted, hops, scores,
                             time.perf_counter() - t0, sc["wav"], emb))
        if progress:
            progress(sc["name"])
    return meta, runs


def compute_metrics(runs: Sequence[SceneRun], labels: Sequence[str] | None = None,
                    detected: Mapping[str, Sequence[sm.Event]] | None = None,
                    emitted: Mapping[str, Sequence[float]] | None = None) -> dict[str, Any]:
    """All stream metrics from runs (``detected``/``emitted`` override the runs' own output, for tuning)."""
    scenes = [r for r in runs if not r.background_only]
    bgs = [r for r in runs if r.background_only]
    ref = {r.name: r.reference for r in scenes}
    est = {r.name: list(detected[r.name]) if detected else r.detected for r in scenes}
    lengths = {r.name: r.duration_s for r in scenes}
    labs = list(labels) if labels is not None else sorted({e[2] for v in ref.values() for e in v})
    # Detections of labels that never occur in the scenes still count as false positives overall.
    ev200 = sm.event_based(ref, est, labs, t_collar=0.2)
    ev500 = sm.event_based(ref, est, labs, t_collar=0.5)
    seg = sm.segment_based(ref, est, labs, time_resolution=1.0, lengths=lengths)
    present = sorted({e[2] for v in ref.values() for e in v})
    per_class = {lab: ev500.class_wise[lab].to_dict() for lab in present if lab in ev500.class_wise}

    # Latency: onset-only matching with a wide collar, so the figure is not clipped by the F1 collar.
    lat = sm.event_based(ref, est, labs, t_collar=LATENCY_COLLAR_S, evaluate_offset=False)
    emit_by_event: dict[tuple[str, sm.Event], float] = {}
    for r in scenes:
        dets = est[r.name]
        times = list(emitted[r.name]) if emitted else r.emitted_at
        for e, t in zip(dets, times, strict=False):
            emit_by_event[(r.name, e)] = t
    onset_err: dict[str, list[float]] = {}
    decision: dict[str, list[float]] = {}
    for fid, rv, sv in lat.matches:
        onset_err.setdefault(rv[2], []).append(sv[0] - rv[0])
        if (fid, sv) in emit_by_event:
            decision.setdefault(rv[2], []).append(emit_by_event[(fid, sv)] - rv[0])
    all_err = [v for vs in onset_err.values() for v in vs]
    all_dec = [v for vs in decision.values() for v in vs]

    bg_hours = sum(r.duration_s for r in bgs) / 3600.0
    fa_dets = {r.name: list(detected[r.name]) if detected else r.detected for r in bgs}
    fa_count = sum(len(v) for v in fa_dets.values())
    fa_by_label: dict[str, int] = {}
    for v in fa_dets.values():
        for e in v:
            fa_by_label[e[2]] = fa_by_label.get(e[2], 0) + 1

    by_snr: dict[str, float] = {}
    snr_of = {r.name: r.name.rsplit("_snr", 1)[-1] for r in scenes if "_snr" in r.name}
    for snr in sorted(set(snr_of.values())):
        names = [n for n, s in snr_of.items() if s == snr]
        by_snr[f"{int(snr)} dB"] = round(sm.event_based({n: ref[n] for n in names}, {n: est[n] for n in names},
                                                        labs, t_collar=0.5).f_measure, 4)
    return {
        "scenes": len(scenes),
        "scene_hours": round(sum(lengths.values()) / 3600.0, 4),
        "reference_events": ev500.overall.Nref,
        "detected_events": ev500.overall.Nsys,
        "event_counts_200ms": ev200.overall.to_dict(),
        "event_counts_500ms": ev500.overall.to_dict(),
        "event_f1_200ms": round(ev200.f_measure, 4),
        "event_f1_500ms": round(ev500.f_measure, 4),
        "event_er_500ms": round(ev500.error_rate, 4),
        "event_precision_500ms": round(ev500.overall.precision, 4),
        "event_recall_500ms": round(ev500.overall.recall, 4),
        # sed_eval's class-wise average, over labels in the reference *or* the output: a label
        # that only raises false alarms counts (F = 0), as in event_based_500ms below
        "class_average_f1_500ms": round(ev500.class_wise_average_f(), 4),
        "segment_f1_1s": round(seg.f_measure, 4),
        "segment_er_1s": round(seg.error_rate, 4),
        "safety_recall_500ms": {lab: (per_class[lab]["recall"] if lab in per_class else None)
                                for lab in SAFETY_LABELS},
        "per_class_500ms": per_class,
        "event_f1_500ms_by_snr": by_snr,
        "background_hours": round(bg_hours, 4),
        "false_alarms": fa_count,
        "false_alarms_per_hour": round(fa_count / bg_hours, 3) if bg_hours > 0 else None,
        "false_alarms_by_label": dict(sorted(fa_by_label.items())),
        # Television speech is speech: the speech label's detections on background audio are counted apart.
        "false_alarms_per_hour_without_speech": (round((fa_count - fa_by_label.get("speech", 0)) / bg_hours, 3)
                                                 if bg_hours > 0 else None),
        "speech_detections_per_hour": round(fa_by_label.get("speech", 0) / bg_hours, 3) if bg_hours > 0 else None,
        "latency_collar_s": LATENCY_COLLAR_S,
        "onset_error_s": {"all": sm.latency_summary(all_err)}
        | {lab: sm.latency_summary(v) for lab, v in sorted(onset_err.items())},
        "decision_latency_s": {"all": sm.latency_summary(all_dec)}
        | {lab: sm.latency_summary(v) for lab, v in sorted(decision.items())},
        "event_based_200ms": ev200.to_dict(),
        "event_based_500ms": ev500.to_dict(),
        "segment_based_1s": seg.to_dict(),
    }


def format_report(m: Mapping[str, Any], header: str = "") -> str:
    """Human-readable summary of :func:`compute_metrics`."""
    lines = [header] if header else []
    fah = m["false_alarms_per_hour"]
    lines += [
        f"scenes: {m['scenes']} ({m['scene_hours'] * 60:.1f} min), reference events: {m['reference_events']}, "
        f"detected: {m['detected_events']}",
        f"event F1: {m['event_f1_200ms']:.3f} @200 ms, {m['event_f1_500ms']:.3f} @500 ms "
        f"(P {m['event_precision_500ms']:.3f}, R {m['event_recall_500ms']:.3f}, ER {m['event_er_500ms']:.3f})",
        f"segment (1 s): F1 {m['segment_f1_1s']:.3f}, ER {m['segment_er_1s']:.3f}",
        "event F1 @500 ms by SNR: " + ", ".join(f"{k}: {v:.3f}" for k, v in m["event_f1_500ms_by_snr"].items()),
        f"false alarms: {m['false_alarms']} in {m['background_hours']:.2f} h of background = "
        + (f"{fah:.2f}/h" if fah is not None else "n/a (no background-only audio)")
        + (f"  {m['false_alarms_by_label']}" if m["false_alarms_by_label"] else ""),
        "",
        f"{'label':<16} {'ref':>4} {'det':>4} {'tp':>4} {'P':>6} {'R':>6} {'F1':>6} "
        f"{'onset med':>9} {'p95':>6} {'decide med':>10} {'p95':>6}",
    ]
    for lab, c in m["per_class_500ms"].items():
        oe = m["onset_error_s"].get(lab, {})
        de = m["decision_latency_s"].get(lab, {})

        def f(x: float | None) -> str:
            return "-" if x is None else f"{x:+.2f}"

        lines.append(
            f"{lab:<16} {c['Nref']:>4} {c['Nsys']:>4} {c['Ntp']:>4} {c['precision']:>6.3f} {c['recall']:>6.3f} "
            f"{c['f_measure']:>6.3f} {f(oe.get('median_s')):>9} {f(oe.get('p95_s')):>6} "
            f"{f(de.get('median_s')):>10} {f(de.get('p95_s')):>6}"
        )
    oa, da = m["onset_error_s"]["all"], m["decision_latency_s"]["all"]
    lines.append(f"latency (all, onset-only match within {m['latency_collar_s']} s): onset error median "
                 f"{oa['median_s']} s, p95 {oa['p95_s']} s; decision median {da['median_s']} s, p95 {da['p95_s']} s")
    return "\n".join(lines)


def plot_timeline(run: SceneRun, labels: Sequence[str], png: str | Path) -> Path:
    """PNG of one scene: reference events vs detections per label, plus score curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    used = sorted({e[2] for e in run.reference} | {e[2] for e in run.detected})
    fig, axes = plt.subplots(2, 1, figsize=(14, 2 + 0.45 * max(len(used), 1)), sharex=True,
                             gridspec_kw={"height_ratios": [max(len(used), 1), 3]})
    ax = axes[0]
    for k, lab in enumerate(used):
        for on, off, lb in run.reference:
            if lb == lab:
                ax.broken_barh([(on, off - on)], (k + 0.05, 0.4), color="tab:green")
        for on, off, lb in run.detected:
            if lb == lab:
                ax.broken_barh([(on, off - on)], (k + 0.5, 0.4), color="tab:red")
    ax.set_yticks([k + 0.5 for k in range(len(used))], used)
    ax.set_title(f"{run.name}: truth (green, lower) vs detections (red, upper)")
    ax.set_xlim(0, run.duration_s)
    ax2 = axes[1]
    if run.scores.size:
        t = run.hops[:, 1]
        for lab in used:
            if lab in labels:
                ax2.plot(t, run.scores[:, list(labels).index(lab)], label=lab, lw=0.8)
        ax2.legend(fontsize=6, ncol=4, loc="upper right")
    ax2.set_ylim(0, 1)
    ax2.set_xlabel("seconds")
    ax2.set_ylabel("score")
    fig.tight_layout()
    out = Path(png)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def save_json(obj: Any, path: str | Path) -> None:
    Path(path).write_text(json.dumps(obj, indent=1), encoding="utf-8")


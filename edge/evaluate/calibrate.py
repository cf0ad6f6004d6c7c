"""Operating points by a false-alarm budget: per label, the lowest on-threshold whose false alarms stay in budget.

A family leaves the listener on only if it rarely cries wolf. So each label's
on-threshold is not tuned for F1 on scenes; it is set from how often the real
streaming chain (:class:`edge.detect.chain.EventChain`, with the familiarity
gate) fires on *background-only* audio the model never trained on:

* ``edge eval-stream --make`` turns held-out clips (the recipe's inner
  validation clips of the training folds: ``<name>-inner-val.csv``, every
  corpus) into background-only recordings (each clip at most 4 times) and
  scenes; the listener runs over them once, recording every hop's scores and
  embeddings (:func:`edge.evaluate.stream.run_scene_set`);
* per label, the recorded scores are replayed through the chain at every
  threshold of :data:`THRESHOLD_GRID`: false alarms ``N(t)`` on the
  background hours ``H``, detections and recall on the scenes;
* for a budget of ``b`` false alarms per hour per label, the candidates are
  the thresholds ``t`` with ``N(t) / H <= b`` *and* the tail of ``N`` (a
  straight line of ``log N(t)`` against ``logit(t)`` through its last points)
  below ``b``: the calibration audio holds a few hours, a budget of one false
  alarm a day is far below what they can count, so the tail estimate decides
  there. Of those, the one that finds most scene events wins (on a tie the
  higher: fewer false alarms); a lower threshold does not always recall more,
  since events merge. With no candidate, the tail line is solved for ``b``;
* safety labels (:data:`edge.detect.labels.SAFETY_LABELS`) may cost
  :data:`SAFETY_BUDGET_FACTOR` times the budget, and reaching
  ``safety_recall`` of their scene events at the fewest false alarms comes
  first where some threshold within that budget does; where none does, the
  threshold that keeps ``safety_recall`` at the fewest false alarms is taken
  over budget (recall is their constraint), and the budget rule only where no
  threshold keeps it;
* persistence and release (:data:`PERSISTENCE_OPTIONS` x
  :data:`RELEASE_OPTIONS`) are chosen by event F1 on the calibration scenes at
  their own budget thresholds; only the event timing (onset lead,
  backtracking, offset lag) is tuned for F1 afterwards, and the thresholds are
  calibrated again with it;
* a label whose sounds last (:data:`MIN_DURATIONS`: not the alarms, not the
  safety sounds) may also get a minimum duration: each candidate gets its own
  budget threshold, and the one that keeps most of the scene events wins (a
  short noise that resembles a cry for a moment no longer fires, so a lower
  threshold fits the budget).

:data:`BUDGETS_PER_DAY` gives the three budgets of ``detector.sensitivity``;
the result goes into the model's contract (``detector.operating_points`` and,
measured, ``detector.false_alarms_per_hour``), where the listener reads it
(:func:`edge.detect.settings.resolve`). Numbers tuned here are checked on a
test fold the calibration never saw (``docs/evaluation.md``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.detect.labels import ALARM_LABELS, SAFETY_LABELS
from edge.detect.settings import SENSITIVITIES, DetectorConfig, DetectorSettings
from edge.evaluate.stream import SceneRun
from edge.evaluate.tune import LabelCounts, counts_by_label, settings_for
from edge.model.contract import ModelContract

#: False alarms per label per day allowed at each ``detector.sensitivity``.
BUDGETS_PER_DAY: dict[str, float] = {"low": 0.1, "medium": 1.0, "high": 5.0}
#: Candidate on-thresholds, dense near 1 where strict budgets land.
THRESHOLD_GRID = (0.2, 0.3, 0.4, 0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.88, 0.9, 0.92, 0.94, 0.95, 0.96, 0.97,
                  0.98, 0.985, 0.99, 0.995)
#: Points of the false-alarm curve the tail line is fitted through (the highest thresholds with N >= 1).
TAIL_POINTS = 4
#: A threshold is never set above this: a label must always be able to fire.
MAX_THRESHOLD = 0.995
#: Minimum durations (s) tried for labels that may wait; alarms and safety sounds never wait.
MIN_DURATIONS = (0.0, 0.5, 1.0)
#: A safety label may cost this many times a label's share of the budget: a missed smoke alarm or a
#: crying baby unheard costs more than a false alarm.
SAFETY_BUDGET_FACTOR = 5.0
#: Persistence (k of n hops) and release (s) searched, each with its own operating points; the one with
#: the best event F1 on the calibration scenes at the medium points wins (its false alarms are in budget).
PERSISTENCE_OPTIONS = ((1, 1), (2, 3), (3, 4))
RELEASE_OPTIONS = (0.5, 2.0)
#: The coarser grid used to compare those options.
COARSE_GRID = (0.5, 0.7, 0.8, 0.88, 0.92, 0.95, 0.97, 0.985, 0.995)


@dataclass(frozen=True)
class CurvePoint:
    """One label at one threshold: false alarms on the background hours, and scene counts (500 ms collar)."""

    threshold: float
    false_alarms: int
    tp: int
    detected: int
    reference: int

    @property
    def recall(self) -> float | None:
        return self.tp / self.reference if self.reference else None


@dataclass
class LabelCalibration:
    label: str
    curves: dict[float, list[CurvePoint]]  # per minimum duration tried
    thresholds: dict[str, float] = field(default_factory=dict)  # per sensitivity
    min_durations: dict[str, float] = field(default_factory=dict)  # per sensitivity
    false_alarms_per_hour: dict[str, float] = field(default_factory=dict)  # measured at that threshold
    estimated_per_hour: dict[str, float] = field(default_factory=dict)  # tail estimate at that threshold
    recall: dict[str, float | None] = field(default_factory=dict)
    limited_by: dict[str, str] = field(default_factory=dict)  # "budget", "tail", "safety recall[ over budget]", "grid"


def logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def tail_line(curve: Sequence[CurvePoint], hours: float) -> tuple[float, float] | None:
    """``(slope, intercept)`` of ``log(N(t) / H)`` against ``logit(t)`` through the last :data:`TAIL_POINTS`
    thresholds with at least one false alarm; None when fewer than two such points or a rising line."""
    pts = [(logit(c.threshold), math.log(c.false_alarms / hours)) for c in curve if c.false_alarms > 0]
    pts = pts[-TAIL_POINTS:]
    if len(pts) < 2 or hours <= 0:
        return None
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    if sxx <= 0:
        return None
    slope = sum((x - mx) * (y - my) for x, y in pts) / sxx
    if slope >= 0:
        return None
    return slope, my - slope * mx


def tail_rate(line: tuple[float, float] | None, t: float) -> float | None:
    """False alarms per hour the tail line predicts at threshold ``t`` (None without a line)."""
    if line is None:
        return None
    slope, icpt = line
    return math.exp(slope * logit(t) + icpt)


def within_budget(c: CurvePoint, line: tuple[float, float] | None, hours: float, budget_per_hour: float) -> bool:
    """The measured rate is within budget and, where it counts no false alarm at all (the calibration audio
    cannot resolve the rate), the tail line says so too."""
    if c.false_alarms / hours > budget_per_hour:
        return False
    tail = tail_rate(line, c.threshold)
    return not (c.false_alarms == 0 and tail is not None and tail > budget_per_hour)


def pick_threshold(curve: Sequence[CurvePoint], hours: float, budget_per_hour: float, safety: bool,
                   safety_recall: float) -> tuple[float, str]:
    """The operating point for one budget and what limited it: the threshold with the highest scene recall
    among those within budget (on a tie the higher one: fewer false alarms), see the module docstring.

    A low threshold does not always recall more: events merge and their offsets no longer match, so recall
    is measured at every threshold, not assumed to fall with it. Without any threshold within budget, the
    tail line is solved for the budget (capped at :data:`MAX_THRESHOLD`). A safety label's budget is
    :data:`SAFETY_BUDGET_FACTOR` times larger, and reaching ``safety_recall`` at the fewest false alarms
    comes first when some threshold within that budget does; if none does, the fewest-false-alarm
    threshold that reaches it anywhere on the curve (``"safety recall over budget"``).
    """
    line = tail_line(curve, hours)
    b = budget_per_hour * (SAFETY_BUDGET_FACTOR if safety else 1.0)
    ok = [c for c in curve if within_budget(c, line, hours, b)]
    if safety:
        enough = [c for c in ok if c.recall is not None and c.recall >= safety_recall]
        if enough:
            best = min(enough, key=lambda c: (c.false_alarms, -c.threshold))
            return round(best.threshold, 4), "safety recall"
        # Recall is a safety label's constraint, not a casualty of the budget: where no threshold within
        # its budget keeps ``safety_recall``, the one that does at the fewest false alarms is taken, over
        # budget (the contract then carries the false alarms it costs).
        enough = [c for c in curve if c.recall is not None and c.recall >= safety_recall]
        if enough:
            best = min(enough, key=lambda c: (c.false_alarms, -c.threshold))
            return round(best.threshold, 4), "safety recall over budget"
    if ok:
        best = max(ok, key=lambda c: (c.recall or 0.0, c.threshold))
        why = "tail" if best.false_alarms == 0 and tail_rate(line, best.threshold) is not None else "budget"
        return round(best.threshold, 4), why
    if line is not None:  # beyond the grid: solve the tail line for the budget
        slope, icpt = line
        x = (math.log(b) - icpt) / slope
        return round(min(MAX_THRESHOLD, 1 / (1 + math.exp(-x))), 4), "tail"
    return MAX_THRESHOLD, "grid"


def at_points(settings: DetectorSettings, thresholds: Mapping[str, float],
              min_durations: Mapping[str, float]) -> DetectorSettings:
    """``settings`` with some labels' thresholds and minimum durations set."""
    return dataclasses.replace(settings, thresholds={**settings.thresholds, **thresholds},
                               min_durations={**settings.min_durations, **min_durations})


def may_wait(label: str) -> bool:
    """Labels that may get a minimum duration: not the alarms, not the safety sounds."""
    return label not in SAFETY_LABELS and label not in ALARM_LABELS


def curves(runs: Sequence[SceneRun], contract: ModelContract, settings: DetectorSettings,
           grid: Sequence[float] = THRESHOLD_GRID, durations: Sequence[float] = MIN_DURATIONS
           ) -> dict[str, dict[float, list[CurvePoint]]]:
    """Per label and minimum duration, its counts at every threshold of ``grid``.

    Labels are independent in the chain, so one replay with every label at threshold ``t`` gives every
    label's point at ``t``. Labels that may not wait (:func:`may_wait`) get duration 0 only.
    """
    labels = list(settings.labels)
    out: dict[str, dict[float, list[CurvePoint]]] = {lab: {} for lab in labels}
    for d in durations:
        waiting = [lab for lab in labels if d == 0 or may_wait(lab)]
        if not waiting:
            continue
        for t in grid:
            s = at_points(dataclasses.replace(settings, labels=tuple(waiting)), {lab: float(t) for lab in waiting},
                          {lab: float(d) for lab in waiting})
            for lab, c in counts_by_label(runs, contract, s, 1).items():
                out[lab].setdefault(float(d), []).append(CurvePoint(float(t), c.fa, c.ntp, c.nsys, c.nref))
    return out


def operating_points(runs: Sequence[SceneRun], contract: ModelContract, settings: DetectorSettings,
                     cv: Mapping[str, Mapping[float, Sequence[CurvePoint]]], hours: float, budget_per_hour: float,
                     safety_recall: float) -> dict[str, tuple[float, float, str, LabelCounts]]:
    """Per label ``(threshold, min_duration, what limited it, counts there)`` for one budget.

    Each minimum duration gets its own budget threshold per label (:func:`pick_threshold`), then the
    counts there are replayed (one replay per duration, every label at once); the duration that keeps
    most of the label's scene events wins (the shorter on a tie).
    """
    options: dict[float, tuple[dict[str, tuple[float, str]], dict[str, LabelCounts]]] = {}
    durations = sorted({d for per in cv.values() for d in per})
    for d in durations:
        labs = [lab for lab in settings.labels if d in cv[lab]]
        picks = {lab: pick_threshold(cv[lab][d], hours, budget_per_hour, lab in SAFETY_LABELS, safety_recall)
                 for lab in labs}
        s = at_points(dataclasses.replace(settings, labels=tuple(labs)), {lab: p[0] for lab, p in picks.items()},
                      {lab: d for lab in labs})
        options[d] = (picks, counts_by_label(runs, contract, s, 1))
    out = {}
    for lab in settings.labels:
        d = max((x for x in options if lab in options[x][0]),
                key=lambda x: (options[x][1][lab].ntp / max(options[x][1][lab].nref, 1), -x))
        (t, why), c = options[d][0][lab], options[d][1][lab]
        out[lab] = (t, d, why, c)
    return out


def event_f1(points: Mapping[str, tuple[float, float, str, LabelCounts]]) -> float:
    """Event F1 @500 ms on the calibration scenes of every label at its operating point."""
    tp = sum(p[3].ntp for p in points.values())
    den = sum(p[3].nsys + p[3].nref for p in points.values())
    return 2 * tp / den if den else 0.0


def choose_timing(runs: Sequence[SceneRun], contract: ModelContract, settings: DetectorSettings, hours: float,
                  budget_per_hour: float, safety_recall: float, say: Any) -> tuple[DetectorSettings, list[dict]]:
    """The persistence and release (:data:`PERSISTENCE_OPTIONS` x :data:`RELEASE_OPTIONS`) whose medium
    operating points (coarse grid) give the best event F1 on the calibration scenes: each option is judged
    at thresholds that keep it in budget, so a laxer rule pays for itself with higher thresholds."""
    trials = []
    best: tuple[float, DetectorSettings] | None = None
    for (k, n) in PERSISTENCE_OPTIONS:
        for rel in RELEASE_OPTIONS:
            s = dataclasses.replace(settings, persistence_k=k, persistence_n=n, release_s=rel)
            pts = operating_points(runs, contract, s, curves(runs, contract, s, COARSE_GRID, (0.0, 0.5)), hours,
                                   budget_per_hour, safety_recall)
            f1 = event_f1(pts)
            trials.append({"persistence_k": k, "persistence_n": n, "release_s": rel, "event_f1_500ms": round(f1, 4)})
            say(f"persistence {k}/{n}, release {rel:g} s: event F1 {f1:.3f} at the medium points")
            if best is None or f1 > best[0] + 1e-9:
                best = (f1, s)
    assert best is not None
    return best[1], trials


def calibrate(runs: Sequence[SceneRun], contract: ModelContract, base: DetectorConfig | None = None,
              budgets_per_day: Mapping[str, float] = BUDGETS_PER_DAY, safety_recall: float = 0.9,
              grid: Sequence[float] = THRESHOLD_GRID, log: Any = None, search_timing: bool = True
              ) -> dict[str, Any]:
    """Operating points of every label for every sensitivity, from recorded held-out runs.

    ``runs``: scenes and background-only recordings recorded with one score row (and embedding) per
    model block. With ``search_timing``, persistence and release are chosen first (:func:`choose_timing`).
    Returns a JSON-ready dict: ``operating_points`` ``{sensitivity: {"thresholds": {label: t},
    "min_durations": {label: s}}}``, ``false_alarms_per_hour`` (measured there on the calibration audio),
    ``estimated_false_alarms_per_hour`` (tail estimate, what the contract carries), ``tuned`` (the chosen
    persistence/release), the curves, and what limited each threshold.
    """
    settings = settings_for(contract, base or DetectorConfig())
    hours = sum(r.duration_s for r in runs if r.background_only) / 3600.0
    if hours <= 0:
        raise ValueError("calibration needs background-only recordings (edge eval-stream --make "
                         "--background-hours)")
    say = log or (lambda s: None)
    trials: list[dict] = []
    if search_timing:
        settings, trials = choose_timing(runs, contract, settings, hours, budgets_per_day["medium"] / 24.0,
                                         safety_recall, say)
    cv = curves(runs, contract, settings, grid)
    cals = {lab: LabelCalibration(lab, cv[lab]) for lab in settings.labels}
    for sens in SENSITIVITIES:
        pts = operating_points(runs, contract, settings, cv, hours, budgets_per_day[sens] / 24.0, safety_recall)
        for lab, cal in cals.items():
            t, d, why, c = pts[lab]
            cal.thresholds[sens], cal.min_durations[sens] = t, d
            cal.false_alarms_per_hour[sens] = round(c.fa / hours, 4)
            est = tail_rate(tail_line(cv[lab][d], hours), t)
            cal.estimated_per_hour[sens] = round(est, 5) if est is not None else round(c.fa / hours, 4)
            cal.recall[sens] = round(c.ntp / c.nref, 4) if c.nref else None
            cal.limited_by[sens] = why
        if sens == "medium":
            say(f"medium points: event F1 {event_f1(pts):.3f} on the calibration scenes, "
                f"{sum(p[3].fa for p in pts.values()) / hours:.2f} false alarms/h on its background")
    for cal in cals.values():
        say(f"{cal.label}: " + ", ".join(f"{s} {cal.thresholds[s]:.3f}/{cal.min_durations[s]:g}s "
                                         f"({cal.false_alarms_per_hour[s]:.2f}/h, recall {cal.recall[s]}, "
                                         f"{cal.limited_by[s]})" for s in SENSITIVITIES))
    cl = list(cals.values())
    return {
        "background_hours": round(hours, 4),
        "scene_hours": round(sum(r.duration_s for r in runs if not r.background_only) / 3600.0, 4),
        "budgets_per_day": dict(budgets_per_day),
        "safety_recall": safety_recall,
        "tuned": {"persistence_k": settings.persistence_k, "persistence_n": settings.persistence_n,
                  "release_s": settings.release_s},
        "timing_trials": trials,
        "operating_points": {s: {"thresholds": {c.label: c.thresholds[s] for c in cl},
                                 "min_durations": {c.label: c.min_durations[s] for c in cl if c.min_durations[s]}}
                             for s in SENSITIVITIES},
        "false_alarms_per_hour": {s: {c.label: c.false_alarms_per_hour[s] for c in cl} for s in SENSITIVITIES},
        "estimated_false_alarms_per_hour": {s: {c.label: c.estimated_per_hour[s] for c in cl}
                                            for s in SENSITIVITIES},
        "recall": {s: {c.label: c.recall[s] for c in cl} for s in SENSITIVITIES},
        "limited_by": {s: {c.label: c.limited_by[s] for c in cl} for s in SENSITIVITIES},
        "curves": {c.label: {str(d): [dataclasses.asdict(p) for p in cvs] for d, cvs in c.curves.items()}
                   for c in cl},
    }


#: Tuned for event F1 after the operating points: where an event is placed on the timeline, which moves no
#: false alarm (the tuner's names; the settings they set are :data:`TIMESTAMP_KEYS`).
TUNED = ("offset_lag_s", "onset")
TIMESTAMP_KEYS = ("offset_lag_s", "onset_lead_s", "onset_backtrack_s", "backtrack_floor")


def calibrated_contract(contract: ModelContract, result: Mapping[str, Any]) -> ModelContract:
    """``contract`` with the operating points (and the false alarms they were measured to give) and the tuned
    detector settings of ``result`` in its ``detector`` section; the medium point is also its ``thresholds``."""
    det = dict(contract.detector)
    det.update({k: v for k, v in dict(result.get("tuned") or {}).items() if k != "thresholds"})
    det["operating_points"] = {s: {k: dict(x) for k, x in v.items()} for s, v in result["operating_points"].items()}
    det["thresholds"] = dict(result["operating_points"]["medium"]["thresholds"])
    det["false_alarms_per_hour"] = {s: dict(v) for s, v in result["estimated_false_alarms_per_hour"].items()}
    det["calibration"] = {"background_hours": result["background_hours"], "scene_hours": result["scene_hours"],
                          "budgets_per_day": dict(result["budgets_per_day"])}
    return dataclasses.replace(contract, detector=det)


def write_calibrated_model(model_in: str | Path, model_out: str | Path, result: Mapping[str, Any]) -> Path:
    """Copy ``model_in`` to ``model_out`` with :func:`calibrated_contract` (needs ``onnx``)."""
    import onnx

    from edge.model.contract import read_contract, save_with_contract

    c = calibrated_contract(read_contract(model_in), result)
    return save_with_contract(onnx.load(str(model_in)), c, model_out)


def calibrate_model(model: str | Path, held_out: str | Path | Sequence[str | Path], work_dir: str | Path,
                    out_model: str | Path, seed: int = 0, background_hours: float = 24.0, n_scenes: int = 40,
                    base: DetectorConfig | None = None, log: Any = None, tune_detector: bool = True
                    ) -> dict[str, Any]:
    """The whole stage for one trained model: held-out clips -> scenes and background-only recordings
    (each background clip at most 4 times; as many hours as that gives, up to ``background_hours``) ->
    one recorded run of the listener -> :func:`calibrate` -> ``out_model`` with the operating points.

    ``held_out``: manifest(s) of clips the model never trained on (the recipe's ``*-inner-val.csv``).
    Writes ``calibration.json`` (and the scene set) under ``work_dir``; returns the result.
    """
    import json

    from edge.corpus.manifest import read_rows
    from edge.evaluate import stream as st
    from edge.evaluate.soundscape import SceneSettings, generate
    from edge.model.classifier import Classifier
    from edge.service.config import parse_config

    manifests = [held_out] if isinstance(held_out, (str, Path)) else list(held_out)
    folds = sorted({int(r["fold"]) for m in manifests for _, r in read_rows(m, ("path", "label", "fold"))[1]})
    work = Path(work_dir)
    scenes = work / "scenes"
    generate(manifests, scenes, SceneSettings(folds=tuple(folds), n_scenes=n_scenes, seed=seed,
                                              background_hours=background_hours,
                                              synthetic=("co_alarm", "smoke_alarm")))
    clf = Classifier(model)
    cfg = parse_config({"model": {"hop_s": None}})
    _, runs = st.run_scene_set(scenes, cfg, clf, record_scores=True)
    result = calibrate(runs, clf.contract, base, log=log)
    if tune_detector:
        # Where events are placed (onset lead and backtracking, offset lag) moves no false alarm: tuned for
        # event F1 at the medium points, then the operating points again with that timing.
        from edge.evaluate.tune import Objective, tune

        c1 = calibrated_contract(clf.contract, result)
        timing = tune(runs, c1, base or DetectorConfig(), Objective(), rounds=1, only=TUNED)["detector"]
        tuned = {**result["tuned"], **{k: timing[k] for k in TIMESTAMP_KEYS}}
        c2 = calibrated_contract(clf.contract, {**result, "tuned": tuned})
        result = {**calibrate(runs, c2, base, log=log, search_timing=False), "tuned": tuned,
                  "timing_trials": result["timing_trials"]}
    result["model"] = str(model)
    result["held_out"] = [str(m) for m in manifests]
    (work / "calibration.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    write_calibrated_model(model, out_model, result)
    return result


def evaluate_sensitivities(model: Any, scene_dir: str | Path, cfg: Any = None,
                           sensitivities: Sequence[str] = ("low", "medium", "high")) -> dict[str, dict[str, Any]]:
    """:func:`compute_metrics` of one model on one scene set at each ``detector.sensitivity``.

    The listener runs once, recording every block's scores and embeddings; each sensitivity is then a
    replay through the same event chain (:func:`edge.evaluate.tune.replay`, exact for the same settings).
    ``model``: an open Classifier or a model path; ``cfg``: a Config whose other detector settings apply.
    """
    import dataclasses

    from edge.evaluate import stream as st
    from edge.evaluate.tune import replay
    from edge.model.classifier import Classifier
    from edge.service.config import parse_config

    clf = model if isinstance(model, Classifier) else Classifier(model)
    cfg = cfg if cfg is not None else parse_config({})
    rec = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, hop_s=None))
    _, runs = st.run_scene_set(scene_dir, rec, clf, record_scores=True)
    out: dict[str, dict[str, Any]] = {}
    for sens in sensitivities:
        det_cfg = dataclasses.replace(cfg.detector, sensitivity=sens)
        det: dict[str, list[tuple[float, float, str]]] = {}
        emi: dict[str, list[float]] = {}
        for r in runs:
            det[r.name], emi[r.name] = replay(r, clf.contract, det_cfg)
        out[sens] = st.compute_metrics(runs, list(clf.labels), detected=det, emitted=emi)
    return out

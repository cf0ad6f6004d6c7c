"""Detector tuning on held-out scenes: per-label thresholds and releases, hysteresis, persistence, minimum
duration, release, onset lead, offset lag and hop.

The listener runs once per file (:func:`edge.evaluate.stream.run_scene_set`,
recording the per-hop scores through the pipeline's ``on_scores`` hook); each
candidate setting is then *replayed* through the very
:class:`edge.detect.chain.EventChain` the listener uses (detector, familiarity
and alarm gates), so tuning measures the real detector without re-running the
model. :func:`replay` reproduces ``detect_file`` exactly for the same settings (tested).

Objective (maximised): event F1 at the 500 ms collar on the tuning scenes,
minus ``fa_weight`` per false alarm/hour above ``max_fa_per_hour`` on the
background-only recordings, minus ``recall_weight`` x the shortfall of each
safety class's recall below ``safety_recall``. Labels are independent in the
detector, so a per-label threshold sweep replays that label only.

Never tune on the test fold: build the tuning scenes from other folds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.detect import settings as ds
from edge.detect.chain import EventChain
from edge.detect.detector import Detector
from edge.detect.home_background import HomeBackground, fingerprint
from edge.detect.labels import ALARM_LABELS, SAFETY_LABELS
from edge.detect.settings import DetectorConfig, DetectorSettings
from edge.evaluate import sed_metrics as sm
from edge.evaluate.stream import SceneRun
from edge.model.contract import ModelContract

THRESHOLD_GRID = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
HYSTERESIS_GRID = (0.0, 0.1, 0.2)
PERSISTENCE_GRID = ((1, 1), (2, 2), (2, 3), (3, 4))
MIN_DURATION_GRID = (0.0, 0.25, 0.5)
RELEASE_GRID = (0.25, 0.5, 1.0, 2.0, 3.0, 4.0)
LABEL_RELEASE_GRID = (0.5, 1.0, 2.0, 3.0, 4.0, 6.0)
OFFSET_LAG_GRID = (0.0, 0.24, 0.48, 0.72)
ONSET_LEAD_GRID = (0.0, 0.12, 0.24, 0.36, 0.48)
BACKTRACK_GRID = (0.0, 2.0, 4.0, 8.0)
BACKTRACK_FLOOR_GRID = (0.2, 0.3, 0.5)
#: Blocks per hop searched by default: only 1. A 2-block hop halves the model's CPU time but doubles the
#: decision latency, and did not raise event F1 on held-out scenes (0.458 vs 0.462 on CV fold 1).
HOP_GRID = (1,)


def settings_for(contract: ModelContract, cfg: DetectorConfig | DetectorSettings) -> DetectorSettings:
    """``cfg`` resolved against the contract exactly as the listener resolves it (already resolved: as is)."""
    return cfg if isinstance(cfg, DetectorSettings) else ds.for_model(cfg, contract)


def new_detector(contract: ModelContract, cfg: DetectorConfig | DetectorSettings) -> Detector:
    """A detector built exactly as the listener's event chain builds it."""
    return Detector(contract.labels, settings_for(contract, cfg), model_version=contract.model_version)


_HOMES: dict[tuple[str, int, str], HomeBackground] = {}


def _home_background(path: str, contract: ModelContract) -> HomeBackground:
    """The file loaded once per (path, modification, model): the tuner replays thousands of times."""
    key = (str(path), Path(path).stat().st_mtime_ns if Path(path).exists() else 0, fingerprint(contract))
    if key not in _HOMES:
        _HOMES[key] = HomeBackground.load(path, contract)
    return _HOMES[key]


def replay(run: SceneRun, contract: ModelContract, cfg: DetectorConfig | DetectorSettings, hop_blocks: int = 1,
           gate: Any = None) -> tuple[list[sm.Event], list[float]]:
    """Recorded scores of one run through a fresh :class:`EventChain`, built as the listener builds it.

    Args:
        run: must have been recorded with one score row per model block (``model.hop_s`` unset).
        cfg: raw settings (resolved here against the contract) or resolved ones.
        hop_blocks: keep every ``hop_blocks``-th block, as the listener does for ``model.hop_s``.
        gate: optional ``(FrontendParams, fallback_s)``: pass the chain's output through the alarm-pattern
            gate, fed with the file's log-mel frames up to each hop.

    When the model carries prototypes and the run recorded its hop embeddings, onsets pass
    the familiarity check (with ``home_background`` if set) first, as in the listener.
    Returns ``(events, emitted_at)``: completed events and the time each onset was emitted.
    """
    settings = settings_for(contract, cfg)
    if gate is not None:
        settings = dataclasses.replace(settings, alarm_confirm=True, alarm_fallback_s=gate[1])
    else:
        settings = dataclasses.replace(settings, alarm_confirm=False)
    with_embeddings = run.embeddings.shape[0] == run.scores.shape[0]
    home = None
    if with_embeddings and settings.home_background is not None and contract.familiarity() is not None:
        home = _home_background(settings.home_background, contract)
    # Scores recorded without embeddings: the familiarity gate cannot be reproduced, so it is left out.
    chain = EventChain(contract, settings, home, familiarity=with_embeddings)
    first_block = contract.window_blocks - 1  # blocks are counted from the first, scores start once ready
    emitted: dict[str, float] = {}
    done: list[Any] = []
    mel = None
    fed = 0
    if gate is not None:
        from edge.evaluate.soundscape import load_mono
        from edge.features.frontend import logmel

        params = gate[0]
        mel = logmel(load_mono(Path(run.wav), params.sample_rate), params)

    def frames_until(t: float) -> None:
        nonlocal fed
        if mel is None:
            return
        n = min(mel.shape[0], params.n_frames(int(round(t * params.sample_rate))))
        if n > fed:
            chain.push_frames(mel[fed:n], n / params.frame_rate)
            fed = n

    def collect(evs: list[Any], t: float) -> None:
        for ev in evs:
            if ev.state == "on":
                emitted[ev.id] = t
            else:
                done.append(ev)

    end = 0.0
    for i in range(run.scores.shape[0]):
        if (first_block + i + 1) % hop_blocks:
            continue
        start, end = float(run.hops[i][0]), float(run.hops[i][1])
        frames_until(end)
        emb = run.embeddings[i] if with_embeddings else None
        collect(chain.push_hop(run.scores[i], emb, start, end, -120.0), end)
    frames_until(end)
    collect(chain.flush(end), end)
    return [(float(e.onset), float(e.offset), e.label) for e in done], [emitted.get(e.id, e.onset) for e in done]


@dataclass(frozen=True)
class Objective:
    max_fa_per_hour: float = 2.0
    safety_recall: float = 0.9
    fa_weight: float = 0.05
    recall_weight: float = 1.0
    safety_labels: tuple[str, ...] = SAFETY_LABELS


@dataclass
class LabelCounts:
    ntp: int
    nsys: int
    nref: int
    fa: int


def label_counts(runs: Sequence[SceneRun], contract: ModelContract, label: str, cfg: DetectorSettings,
                 hop_blocks: int) -> LabelCounts:
    """Counts of one label (event F1 at 500 ms on scenes, false alarms on background) with that label only."""
    return counts_by_label(runs, contract, dataclasses.replace(cfg, labels=(label,)), hop_blocks)[label]


def counts_by_label(runs: Sequence[SceneRun], contract: ModelContract, cfg: DetectorSettings,
                    hop_blocks: int) -> dict[str, LabelCounts]:
    """:class:`LabelCounts` of every enabled label from one replay of each run.

    The same as one replay per label: the detector's labels are independent, and the familiarity gate
    judges each onset by its own label's prototypes (the alarm gate is off in these replays).
    """
    labels = list(cfg.labels)
    acc = {lab: [0, 0, 0, 0] for lab in labels}  # ntp, nsys, nref, fa
    for r in runs:
        est, _ = replay(r, contract, cfg, hop_blocks)
        if r.background_only:
            for e in est:
                acc[e[2]][3] += 1
            continue
        for lab in labels:
            ref = [e for e in r.reference if e[2] == lab]
            mine = [e for e in est if e[2] == lab]
            if not ref and not mine:
                continue
            res = sm.event_based({r.name: ref}, {r.name: mine}, [lab], t_collar=0.5)
            a = acc[lab]
            a[0] += res.overall.Ntp
            a[1] += len(mine)
            a[2] += len(ref)
    return {lab: LabelCounts(*v) for lab, v in acc.items()}


def objective(counts: Mapping[str, LabelCounts], bg_hours: float, obj: Objective) -> tuple[float, dict[str, Any]]:
    ntp = sum(c.ntp for c in counts.values())
    nsys = sum(c.nsys for c in counts.values())
    nref = sum(c.nref for c in counts.values())
    fa = sum(c.fa for c in counts.values())
    f1 = 2.0 * ntp / (nref + nsys) if nref + nsys else 0.0
    fah = fa / bg_hours if bg_hours > 0 else 0.0
    recalls = {lab: counts[lab].ntp / counts[lab].nref for lab in obj.safety_labels
               if lab in counts and counts[lab].nref}
    score = f1 - obj.fa_weight * max(0.0, fah - obj.max_fa_per_hour)
    score -= obj.recall_weight * sum(max(0.0, obj.safety_recall - r) for r in recalls.values())
    return score, {"event_f1_500ms": round(f1, 4), "false_alarms_per_hour": round(fah, 3),
                   "safety_recall": {k: round(v, 3) for k, v in recalls.items()}}


#: What :func:`tune` searches, in order; ``only`` picks some of them.
SEARCHED = ("persistence", "hysteresis", "min_duration_s", "release_s", "offset_lag_s", "onset", "hop",
            "thresholds", "releases")


def onset_grid() -> list[tuple[float, float, float]]:
    """(onset_backtrack_s, backtrack_floor, onset_lead_s), searched together: backtracking moves the onset
    earlier, so the lead that suits it is shorter (one at a time, neither move alone may pay)."""
    off = [(0.0, BACKTRACK_FLOOR_GRID[-1], lead) for lead in ONSET_LEAD_GRID]
    return off + [(b, f, lead) for b in BACKTRACK_GRID if b > 0 for f in BACKTRACK_FLOOR_GRID
                  for lead in ONSET_LEAD_GRID]


def tune(runs: Sequence[SceneRun], contract: ModelContract, base: DetectorConfig, obj: Objective = Objective(),
         rounds: int = 2, log: Any = None, hops: Sequence[int] | None = None,
         only: Sequence[str] | None = None) -> dict[str, Any]:
    """Coordinate search from ``base`` (resolved with the model's defaults, as the listener does).

    ``hops``: blocks per hop to search (default :data:`HOP_GRID`). ``only``: search just these of
    :data:`SEARCHED` and keep the rest (e.g. a new setting added to a model's tuned defaults).
    Returns the tuned settings, the tuning-set figures and the search trace.
    """
    unknown = sorted(set(only or ()) - set(SEARCHED))
    if unknown:
        raise ValueError(f"cannot tune {', '.join(unknown)} (tunable: {', '.join(SEARCHED)})")
    searched = set(only or SEARCHED)
    block_s = contract.block_seconds
    bg_hours = sum(r.duration_s for r in runs if r.background_only) / 3600.0
    cfg = settings_for(contract, base)
    enabled = list(cfg.labels)
    thr = {lab: float(cfg.thresholds[lab]) for lab in enabled}
    hop = 1

    def all_counts(c: DetectorSettings, h: int) -> dict[str, LabelCounts]:
        return counts_by_label(runs, contract, c, h)

    counts = all_counts(cfg, hop)
    best, info = objective(counts, bg_hours, obj)
    trace = [{"step": "start", "objective": round(best, 4)} | info]
    say = log or (lambda s: None)
    say(f"start: objective {best:.4f} {info}")
    for rnd in range(rounds):
        # Global settings, one at a time over their grids.
        grids: tuple[tuple[str, Sequence[Any]], ...] = (
            ("persistence", PERSISTENCE_GRID), ("hysteresis", HYSTERESIS_GRID),
            ("min_duration_s", MIN_DURATION_GRID), ("release_s", RELEASE_GRID),
            ("offset_lag_s", OFFSET_LAG_GRID), ("onset", onset_grid()),
            ("hop", tuple(hops or HOP_GRID)))
        for name, grid in grids:
            if name not in searched:
                continue
            for val in grid:
                c2, h2 = cfg, hop
                if name == "persistence":
                    c2 = dataclasses.replace(cfg, persistence_k=val[0], persistence_n=val[1])
                elif name == "onset":
                    c2 = dataclasses.replace(cfg, onset_backtrack_s=val[0], backtrack_floor=val[1], onset_lead_s=val[2])
                elif name == "hop":
                    h2 = int(val)
                else:
                    one: dict[str, Any] = {name: float(val)}
                    c2 = dataclasses.replace(cfg, **one)
                if c2 == cfg and h2 == hop:
                    continue
                cnt = all_counts(c2, h2)
                sc, inf = objective(cnt, bg_hours, obj)
                if sc > best + 1e-9:
                    best, info, cfg, hop, counts = sc, inf, c2, h2, cnt
                    say(f"round {rnd}: {name}={val}: objective {best:.4f} {info}")
                    trace.append({"step": f"{name}={val}", "objective": round(best, 4)} | info)
        # Per-label thresholds: only that label is replayed.
        for lab in enabled if "thresholds" in searched else ():
            for t in THRESHOLD_GRID:
                if abs(t - thr[lab]) < 1e-9:
                    continue
                trial = dict(thr)
                trial[lab] = t
                c2 = dataclasses.replace(cfg, thresholds={**cfg.thresholds, **trial})
                cnt = dict(counts)
                cnt[lab] = label_counts(runs, contract, lab, c2, hop)
                sc, inf = objective(cnt, bg_hours, obj)
                if sc > best + 1e-9:
                    best, info, thr, cfg, counts = sc, inf, trial, c2, cnt
                    trace.append({"step": f"threshold.{lab}={t}", "objective": round(best, 4)} | info)
            say(f"round {rnd}: thresholds after {lab}: objective {best:.4f}")
        # Per-label releases (smoke/CO keep alarm_release_s: their pattern's pauses are known).
        for lab in enabled if "releases" in searched else ():
            if lab in ALARM_LABELS:
                continue
            for rel in LABEL_RELEASE_GRID:
                if abs(rel - cfg.releases.get(lab, cfg.release_s)) < 1e-9:
                    continue
                c2 = dataclasses.replace(cfg, releases={**cfg.releases, lab: float(rel)})
                cnt = dict(counts)
                cnt[lab] = label_counts(runs, contract, lab, c2, hop)
                sc, inf = objective(cnt, bg_hours, obj)
                if sc > best + 1e-9:
                    best, info, cfg, counts = sc, inf, c2, cnt
                    trace.append({"step": f"release.{lab}={rel}", "objective": round(best, 4)} | info)
        say(f"round {rnd}: per-label releases: objective {best:.4f}")
    tuned = {
        "thresholds": {k: round(v, 3) for k, v in sorted(thr.items())},
        "hysteresis": cfg.hysteresis,
        "persistence_k": cfg.persistence_k,
        "persistence_n": cfg.persistence_n,
        "min_duration_s": cfg.min_duration_s,
        "release_s": cfg.release_s,
        "offset_lag_s": cfg.offset_lag_s,
        "onset_lead_s": cfg.onset_lead_s,
        "onset_backtrack_s": cfg.onset_backtrack_s,
        "backtrack_floor": cfg.backtrack_floor,
        "releases": {k: float(v) for k, v in sorted(cfg.releases.items())},
    }
    return {"detector": tuned, "model": {"hop_s": round(hop * block_s, 4) if hop > 1 else None},
            "tuning_set": info, "objective": round(best, 4), "objective_settings": dataclasses.asdict(obj),
            "trace": trace}


def apply_tuned(base: DetectorConfig, tuned: Mapping[str, Any]) -> DetectorConfig:
    """A :class:`DetectorConfig` with the tuned ``detector`` values applied."""
    d = dict(tuned)
    names = ("hysteresis", "persistence_k", "persistence_n", "min_duration_s", "release_s", "offset_lag_s",
             "onset_lead_s", "onset_backtrack_s", "backtrack_floor")
    return dataclasses.replace(base, threshold=None, thresholds=dict(d["thresholds"]),
                               releases=dict(d.get("releases") or {}), **{k: d[k] for k in names if k in d})


def write_tuned_model(model_in: str | Path, model_out: str | Path, tuned: Mapping[str, Any]) -> Path:
    """Copy ``model_in`` to ``model_out`` with the tuned ``detector`` settings in its contract.

    The listener then uses them for every detector setting the configuration
    leaves null (thresholds: unless configured). The contract's clip
    thresholds (``edge eval-clips``) are kept. Needs the ``onnx`` package.
    """
    import dataclasses as dc

    import onnx

    from edge.model.contract import read_contract, save_with_contract

    contract = read_contract(model_in)
    return save_with_contract(onnx.load(str(model_in)), dc.replace(contract, detector=dict(tuned)), model_out)


def to_yaml(result: Mapping[str, Any]) -> str:
    """The tuned values as a ``config.yaml`` snippet (``detector`` and ``model.hop_s`` sections)."""
    import yaml

    doc: dict[str, Any] = {"detector": dict(result["detector"])}
    if result.get("model", {}).get("hop_s"):
        doc["model"] = {"hop_s": result["model"]["hop_s"]}
    head = "# tuned by edge.evaluate.tune on held-out scenes: " + str(result.get("tuning_set", {})) + "\n"
    return head + yaml.safe_dump(doc, sort_keys=False)


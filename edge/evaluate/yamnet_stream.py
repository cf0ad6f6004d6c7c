"""YAMNet on the same soundscapes, through the same detector, tuner and metrics.

The peer comparison of issue 6: YAMNet (``../shared/models/yamnet``) scores
each scene at its own 0.48 s hop (0.975 s patches); its 521 scores are mapped
onto our labels (:data:`edge.yamnet.scorer.YAMNET_LABEL_MAP`, max over the
mapped classes) and replayed through :func:`edge.evaluate.tune.replay` — the
listener's own :class:`~edge.detect.detector.Detector` — with settings tuned by
:func:`edge.evaluate.tune.tune` on a held-out scene set, exactly as for our
model. Also reported: YAMNet "Frigate-style" (0.975 s blocks, one threshold,
an event per block above it, no persistence or hysteresis).

    python -m edge.evaluate.yamnet_stream --tune-scenes SCENES_A --scenes SCENES_B [--json OUT]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from edge.detect.settings import DetectorConfig
from edge.evaluate import sed_metrics as sm
from edge.evaluate.stream import SceneRun, compute_metrics
from edge.features.frontend import FrontendParams
from edge.model.contract import ModelContract

PATCH_S = 0.975


def yamnet_contract(labels: list[str], hop_s: float) -> ModelContract:
    """A contract describing YAMNet's timing to the detector: one 'block' per hop, a window of 2 hops."""
    fp = FrontendParams()
    block_frames = int(round(hop_s * fp.frame_rate))
    return ModelContract(labels=tuple(labels), frontend=fp, block_frames=block_frames, window_blocks=2,
                         cache_dim=1, embedding_dim=1, model_version="yamnet-tflite (mapped)",
                         detector={"offset_lag_s": PATCH_S - hop_s})


def run_scenes(scene_dir: str | Path, scorer: Any, labels: list[str], index_map: dict[str, list[int]]
               ) -> tuple[dict[str, Any], list[SceneRun]]:
    """Score every scene and background file; hops are (patch end - hop, patch end) in seconds."""
    from edge.evaluate.soundscape import load_mono, load_scene_set
    from edge.yamnet.scorer import mapped_scores, patch_starts

    meta = load_scene_set(scene_dir)
    runs = []
    hop = scorer.hop_samples / 16000.0
    for sc in meta["scenes"]:
        t0 = time.perf_counter()
        x = load_mono(Path(sc["wav"]))
        scores = mapped_scores(scorer.score_clip(x), index_map, labels)
        ends = patch_starts(x.shape[0], scorer.hop_samples) / 16000.0 + PATCH_S
        hops = np.stack([ends - hop, ends], axis=1)
        runs.append(SceneRun(sc["name"], float(sc["duration_s"]), bool(sc["background_only"]),
                             sm.read_annotations(sc["annotation"]), [], [], hops, scores,
                             time.perf_counter() - t0, sc["wav"]))
    return meta, runs


def evaluate(runs: list[SceneRun], contract: ModelContract, cfg: DetectorConfig, labels: list[str],
             hop_blocks: int = 1) -> dict[str, Any]:
    from edge.evaluate.tune import replay

    det, emi = {}, {}
    for r in runs:
        det[r.name], emi[r.name] = replay(r, contract, cfg, hop_blocks)
    return compute_metrics(runs, labels, detected=det, emitted=emi)


def scored_labels(labels: list[str], runs: list[SceneRun]) -> list[str]:
    """YAMNet's mapped labels plus every other label in the scenes' references.

    Our model is scored on all of them; scoring YAMNet on its mapped labels only would
    drop the references it cannot name (co_alarm, washing_machine) from the segment metrics.
    """
    return list(labels) + sorted({e[2] for r in runs for e in r.reference} - set(labels))


def frigate_style(runs: list[SceneRun], labels: list[str], threshold: float) -> tuple[dict[str, list], dict[str, list]]:
    """Every 0.975 s block scoring above ``threshold`` is an event of that block (Frigate's audio detector)."""
    det: dict[str, list] = {}
    emi: dict[str, list] = {}
    for r in runs:
        evs, at = [], []
        for (_, e), row in zip(r.hops, r.scores, strict=True):
            start = e - PATCH_S
            for j in np.flatnonzero(row >= threshold):
                evs.append((float(start), float(e), labels[j]))
                at.append(float(e))
        det[r.name], emi[r.name] = evs, at
    return det, emi


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m edge.evaluate.yamnet_stream", description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenes", required=True, help="test scene set (edge eval-stream --make)")
    ap.add_argument("--tune-scenes", required=True, help="held-out scene set to tune the detector on")
    ap.add_argument("--yamnet", default=None, help="yamnet.tflite (default ../shared/models/yamnet)")
    ap.add_argument("--frigate-threshold", type=float, default=0.5, help="Frigate-style per-block threshold")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)

    from edge.evaluate.tune import Objective, tune
    from edge.yamnet import scorer as ym

    path = Path(args.yamnet) if args.yamnet else ym.DEFAULT_YAMNET_PATH
    reason = ym.yamnet_available(path)
    if reason:
        print(f"yamnet_stream: skipped: {reason}", file=sys.stderr)
        return 0
    scorer = ym.YamnetScorer(path, hop_s=0.48)
    labels = [lab for lab, names in ym.YAMNET_LABEL_MAP.items() if names]
    index_map = ym.label_index_map(scorer.class_names, labels)
    contract = yamnet_contract(labels, 0.48)
    _, tune_runs = run_scenes(args.tune_scenes, scorer, labels, index_map)
    res = tune(tune_runs, contract, DetectorConfig(), Objective(), log=lambda s: print(s, file=sys.stderr))
    from edge.evaluate.tune import apply_tuned

    cfg = apply_tuned(DetectorConfig(), res["detector"])
    _, runs = run_scenes(args.scenes, scorer, labels, index_map)
    scored = scored_labels(labels, runs)
    hop_s = (res.get("model") or {}).get("hop_s")
    hop_blocks = max(1, int(round(hop_s / 0.48))) if hop_s else 1
    tuned = evaluate(runs, contract, cfg, scored, hop_blocks)
    frig_scorer = ym.YamnetScorer(path, hop_s=PATCH_S)
    _, frig_runs = run_scenes(args.scenes, frig_scorer, labels, index_map)
    det, emi = frigate_style(frig_runs, labels, args.frigate_threshold)
    frig = compute_metrics(frig_runs, scored, detected=det, emitted=emi)
    keys = ("event_f1_200ms", "event_f1_500ms", "segment_f1_1s", "segment_er_1s", "safety_recall_500ms",
            "false_alarms_per_hour")
    out = {"labels": labels, "tuned_on": str(args.tune_scenes), "scenes": str(args.scenes),
           "tuned_detector": dataclasses.asdict(cfg) | {"hop_s": 0.48 * hop_blocks},
           "yamnet_tuned": {k: tuned.get(k) for k in keys},
           "yamnet_frigate_style": {"threshold": args.frigate_threshold} | {k: frig.get(k) for k in keys}}
    print(json.dumps(out, indent=1, default=str))
    if args.json:
        Path(args.json).write_text(json.dumps({"tuned": tuned, "frigate": frig, "summary": out}, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""5-fold cross-validation by the corpora's folds: clips (fp32 and int8) and streams (false alarms, event F1).

For each fold k: train on the other folds of every corpus (thresholds/pooling
tuned on an inner split of those), then

* **clips**: evaluate both exported ONNX files on the held-out fold of the
  first corpus (homesounds) with the eval-clips logic (runtime Classifier).
  Synthetic alarms are only ever training data, so ``smoke_alarm`` is evaluated
  on real recordings only;
* **streams** (``stream=True``): calibrate the int8 model's operating points on
  its inner-validation clips (:func:`edge.evaluate.calibrate.calibrate_model`:
  clips of the training folds it never trained on), then run the calibrated
  model over scenes and background-only recordings made of fold k's clips of
  every corpus (each background clip at most 4 times) at each
  ``detector.sensitivity``: event F1 @200/500 ms, safety recall, false alarms
  per hour (speech apart), onset latency.

Pooled figures concatenate the held-out folds (clip predictions; stream counts).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edge.corpus.metrics import metrics
from edge.detect.labels import SAFETY_LABELS
from edge.evaluate.clips import ManifestClip, evaluate_clips
from edge.train import data as D
from edge.train.augment import AugmentParams
from edge.train.recipe import Schedule, data_dirs, train


def run_cv(data_dir: str | Path | Sequence[str | Path] | None, out_dir: str | Path, seed: int = 0, quick: bool = False,
           licence_filter: str = "all", folds: list[int] | None = None, schedule: Schedule | None = None,
           augment: AugmentParams | None = None, teacher_model: str | Path | None = None,
           device: str = "cpu", threads: int = 2, stream: bool | None = None) -> dict:
    """Train and evaluate each fold (see the module docstring); ``stream`` defaults to on unless ``quick``.

    Writes ``cv.json`` under ``out_dir`` after every fold; returns the result.
    """
    stream = (not quick) if stream is None else stream
    dirs = data_dirs(data_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = D.licence_filter(D.read_corpora(dirs), licence_filter)
    all_folds = sorted({r.fold for r in rows})
    unknown = sorted(set(folds or []) - set(all_folds))
    if unknown:
        raise D.DataError(f"--folds: no fold {unknown[0]} in the data (folds: {', '.join(map(str, all_folds))})")
    # The headline clip figure is on the first corpus's held-out clips (homesounds: comparable across recipes).
    primary = rows[0].root if rows else ""
    res: dict = {"seed": seed, "licence_filter": licence_filter, "corpora": [str(d) for d in dirs], "folds": {}}
    for k in folds or all_folds:
        t0 = time.time()
        rep = train(dirs, out / f"fold{k}", [f for f in all_folds if f != k], seed, quick, licence_filter,
                    schedule=schedule, name=f"fold{k}", augment=augment,
                    teacher_model=teacher_model, device=device, threads=threads)
        held = [ManifestClip(r.file(), r.label) for r in rows if r.fold == k and r.root == primary]
        fold_res: dict[str, Any] = {
            "train": {x: rep[x] for x in ("inner_val_macro_f1", "pooling", "thresholds", "train_seconds",
                                          "teacher", "int8_bytes", "macs_per_second", "environment")}}
        for kind in ("fp32", "int8"):
            ev = evaluate_clips(rep[f"{kind}_path"], held)
            ev.pop("predictions", None)
            fold_res[kind] = ev
        if stream:
            fold_res.update(stream_fold(rep, dirs, k, out, seed, licence_filter))
        fold_res["seconds"] = round(time.time() - t0, 1)
        res["folds"][str(k)] = fold_res
        print(f"fold {k}: fp32 macro-F1 {fold_res['fp32']['macro_f1']:.3f}  int8 {fold_res['int8']['macro_f1']:.3f}"
              f"  ({fold_res['seconds']:.0f} s)", flush=True)
        (out / "cv.json").write_text(json.dumps(res, indent=2, default=float))
    summarise(res)
    (out / "cv.json").write_text(json.dumps(res, indent=2, default=float))
    print(format_cv(res))
    return res


def stream_fold(rep: dict, dirs: Sequence[Path], k: int, out: Path, seed: int, licence_filter: str) -> dict:
    """Calibrate fold k's model on its inner-validation clips, then evaluate it on fold k's streams."""
    from edge.evaluate.calibrate import calibrate_model, evaluate_sensitivities
    from edge.evaluate.soundscape import SceneSettings, generate

    cal_model = out / f"fold{k}" / f"fold{k}-calibrated.onnx"
    cal = calibrate_model(rep["int8_path"], rep["inner_val_manifest"], out / f"fold{k}" / "calibration", cal_model,
                          seed=seed)
    scenes = out / "scenes" / f"fold{k}"
    if not (scenes / "scenes.json").is_file():
        generate(list(dirs), scenes, SceneSettings(folds=(k,), n_scenes=HELD_OUT_SCENES, seed=1000 * seed + k,
                                                   background_hours=24.0, licence=licence_filter,
                                                   synthetic=("co_alarm", "smoke_alarm")))
    return {"calibration": {x: cal[x] for x in ("background_hours", "scene_hours", "operating_points",
                                               "false_alarms_per_hour", "estimated_false_alarms_per_hour",
                                               "recall", "limited_by")},
            "stream": evaluate_sensitivities(cal_model, scenes)}


#: Scenes (about a minute each) per held-out fold; the background-only hours are what fold k's clips give
#: with each used at most 4 times.
HELD_OUT_SCENES = 40


def pooled_stream(res: dict) -> dict:
    """Stream figures pooled over the folds, per sensitivity: counts added, then rates and F1."""
    out: dict[str, dict] = {}
    folds = [f["stream"] for f in res["folds"].values() if "stream" in f]
    if not folds:
        return out
    for sens in folds[0]:
        ms = [f[sens] for f in folds]
        hours = sum(m["background_hours"] for m in ms)
        by_label: dict[str, int] = {}
        for m in ms:
            for lab, n in m["false_alarms_by_label"].items():
                by_label[lab] = by_label.get(lab, 0) + n
        fa = sum(by_label.values())
        speech = by_label.get("speech", 0)
        pooled = {"background_hours": round(hours, 3), "false_alarms": fa,
                  "false_alarms_per_hour_without_speech": round((fa - speech) / hours, 3) if hours else None,
                  "speech_detections_per_hour": round(speech / hours, 3) if hours else None,
                  "false_alarms_per_hour_by_label": {k: round(v / hours, 3) for k, v in sorted(by_label.items())}}
        for collar in ("200ms", "500ms"):
            tp = sum(m[f"event_counts_{collar}"]["Ntp"] for m in ms)
            sys_ = sum(m[f"event_counts_{collar}"]["Nsys"] for m in ms)
            ref = sum(m[f"event_counts_{collar}"]["Nref"] for m in ms)
            pooled[f"event_f1_{collar}"] = round(2 * tp / (sys_ + ref), 4) if sys_ + ref else 0.0
        per_class: dict[str, dict[str, int]] = {}
        for m in ms:
            for lab, c in m["per_class_500ms"].items():
                d = per_class.setdefault(lab, {"Ntp": 0, "Nref": 0, "Nsys": 0})
                for key in d:
                    d[key] += int(c[key])
        pooled["recall_500ms"] = {lab: round(d["Ntp"] / d["Nref"], 3) for lab, d in sorted(per_class.items())
                                  if d["Nref"]}
        pooled["f1_500ms"] = {lab: round(2 * d["Ntp"] / (d["Nref"] + d["Nsys"]), 3)
                              for lab, d in sorted(per_class.items()) if d["Nref"] + d["Nsys"]}
        pooled["safety_recall_500ms"] = {lab: pooled["recall_500ms"].get(lab) for lab in SAFETY_LABELS}
        meds = [m["onset_error_s"]["all"].get("median_s") for m in ms if m["onset_error_s"]["all"].get("median_s")
                is not None]
        pooled["onset_error_median_s"] = round(sum(meds) / len(meds), 3) if meds else None
        dec = [m["decision_latency_s"]["all"].get("median_s") for m in ms
               if m["decision_latency_s"]["all"].get("median_s") is not None]
        pooled["decision_latency_median_s"] = round(sum(dec) / len(dec), 3) if dec else None
        out[sens] = pooled
    return out


def summarise(res: dict) -> dict:
    """Add pooled metrics and the mean fold macro-F1 (fp32, int8) to a result with per-fold evaluations.

    Pooled figures re-derive every held-out clip's (truth, prediction) from the
    folds' confusion matrices, so folds run in separate processes (or on other
    machines) merge into the same table as one sequential run.
    """
    for kind in ("fp32", "int8"):
        truth: list[str] = []
        pred: list[str] = []
        for fold in res["folds"].values():
            labs = fold[kind]["confusion"]["labels"]
            for i, t in enumerate(labs):
                for j, p in enumerate(labs):
                    n = fold[kind]["confusion"]["matrix"][i][j]
                    truth.extend([t] * n)
                    pred.extend([p] * n)
        res[f"pooled_{kind}"] = metrics(truth, pred)
        f1s = [f[kind]["macro_f1"] for f in res["folds"].values()]
        res[f"mean_fold_macro_f1_{kind}"] = sum(f1s) / len(f1s)
    stream = pooled_stream(res)
    if stream:
        res["pooled_stream"] = stream
    return res


def merge(files: list[Path]) -> dict:
    """One CV result from JSON files: ``cv.json`` files of partial runs (``python -m edge.evaluate.cv DIR 1 3``)
    and/or per-fold results (each with ``fold``, ``fp32`` and ``int8`` evaluations)."""
    res: dict = {"folds": {}}
    for f in files:
        d = json.loads(Path(f).read_text())
        if "folds" in d:
            res["folds"].update(d["folds"])
        else:
            res["folds"][str(d["fold"])] = d
    res["folds"] = dict(sorted(res["folds"].items()))
    return summarise(res)


def format_cv(res: dict) -> str:
    lines = ["| fold | fp32 macro-F1 | int8 macro-F1 | int8 accuracy |", "|---|---:|---:|---:|"]
    for f, r in res["folds"].items():
        lines.append(f"| {f} | {r['fp32']['macro_f1']:.3f} | {r['int8']['macro_f1']:.3f} | "
                     f"{r['int8']['accuracy']:.3f} |")
    if "pooled_fp32" in res:
        lines.append(f"| mean of folds | {res['mean_fold_macro_f1_fp32']:.3f} | {res['mean_fold_macro_f1_int8']:.3f} |"
                     " |")
        lines.append(f"| pooled (all held-out clips) | {res['pooled_fp32']['macro_f1']:.3f} | "
                     f"{res['pooled_int8']['macro_f1']:.3f} | {res['pooled_int8']['accuracy']:.3f} |")
        lines += ["", "| class | support | fp32 F1 | int8 P | int8 R | int8 F1 |", "|---|---:|---:|---:|---:|---:|"]
        for c, m in res["pooled_int8"]["per_class"].items():
            f = res["pooled_fp32"]["per_class"].get(c, {}).get("f1", 0.0)
            lines.append(f"| {c} | {m['support']} | {f:.3f} | {m['precision']:.3f} | {m['recall']:.3f} | "
                         f"{m['f1']:.3f} |")
    for sens, m in res.get("pooled_stream", {}).items():
        safety = ", ".join(f"{k} {v}" for k, v in m["safety_recall_500ms"].items())
        lines += ["", f"streams, sensitivity {sens}, pooled over {len(res['folds'])} held-out folds "
                      f"({m['background_hours']:.1f} h of background): false alarms/h "
                      f"{m['false_alarms_per_hour_without_speech']} "
                      f"(speech apart: {m['speech_detections_per_hour']}/h), event F1 @200/500 ms "
                      f"{m['event_f1_200ms']:.3f} / {m['event_f1_500ms']:.3f}, safety recall {safety}, onset error "
                      f"median {m['onset_error_median_s']} s"]
    return "\n".join(lines)


if __name__ == "__main__":
    # python -m edge.evaluate.cv OUT_DIR [fold ...] [--seed N] [--threads N] | merge OUT.json FOLD.json ...
    import argparse
    import sys

    if sys.argv[1:2] == ["merge"]:
        merged = merge([Path(a) for a in sys.argv[3:]])
        Path(sys.argv[2]).write_text(json.dumps(merged, indent=2, default=float))
        print(format_cv(merged))
    else:
        ap = argparse.ArgumentParser(prog="python -m edge.evaluate.cv")
        ap.add_argument("out", nargs="?", default="models/build/cv")
        ap.add_argument("folds", nargs="*", type=int, help="held-out folds to run (default: all)")
        ap.add_argument("--seed", type=int, default=0)
        ap.add_argument("--threads", type=int, default=2, help="CPU threads per process (1 when two run at once)")
        ap.add_argument("--data", action="append", metavar="DIR",
                        help="corpus folder, repeatable (default: ../shared/data/homesounds)")
        a = ap.parse_args()
        run_cv(a.data, a.out, seed=a.seed, folds=a.folds or None, threads=a.threads)

"""5-fold cross-validation by the manifest's folds, fp32 and int8 side by side.

For each fold: train on the other folds (thresholds/pooling tuned on an inner
split of those), then evaluate both exported ONNX files on the held-out fold
with the eval-clips logic (runtime Classifier). Synthetic alarms are only
ever training data, so ``smoke_alarm`` is evaluated on real recordings only.
Pooled figures concatenate the five held-out folds' predictions.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edge.corpus.metrics import metrics
from edge.evaluate.clips import ManifestClip, evaluate_clips
from edge.train import data as D
from edge.train.augment import AugmentParams
from edge.train.recipe import Schedule, data_dirs, train


def run_cv(data_dir: str | Path | Sequence[str | Path] | None, out_dir: str | Path, seed: int = 0, quick: bool = False,
           licence_filter: str = "all", folds: list[int] | None = None, schedule: Schedule | None = None,
           augment: AugmentParams | None = None, teacher_model: str | Path | None = None,
           device: str = "cpu", threads: int = 2) -> dict:
    dirs = data_dirs(data_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = D.licence_filter(D.read_corpora(dirs), licence_filter)
    all_folds = sorted({r.fold for r in rows})
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
        fold_res["seconds"] = round(time.time() - t0, 1)
        res["folds"][str(k)] = fold_res
        print(f"fold {k}: fp32 macro-F1 {fold_res['fp32']['macro_f1']:.3f}  int8 {fold_res['int8']['macro_f1']:.3f}"
              f"  ({fold_res['seconds']:.0f} s)", flush=True)
        (out / "cv.json").write_text(json.dumps(res, indent=2, default=float))
    summarise(res)
    (out / "cv.json").write_text(json.dumps(res, indent=2, default=float))
    print(format_cv(res))
    return res


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

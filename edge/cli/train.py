"""``edge train``: the training recipe (and ``--cv`` cross-validation) from the command line.

torch and the rest of the training stack are imported inside the handler, so
registering the command costs the runtime nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from edge.cli.argtypes import fold_list, seed


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "train", help="train the sound model on a homesounds-style data folder (needs the 'train' extra)",
        description="Train the streaming block classifier, export ONNX (fp32 + int8 with its contract) to --out. "
                    "--cv runs 5-fold cross-validation by the manifest's folds instead.")
    p.add_argument("--data", metavar="DIR", action="append", default=None,
                   help="data folder with manifest.csv; repeat it to train on several corpora with aligned folds, "
                        "e.g. --data ../shared/data/homesounds --data ../shared/data/esc-negatives (default: "
                        "../shared/data/homesounds from the repo root)")
    p.add_argument("--out", metavar="DIR", default="models/build", help="output folder (default: models/build)")
    p.add_argument("--quick", action="store_true", help="tiny schedule (< 1 min): checks the pipeline, not accuracy")
    p.add_argument("--seed", type=seed, default=0, help="random seed, an integer >= 0 (default 0)")
    p.add_argument("--licence", choices=("all", "commercial"), default="all",
                   help="'commercial' keeps only CC0/CC-BY/CC-BY-SA/ODbL/GPL-style clips "
                        "(no NC, no Sampling+; unknown: dropped)")
    p.add_argument("--refit", action="store_true",
                   help="after tuning the clip decision on the inner split, train again on all training clips "
                        "and ship that model with the decision (twice the training time)")
    p.add_argument("--cv", action="store_true",
                   help="5-fold cross-validation instead of training: clips (fp32 and int8) and, unless --quick, "
                        "streams (operating points calibrated per fold, false alarms/h and event F1 on the held-out "
                        "fold)")
    p.add_argument("--folds", type=fold_list, default=None, metavar="K,K",
                   help="with --cv: only these held-out folds, e.g. 1,5 (iterate on two, confirm on all five); "
                        "the others are still trained on")
    p.add_argument("--no-calibrate", action="store_true",
                   help="skip the false-alarm calibration of the operating points (on by default, off with --quick): "
                        "the model then carries no detector.operating_points")
    p.add_argument("--name", default=None, help="file name stem of the outputs (default: homesound[-commercial])")
    p.add_argument("--teacher", metavar="FILE", default=None,
                   help="yamnet.tflite used as the distillation teacher (default: "
                        "../shared/models/yamnet/yamnet.tflite; needs the 'eval' extra; without it the recipe "
                        "trains without a teacher and says so)")
    p.add_argument("--device", default="cpu",
                   help="torch device for the training steps, e.g. 'cuda' (default: cpu; results match the CPU "
                        "up to floating-point rounding)")
    p.add_argument("--threads", type=int, default=2,
                   help="CPU threads for the training steps (default 2, this project's reference machine)")
    p.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    from edge.cli.outputs import OutputError, make_output_dir
    from edge.train.data import DataError, default_data_dir, read_corpora

    data = [Path(d) for d in args.data] if args.data else [default_data_dir()]
    try:
        read_corpora(data)  # fail early, one line, before importing torch
        make_output_dir("--out", args.out)
        if args.teacher and not Path(args.teacher).is_file():
            raise DataError(f"--teacher: {args.teacher}: file not found")
    except (DataError, OutputError) as e:
        print(f"edge: {e}", file=sys.stderr)
        return 2
    try:
        import torch
    except ImportError:
        print("edge: training needs PyTorch and the 'train' extra (pip install 'edge-listener[train]')",
              file=sys.stderr)
        return 2
    problem = device_problem(torch, args.device)
    if problem:
        print(f"edge: train: --device: {problem}", file=sys.stderr)
        return 2
    if args.folds and not args.cv:
        print("edge: train: --folds: only with --cv", file=sys.stderr)
        return 2
    if args.threads < 1:
        print(f"edge: train: --threads: expected an integer >= 1, got {args.threads}", file=sys.stderr)
        return 2
    from dataclasses import replace

    from edge.train.recipe import QUICK, Schedule

    schedule = replace(QUICK if args.quick else Schedule(), refit=True) if args.refit else None
    try:
        if args.cv:
            from edge.evaluate.cv import run_cv

            run_cv(data, args.out, seed=args.seed, quick=args.quick, licence_filter=args.licence, folds=args.folds,
                   schedule=schedule, teacher_model=args.teacher, device=args.device, threads=args.threads,
                   stream=not (args.quick or args.no_calibrate))
            return 0
        from edge.train.recipe import train

        name = args.name or ("homesound" if args.licence == "all" else "homesound-commercial")
        rep = train(data, args.out, None, args.seed, args.quick, args.licence, schedule=schedule, name=name,
                    teacher_model=args.teacher, device=args.device, threads=args.threads)
        if not (args.quick or args.no_calibrate):
            # The same procedure as for every CV fold: operating points from clips the model never trained on.
            from edge.evaluate.calibrate import calibrate_model

            cal = calibrate_model(rep["int8_path"], rep["inner_val_manifest"], Path(args.out) / f"{name}-calibration",
                                  rep["int8_path"], seed=args.seed, log=lambda s: print(s, file=sys.stderr))
            rep["calibration_background_hours"] = cal["background_hours"]
    except DataError as e:
        print(f"edge: {e}", file=sys.stderr)
        return 2
    keys = ("int8_path", "int8_bytes", "macs_per_second", "inner_val_macro_f1", "pooling", "refit", "n_train_real",
            "total_seconds", "calibration_background_hours")
    print(json.dumps({k: rep[k] for k in keys if k in rep}, default=float))
    return 0


def device_problem(torch: Any, name: str) -> str | None:
    """Why ``name`` cannot train here (one line), or None."""
    try:
        dev = torch.device(name)
    except RuntimeError:
        return f"expected a torch device such as 'cpu' or 'cuda', got {name!r}"
    if dev.type == "cuda" and not torch.cuda.is_available():
        return f"{name!r} asked for, but this PyTorch sees no CUDA GPU"
    if dev.type not in ("cpu", "cuda"):
        return f"expected 'cpu' or 'cuda[:N]', got {name!r}"
    return None

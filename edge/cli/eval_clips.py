"""``edge eval-clips``: clip-level accuracy of an ONNX model on any manifest (runtime stack only)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "models" / "homesound-int8.onnx"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "eval-clips", help="evaluate a model on labelled clips (manifest.csv: path,label,...)",
        description="Score every window of each clip with the runtime classifier, pool over the clip, predict the "
                    "top label if it passes its threshold else 'background'; print accuracy, macro-F1, "
                    "per-class figures and the confusion matrix.")
    p.add_argument("--manifest", required=True, metavar="PATH", help="manifest CSV (paths relative to its folder)")
    p.add_argument("--model", metavar="FILE", default=str(DEFAULT_MODEL),
                   help="ONNX model (default: models/homesound-int8.onnx)")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.add_argument("--plot", metavar="PNG", help="also write the confusion matrix as a PNG (needs matplotlib)")
    p.add_argument("--pooling", choices=("max", "meanmax", "mean"), default=None,
                   help="clip pooling of window scores (default: the model's own, from its contract)")
    p.set_defaults(func=cmd_eval_clips)


def cmd_eval_clips(args: argparse.Namespace) -> int:
    from edge.cli.outputs import PLOT_SUFFIXES, OutputError, check_output_file
    from edge.evaluate.clips import EvalError, evaluate_clips, format_report, plot_confusion, read_eval_manifest
    from edge.model.contract import ContractError

    try:
        check_output_file("--plot", args.plot, PLOT_SUFFIXES)
        clips = read_eval_manifest(args.manifest)
        res = evaluate_clips(args.model, clips, pooling=args.pooling)
    except (EvalError, ContractError, OutputError) as e:
        print(f"edge: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(res, indent=2, default=float))
    else:
        print(format_report(res))
    if not res["n_clips"]:
        print(f"edge: {args.manifest}: no clip has a label the model knows (skipped: "
              f"{', '.join(res.get('skipped_labels') or {}) or 'none'})", file=sys.stderr)
        return 2
    if args.plot:
        try:
            plot_confusion(res, args.plot)
        except OSError as e:  # the folder vanished or the disk filled since the check
            print(f"edge: --plot: cannot write {args.plot} ({e.strerror or e})", file=sys.stderr)
            return 1
    return 0

"""Where a model call's time goes, per operator type: onnxruntime's node profile of the int8 graph and its fp32 twin.

Run from the repository root::

    python -m benchmarks.op_profile                       # shipped int8 model vs its dequantized fp32 twin
    python -m benchmarks.op_profile --calls 2000 --fp32-model FILE

Not part of the test suite; it prints figures and asserts nothing. Both graphs run on the
same blocks (log-mel of the demo recording), 1 intra-op thread, the listener's session
options (``edge.model.contract.open_model``: no CPU arena, no memory pattern) plus
``SessionOptions.enable_profiling``. onnxruntime then writes one JSON trace of every node
run; summed by ``args.op_name`` (the kernel that ran after graph optimisation: a QDQ
``Conv`` fused into ``QLinearConv`` shows as such) over the calls after ``--warmup``. The
per-call total is the sum of node times (kernel time only: session overhead outside the
nodes is the difference to the wall time per call, printed too). The fp32 twin is the int8
QDQ graph dequantized (``benchmarks.bench.dequantize_qdq``) unless ``--fp32-model`` is given.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

REPO = Path(__file__).resolve().parents[1]


def profile(path: Path, blocks: list[Any], cache_dim: int, warmup: int, tmp: Path) -> dict[str, Any]:
    """Per op type: total µs, node runs, over ``blocks`` after ``warmup`` calls; wall µs per call."""
    import numpy as np
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    opts.enable_cpu_mem_arena = False
    opts.enable_mem_pattern = False
    opts.enable_profiling = True
    opts.profile_file_prefix = str(tmp / path.stem)
    sess = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    ins = sess.get_inputs()
    mel_name = next(i.name for i in ins if len(i.shape) == 3)
    cache_in = next(i for i in ins if i.name != mel_name)
    cache = np.zeros([d if isinstance(d, int) else 1 for d in cache_in.shape], np.float32)
    outs = [o.name for o in sess.get_outputs()]
    t_start = None
    for k, b in enumerate(blocks):
        if k == warmup:
            t_start = time.perf_counter_ns()
        res = sess.run(outs, {mel_name: b[None], cache_in.name: cache})
        cache = res[2] if len(res) > 2 else cache
    wall_us = (time.perf_counter_ns() - (t_start or 0)) / 1000 / max(1, len(blocks) - warmup)
    trace = json.loads(Path(sess.end_profiling()).read_text())
    runs = [e for e in trace if e.get("name") == "model_run"]
    cut = runs[warmup - 1]["ts"] + runs[warmup - 1]["dur"] if warmup and len(runs) >= warmup else 0
    by_op: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    by_node: dict[str, list[Any]] = {}
    for e in trace:
        if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time") or e["ts"] < cut:
            continue
        args = e.get("args", {})
        op = args.get("op_name", "?")
        by_op[op][0] += e["dur"]
        by_op[op][1] += 1
        shapes = [list(d.values())[0] for d in args.get("input_type_shape", []) if isinstance(d, dict) and d]
        got = by_node.setdefault(e["name"][: -len("_kernel_time")], [op, 0.0, shapes])
        got[1] += e["dur"]
    n = max(1, len(blocks) - warmup)
    return {"calls": n, "wall_us": wall_us, "nodes": len(by_node),
            "by_op": {k: {"us_per_call": v[0] / n, "runs_per_call": v[1] / n} for k, v in by_op.items()},
            "by_node": {k: {"op": v[0], "us_per_call": v[1] / n, "input_shapes": v[2]} for k, v in by_node.items()}}


def fold_unfused_weight_dq(int8_path: str | Path, out_path: Path, ran: set[str]) -> tuple[Path, list[str]]:
    """A copy of a QDQ graph where each weight ``DequantizeLinear`` that still runs per call is folded.

    onnxruntime keeps the DequantizeLinear of a weight initializer for its QDQ fusions (Conv ->
    QLinearConv, Gemm -> QGemm); where a consumer is not fused, that node stays and dequantizes
    the weight again on every call. ``ran``: the node names the profile saw run. Folding
    ``(q - zero_point) * scale`` once gives the float values the node computes, so the consumer
    sees the same weights. Returns the path and the folded nodes' names.
    """
    import onnx

    from benchmarks.bench import dequantized_weight

    m = onnx.load(str(int8_path))
    g = m.graph
    inits = {i.name: i for i in g.initializer}
    fold = [n for n in g.node if n.op_type == "DequantizeLinear" and n.input[0] in inits and n.name in ran]
    new_inits, names = [], []
    for n in fold:
        new_inits.append(dequantized_weight(n, inits))
        names.append(n.name or n.output[0])
    keep = [n for n in g.node if n not in fold]
    del g.node[:]
    g.node.extend(keep)
    g.initializer.extend(new_inits)
    used = {x for n in g.node for x in n.input}
    remaining = [i for i in g.initializer if i.name in used or i.name in {o.name for o in g.output}]
    del g.initializer[:]
    g.initializer.extend(remaining)
    onnx.save(m, str(out_path))
    return out_path, names


def max_score_diff(a: Path, b: Path, blocks: list[Any]) -> float:
    """Largest |score difference| of two graphs over ``blocks`` (streamed, fresh state each)."""
    import numpy as np

    from edge.model.classifier import Classifier

    ca, cb = Classifier(a, threads=1), Classifier(b, threads=1)
    return float(max(np.max(np.abs(ca.push_block(x)[0] - cb.push_block(x)[0])) for x in blocks))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.op_profile", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(REPO / "models" / "homesound-int8.onnx"))
    ap.add_argument("--fp32-model", default=None)
    ap.add_argument("--calls", type=int, default=1000)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--nodes", type=int, default=12, help="the slowest nodes of each graph to list (default 12)")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    import numpy as np
    import onnxruntime as ort

    from benchmarks.bench import base_recording, dequantize_qdq
    from edge.features.frontend import LogMelStream
    from edge.model.contract import open_model

    _, c = open_model(a.model)
    x, _ = base_recording(c.frontend.sample_rate)
    mel = LogMelStream(c.frontend).push(x)
    bf = c.block_frames
    base = [np.ascontiguousarray(mel[i * bf:(i + 1) * bf]) for i in range(mel.shape[0] // bf)]
    blocks = [base[k % len(base)] for k in range(a.calls + a.warmup)]
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        fp32 = Path(a.fp32_model) if a.fp32_model else dequantize_qdq(a.model, tmp / "fp32-from-qdq.onnx")
        for name, path in (("int8", Path(a.model)), ("fp32", fp32)):
            out[name] = profile(path, blocks, c.cache_dim, a.warmup, tmp)
        ran = {k for k, v in out["int8"]["by_node"].items() if v["op"] == "DequantizeLinear"}
        folded, folded_names = fold_unfused_weight_dq(a.model, tmp / "int8-folded.onnx", ran)
        out["int8 folded"] = profile(folded, blocks, c.cache_dim, a.warmup, tmp)
        diff = max_score_diff(Path(a.model), folded, base)
    print(f"onnxruntime {ort.__version__}, 1 thread, {a.calls} calls after {a.warmup} warm-up, "
          f"model {a.model}; fp32: {a.fp32_model or 'the int8 QDQ graph dequantized'}")
    ops = sorted({k for m in ("int8", "fp32") for k in out[m]["by_op"]},
                 key=lambda k: -max(out[m]["by_op"].get(k, {}).get("us_per_call", 0.0) for m in ("int8", "fp32")))
    print(f"{'kernel (op after optimisation)':<34}{'int8 µs/call':>14}{'runs':>6}{'fp32 µs/call':>14}{'runs':>6}")
    for k in ops:
        cells = ""
        for m in ("int8", "fp32"):
            v = out[m]["by_op"].get(k)
            cells += f"{v['us_per_call']:14.1f}{v['runs_per_call']:6.0f}" if v else f"{'-':>14}{'':>6}"
        print(f"{k:<34}{cells}")
    for m in ("int8", "fp32"):
        r = out[m]
        tot = sum(v["us_per_call"] for v in r["by_op"].values())
        print(f"{m}: nodes {r['nodes']}, node time {tot:.1f} µs per call, wall {r['wall_us']:.1f} µs per call "
              f"(session overhead outside the nodes {r['wall_us'] - tot:.1f} µs)")
    for m in ("int8", "fp32"):
        top = sorted(out[m]["by_node"].items(), key=lambda kv: -kv[1]["us_per_call"])[: a.nodes]
        print(f"\n{m}: slowest nodes (µs per call, op, input shapes)")
        for k, v in top:
            print(f"  {v['us_per_call']:7.1f}  {v['op']:<18} {k[:48]:<48} {v['input_shapes']}")
    ti = sum(v["us_per_call"] for v in out["int8"]["by_op"].values())
    tf = sum(v["us_per_call"] for v in out["fp32"]["by_op"].values())
    print(f"int8 / fp32: node time {ti / tf:.2f}x, wall {out['int8']['wall_us'] / out['fp32']['wall_us']:.2f}x")
    r = out["int8 folded"]
    tfo = sum(v["us_per_call"] for v in r["by_op"].values())
    print(f"\nint8 with the weight DequantizeLinear of unfused consumers folded ({len(folded_names)}: "
          f"{', '.join(folded_names)}): node time {tfo:.1f} µs, wall {r['wall_us']:.1f} µs per call -> "
          f"/int8 {tfo / ti:.2f}x node time, /fp32 {tfo / tf:.2f}x; max |score - int8's| over "
          f"{len(base)} blocks {diff:.2e}")
    out["folded_nodes"] = folded_names
    out["folded_max_score_diff"] = diff
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

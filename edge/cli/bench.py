"""``edge bench``: the performance benchmark (benchmarks/bench.py), from a source checkout.

The benchmark lives outside the package (it is not installed with the wheel), so
this command only works where ``benchmarks/`` sits next to ``edge/``; elsewhere it
says so in one line. Registered by the CLI through ``register(subparsers)``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parents[2]


def _run_live(argv: list[str]) -> int:
    """``edge bench --live [options]``: benchmarks/live.py with the arguments after ``--live``."""
    if not (_ROOT / "benchmarks" / "live.py").is_file():
        from edge.core.errors import EdgeError

        raise EdgeError("bench: benchmarks/live.py not found; `edge bench --live` runs from a source checkout")
    if str(_ROOT) not in sys.path:
        sys.path.insert(0, str(_ROOT))
    import benchmarks.live as live

    return int(live.main(argv))


def _bench_module() -> Any | None:
    if not (_ROOT / "benchmarks" / "bench.py").is_file():
        return None
    if str(_ROOT) not in sys.path:
        sys.path.insert(0, str(_ROOT))
    import benchmarks.bench as bench  # stdlib-only at import time: keeps `edge --help` fast

    return bench


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "bench", help="measure CPU, memory, latency and compute of the listener (source checkout only)",
        description="Push a long recording through the whole chain and print real-time factor per stage, "
                    "peak RSS, start-up and publish latency, MACs, and int8/fp32, threads and YAMNet ratios.",
    )
    bench = _bench_module()
    if bench is not None:
        bench.add_arguments(p)
    p.add_argument("--live", nargs=argparse.REMAINDER, metavar="LIVE_OPTION",
                   help="the live benchmark instead (benchmarks/live.py): the listener on a PulseAudio microphone, a "
                        "paced file and the batch path, per-thread CPU and wake-ups in one run; its own options "
                        "follow --live (see `python -m benchmarks.live --help`)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if getattr(args, "live", None) is not None:
        return _run_live(list(args.live))
    bench = _bench_module()
    if bench is None:
        from edge.core.errors import EdgeError

        raise EdgeError("bench: benchmarks/bench.py not found; `edge bench` runs from a source checkout")
    if getattr(args, "child", None) == "chain":
        bench.child_chain(args)
        return 0
    import os

    for var in bench.BLAS_THREAD_VARS:  # single-thread BLAS; numpy is not imported yet on this path
        os.environ.setdefault(var, "1")
    return int(bench.run_bench(args))

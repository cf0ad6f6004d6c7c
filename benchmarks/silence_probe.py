"""How much a model's scores rise on (near-)silence: a learnt cue from zero-padded training clips.

    python -m benchmarks.silence_probe [MODEL.onnx ...]   (default: the two shipped models)

For each model: the highest window score per label over 10 s of digital
silence, of -90 dBFS and of -60 dBFS white noise; the four top labels each.
A model that learnt "silence around it" as evidence for short events scores
those events high on silence (see models/MODEL_CARD.md, intended use and limits).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from edge.features.frontend import logmel
from edge.model.classifier import Classifier

REPO = Path(__file__).resolve().parents[1]
LEVELS_DBFS = (None, -90.0, -60.0)  # None: digital silence


def probe(path: str | Path, seconds: float = 10.0) -> dict[str, dict[str, float]]:
    """``{input name: {label: max window score}}`` for the inputs of :data:`LEVELS_DBFS`."""
    clf = Classifier(path, threads=1)
    fp = clf.contract.frontend
    n = int(seconds * fp.sample_rate)
    rng = np.random.default_rng(0)
    out = {}
    for db in LEVELS_DBFS:
        x = np.zeros(n, np.float32) if db is None else (rng.standard_normal(n) * 10 ** (db / 20)).astype(np.float32)
        scores, _ = clf.score_frames(logmel(x, fp))
        out["zeros" if db is None else f"{db:g} dBFS"] = dict(zip(clf.labels, scores.max(axis=0).tolist(),
                                                                   strict=True))
    return out


def main(argv: list[str]) -> int:
    models = argv or [str(p) for p in sorted((REPO / "models").glob("homesound*-int8.onnx"))]
    for m in models:
        res = probe(m)
        parts = [f"{name}: " + ", ".join(f"{lab} {v:.2f}" for lab, v in sorted(s.items(), key=lambda kv: -kv[1])[:4])
                 for name, s in res.items()]
        print(f"{m} | " + " | ".join(parts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

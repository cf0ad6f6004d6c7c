"""Build a model's negative bank: window embeddings of ordinary sounds, for calibrating taught sounds.

    python -m edge.train.negative_bank MODEL.onnx --data ../shared/data/homesounds ../shared/data/home-media \\
        ../shared/data/esc-negatives [--folds 1 2 3 4] [--max-vectors 1536] [--out FILE]

Every clip of the chosen folds (all labels, background too) is run through the
model; of all its window embeddings, ``--max-vectors`` are kept by farthest-point
sampling (each next one the window least like those already kept), so the bank
covers the variety of ordinary sounds rather than their most common kind: what
matters for a taught sound's threshold is the *closest* ordinary window. Written
next to the model as ``<model stem>.negatives.json`` (:mod:`edge.model.negatives`),
where ``edge enroll`` finds it. Run it again for every new model file (the bank
carries the model's fingerprint; another model's bank is not used).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edge.capture.audiofile import read_mono
from edge.detect.home_background import fingerprint
from edge.detect.taught import centred
from edge.features.frontend import logmel
from edge.model.classifier import Classifier
from edge.model.negatives import MAX_VECTORS, NegativeBank, bank_path
from edge.model.prototypes import unit_rows


def clip_windows(clf: Classifier, paths: Sequence[Path], per_clip: int = 8) -> np.ndarray:
    """``(n, dim)`` unit window embeddings, at most ``per_clip`` evenly spaced per clip."""
    c = clf.contract
    out = []
    for p in paths:
        x = read_mono(p, c.frontend.sample_rate)
        if x.shape[0] < c.block_samples:
            continue
        _, emb = clf.score_frames(logmel(x, c.frontend))
        if emb.shape[0] > per_clip:
            emb = emb[np.linspace(0, emb.shape[0] - 1, per_clip).round().astype(int)]
        out.append(unit_rows(emb.astype(np.float32)))
    return np.concatenate(out) if out else np.zeros((0, c.embedding_dim), np.float32)


def farthest_points(x: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Indices of ``n`` rows of unit ``x`` ``(m, dim)`` chosen greedily, each the least like those before."""
    if x.shape[0] <= n:
        return np.arange(x.shape[0])
    rng = np.random.default_rng(seed)
    chosen = [int(rng.integers(x.shape[0]))]
    best = x @ x[chosen[0]]  # similarity of every row to its nearest chosen one
    for _ in range(n - 1):
        i = int(np.argmin(best))
        chosen.append(i)
        np.maximum(best, x @ x[i], out=best)
    return np.array(chosen)


def build(model: str | Path, manifests: Sequence[str | Path], folds: Sequence[int] | None,
          max_vectors: int = 1536, exclude_categories: Sequence[str] = (), per_clip: int = 8,
          seed: int = 0, licence: str = "all") -> NegativeBank:
    """The bank of ``model`` from the clips of ``folds`` (None: all) of ``manifests``, leaving out clips whose
    ``category`` column is in ``exclude_categories`` (leave-categories-out evaluations)."""
    from edge.corpus.licences import check_filter, licence_allows
    from edge.corpus.manifest import read_rows

    check_filter(licence)

    clf = Classifier(model)
    paths = []
    for m in manifests:
        mp, rows = read_rows(m, ["fold", "path"])  # a folder means its manifest.csv
        for _, row in rows:
            if folds is not None and int(row["fold"]) not in folds:
                continue
            if (row.get("category") or "") in exclude_categories:
                continue
            if not licence_allows(row.get("license") or "", licence):
                continue
            paths.append(mp.parent / row["path"])
    x = clip_windows(clf, paths, per_clip)
    mean = x.mean(axis=0)
    # chosen without the embeddings' common direction, as taught sounds are compared (edge.detect.taught)
    keep = farthest_points(centred(x, mean), min(max_vectors, MAX_VECTORS), seed)
    source = {"clips": len(paths), "windows_seen": int(x.shape[0]), "folds": list(folds) if folds else "all",
              "manifests": [Path(m).name for m in manifests], "excluded_categories": list(exclude_categories),
              "selection": "farthest-point", "licence": licence}
    return NegativeBank(x[keep], fingerprint(clf.contract), source, mean)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m edge.train.negative_bank", description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("--data", nargs="+", required=True, help="corpus folders or manifests")
    ap.add_argument("--folds", type=int, nargs="*", help="folds to take clips from (default: all)")
    ap.add_argument("--max-vectors", type=int, default=1536, help=f"windows kept (at most {MAX_VECTORS})")
    ap.add_argument("--exclude-category", nargs="*", default=[], help="manifest categories to leave out")
    ap.add_argument("--licence", default="all", help="'commercial': only clips whose licence allows commercial use")
    ap.add_argument("--out", help="default: next to the model, <stem>.negatives.json")
    a = ap.parse_args(argv)
    from edge.core.errors import EdgeError

    out = Path(a.out) if a.out else bank_path(a.model)
    try:
        bank = build(a.model, a.data, a.folds, a.max_vectors, a.exclude_category, licence=a.licence)
        bank.save(out)
    except (EdgeError, ValueError, OSError) as e:
        print(f"edge: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out}: {bank.vectors.shape[0]} windows of {bank.source['windows_seen']} from "
          f"{bank.source['clips']} clips, {bank.nbytes} bytes int8 ({out.stat().st_size} bytes on disk)",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

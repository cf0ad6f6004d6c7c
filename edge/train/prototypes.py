"""Prototypes for the familiarity check (:mod:`edge.detect.familiarity`), fitted after export.

For every event label except the safety sounds (smoke and CO alarms, glass
breaking, a baby crying: :data:`edge.detect.familiarity.NEVER_HELD`): the embeddings (from the
exported int8 model, as the listener computes them) of the training windows
that hold the sound (score >= 0.5: the windows the detector can fire on; for a
label with none, each clip's best-scoring half), reduced to at
most ``k`` spherical k-means centroids. The threshold ``min_similarity`` is the
``quantile`` of the same similarity on the inner-validation clips (training
folds, not trained on): with 0.1, about 90 % of the windows of unseen sounds of
a label pass the check.

Run on its own to add prototypes to an existing model (held-out clips: its
``*-inner-val.csv``, or by default the split ``edge train`` made for the
model's seed, recomputed)::

    python -m edge.train.prototypes MODEL.onnx --data ../shared/data/homesounds --out MODEL.onnx
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edge.detect.labels import NEVER_HELD
from edge.model.classifier import Classifier
from edge.model.prototypes import Prototypes, unit_rows

K_PROTOTYPES = 32
QUANTILE = 0.1


def positive_windows(clf: Classifier, mel: np.ndarray, label: str, floor: float | None = 0.5) -> np.ndarray:
    """Unit embeddings ``(n, dim)`` of the windows of one clip that hold ``label``'s sound: score >= ``floor``
    (the windows the detector can fire on), or with ``floor=None`` >= half the clip's best score."""
    scores, emb = clf.score_frames(mel)
    if not scores.shape[0]:
        return emb
    s = scores[:, clf.labels.index(label)]
    keep = s >= (0.5 * float(s.max()) if floor is None else floor)
    return unit_rows(emb[keep])


def _windows(clf: Classifier, clips: Sequence[tuple[np.ndarray, str]], label: str,
             floor: float | None = 0.5) -> np.ndarray:
    """:func:`positive_windows` of ``label`` over its clips, ``(n, dim)``."""
    parts = [positive_windows(clf, m, label, floor) for m, lab in clips if lab == label]
    parts = [p for p in parts if p.shape[0]]
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, clf.contract.embedding_dim),
                                                                           np.float32)


def spherical_kmeans(x: np.ndarray, k: int, seed: int = 0, iters: int = 30) -> np.ndarray:
    """At most ``k`` unit centroids ``(k', dim)`` of unit rows ``x`` (cosine k-means, deterministic)."""
    rng = np.random.default_rng(seed)
    k = min(k, x.shape[0])
    c = x[rng.choice(x.shape[0], size=k, replace=False)].copy()
    for _ in range(iters):
        a = np.argmax(x @ c.T, axis=1)
        for j in range(k):
            m = x[a == j]
            if m.shape[0]:
                c[j] = unit_rows(m.sum(axis=0))
    return c


def fit(clf: Classifier, train: Sequence[tuple[np.ndarray, str]], val: Sequence[tuple[np.ndarray, str]],
        k: int = K_PROTOTYPES, quantile: float = QUANTILE, seed: int = 0) -> Prototypes | None:
    """Prototypes from ``train`` (log-mel, label) clips, threshold from ``val``; None if either has no windows."""
    gated = [lab for lab in clf.labels if lab not in NEVER_HELD and lab != "background"]
    vectors = {}
    for lab in gated:
        x = _windows(clf, train, lab)
        if not x.shape[0]:  # no window reaches 0.5 (a barely trained model): each clip's best half
            x = _windows(clf, train, lab, None)
        if x.shape[0]:
            vectors[lab] = spherical_kmeans(x, k, seed)
    if not vectors:
        return None
    dim = clf.contract.embedding_dim
    # Calibrate on the int8 round trip the file will hold.
    probe = Prototypes.from_dict(Prototypes(vectors, 0.0, dim).to_dict(), clf.labels)
    # The windows the detector can fire on; only if there are none at all, each clip's best half.
    for floor in (0.5, None):
        sims = [probe.per_window(lab, x) for lab in probe.vectors
                if (x := _windows(clf, val, lab, floor)).shape[0]]
        if sims:
            break
    if not sims:
        return None
    thr = float(np.quantile(np.concatenate(sims), quantile))
    return Prototypes(probe.vectors, thr, dim)


def attach(model_in: str | Path, model_out: str | Path, protos: Prototypes, **info: object) -> Path:
    """Copy ``model_in`` to ``model_out`` with ``protos`` in its contract (needs ``onnx``)."""
    import onnx

    from edge.model.contract import read_contract, save_with_contract

    c = read_contract(model_in)
    return save_with_contract(onnx.load(str(model_in)), dataclasses.replace(c, prototypes=protos.to_dict(**info)),
                              model_out)


def main(argv: list[str] | None = None) -> int:
    from edge.corpus.manifest import ManifestError, read_rows
    from edge.train import data as D

    ap = argparse.ArgumentParser(prog="python -m edge.train.prototypes", description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--data", required=True, help="dataset folder with manifest.csv")
    ap.add_argument("--inner-val", help="the model's *-inner-val.csv (held-out clips); default: the split "
                                        "`edge train` made for the model's seed")
    ap.add_argument("--out", required=True)
    ap.add_argument("--k", type=int, default=K_PROTOTYPES)
    ap.add_argument("--quantile", type=float, default=QUANTILE)
    a = ap.parse_args(argv)
    clf = Classifier(a.model)
    c = clf.contract
    try:
        rows = D.select_folds(D.licence_filter(D.read_manifest(a.data), c.extra.get("licence_filter", "all")),
                              c.extra.get("train_folds"))
        real = D.load_clips(rows, Path(a.data), c.frontend.sample_rate, c.frontend)
        if a.inner_val:
            names = {Path(r["path"]).name for _, r in read_rows(a.inner_val)[1]}
            is_val = [Path(r.path).name in names for r in rows]
        else:
            _, va = D.inner_split(real, D.INNER_VAL_FRAC, int(c.extra.get("seed", 0)))
            is_val = np.isin(np.arange(len(rows)), va).tolist()
    except (D.DataError, ManifestError, OSError) as e:
        print(f"prototypes: {e}", file=sys.stderr)
        return 2
    train = [(m, lab) for m, lab, v in zip(real.mels, real.labels, is_val, strict=True) if not v]
    val = [(m, lab) for m, lab, v in zip(real.mels, real.labels, is_val, strict=True) if v]
    protos = fit(clf, train, val, a.k, a.quantile, seed=int(c.extra.get("seed", 0)))
    if protos is None:
        print("prototypes: no training or held-out windows for any gated label", file=sys.stderr)
        return 2
    out = attach(a.model, a.out, protos, k_max=a.k, quantile=a.quantile, n_train_clips=len(train),
                 n_val_clips=len(val))
    print(f"wrote {out}: {len(protos.vectors)} labels, min_similarity {protos.min_similarity:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Reference models on the manifest's 5 folds (leave-one-fold-out, clip level).

The gain of our own model is measured against these, on the same folds:

* ``yamnet`` -- YAMNet zero-shot: its 521 AudioSet scores mapped onto our labels
  (:mod:`edge.yamnet.scorer`), pooled over the clip's 0.48 s patches.
* ``nmf``    -- NMF-dictionary features + logistic regression (after Bisot et
  al. 2017): a non-negative dictionary learned on training-fold log-mel frames,
  frame activations pooled per clip (mean and max), multinomial logistic regression.
* ``cnn``    -- a plain small CNN (~85 k parameters) on 1 s log-mel patches from
  :mod:`edge.features.frontend`, basic augmentation; clip = mean of patch probabilities.

Clip decision for every method: the top event label if its score passes its
threshold, else ``background``.  Thresholds (and YAMNet's pooling) are chosen
on the training folds of each split only, never on the tested fold.

Run: ``python -m edge.evaluate.references --data ../shared/data/homesounds --json docs/references.json``.
scikit-learn, torch and ai-edge-litert are imported inside the functions that use them.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.core.errors import EdgeError
from edge.corpus.metrics import clip_metrics, macro_f1

BACKGROUND = "background"
EVENT_LABELS: list[str] = [
    "smoke_alarm", "clock_alarm", "siren", "door_knock", "glass_breaking", "dog_bark", "cat_meow",
    "baby_cry", "speech", "coughing", "sneezing", "running_water", "toilet_flush", "vacuum_cleaner",
    "washing_machine", "footsteps", "keyboard_typing",
]  # fmt: skip
LABELS: list[str] = EVENT_LABELS + [BACKGROUND]
SAMPLE_RATE = 16000
METHODS = ("yamnet", "nmf", "cnn")


class DataError(EdgeError, ValueError):
    """The data folder or manifest is unusable."""


@dataclass(frozen=True)
class Clip:
    path: Path
    label: str
    fold: int


def load_manifest(data_dir: str | Path) -> list[Clip]:
    """Rows of ``DATA/manifest.csv`` with labels in :data:`LABELS` (others are an error)."""
    data_dir = Path(data_dir)
    manifest = data_dir / "manifest.csv"
    if not manifest.is_file():
        raise DataError(f"no manifest.csv in {data_dir}")
    clips = []
    with open(manifest, newline="") as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            try:
                label, fold, rel = row["label"], int(row["fold"]), row["path"]
            except (KeyError, TypeError, ValueError) as exc:
                raise DataError(f"{manifest}:{line}: bad row ({exc})") from None
            if label not in LABELS:
                raise DataError(f"{manifest}:{line}: unknown label {label!r}")
            clips.append(Clip(data_dir / rel, label, fold))
    if not clips:
        raise DataError(f"{manifest} has no rows")
    return clips


def load_audio(path: Path) -> np.ndarray:
    """Mono float32 samples at 16 kHz, ``(n_samples,)``."""
    from edge.capture.audiofile import AudioFileError, read_mono

    try:
        return read_mono(path, SAMPLE_RATE)
    except AudioFileError as e:
        raise DataError(str(e)) from None


# --- decisions and thresholds -------------------------------------------------


def decide(scores: np.ndarray, thresholds: np.ndarray) -> list[str]:
    """Event scores ``(n_clips, 17)`` -> labels: top event if ``score >= its threshold`` else background."""
    top = scores.argmax(axis=1)
    best = scores[np.arange(scores.shape[0]), top]
    return [EVENT_LABELS[t] if s >= thresholds[t] else BACKGROUND for t, s in zip(top, best, strict=True)]


def _f1_of(scores: np.ndarray, y: list[str], thr: np.ndarray) -> float:
    return clip_metrics(y, decide(scores, thr), LABELS)["macro_f1"]


def tune_thresholds(scores: np.ndarray, y: list[str], per_label: bool) -> np.ndarray:
    """Thresholds ``(17,)`` maximising macro-F1 (18 labels) on ``(scores, y)``.

    Global: one value from a quantile grid of the top scores.  Per label: start
    from the global value, then two passes of coordinate ascent, one label at a time.
    """
    top = scores.max(axis=1)
    grid = np.unique(np.concatenate(([0.0], np.quantile(top, np.linspace(0, 1, 41)))))
    best_t, best_f = 0.0, -1.0
    for t in grid:
        f = _f1_of(scores, y, np.full(len(EVENT_LABELS), t))
        if f > best_f:
            best_t, best_f = float(t), f
    thr = np.full(len(EVENT_LABELS), best_t)
    if not per_label:
        return thr
    for _ in range(2):
        for j in range(len(EVENT_LABELS)):
            cand = np.unique(np.concatenate(([0.0, thr[j]], np.quantile(scores[:, j], np.linspace(0, 1, 26)))))
            for t in cand:
                trial = thr.copy()
                trial[j] = t
                f = _f1_of(scores, y, trial)
                if f > best_f + 1e-12:
                    best_f, thr = f, trial
    return thr


def summarise(y_true: list[str], y_pred: list[str]) -> dict:
    """clip_metrics plus macro-F1 without background and background recall."""
    m = clip_metrics(y_true, y_pred, LABELS)
    m["macro_f1_no_background"] = macro_f1(m["per_class"], [x for x in m["macro_f1_labels"] if x != BACKGROUND])
    m["background_recall"] = m["per_class"][BACKGROUND]["recall"]
    return m


def cross_validate(
    clips: list[Clip], predict_fold: Callable[[np.ndarray, np.ndarray], tuple[list[str], dict]]
) -> dict:
    """Leave-one-fold-out: ``predict_fold(train_idx, test_idx) -> (predictions, info)`` per fold.

    Returns per-fold metrics, their mean, and metrics of all out-of-fold predictions pooled.
    """
    folds = np.array([c.fold for c in clips])
    y = [c.label for c in clips]
    pooled_pred: list[str | None] = [None] * len(clips)
    per_fold = {}
    for k in sorted(set(folds.tolist())):
        test_idx, train_idx = np.flatnonzero(folds == k), np.flatnonzero(folds != k)
        t0 = time.perf_counter()
        pred, info = predict_fold(train_idx, test_idx)
        for i, p in zip(test_idx, pred, strict=True):
            pooled_pred[i] = p
        m = summarise([y[i] for i in test_idx], pred)
        m["info"] = info
        m["seconds"] = round(time.perf_counter() - t0, 1)
        per_fold[str(k)] = m
        print(
            f"  fold {k}: macro-F1 {m['macro_f1']:.3f} (no bg {m['macro_f1_no_background']:.3f}) "
            f"acc {m['accuracy']:.3f} bg-recall {m['background_recall']:.3f} [{m['seconds']} s]",
            file=sys.stderr,
        )
    keys = ("macro_f1", "macro_f1_no_background", "accuracy", "background_recall")
    mean: dict[str, Any] = {key: float(np.mean([m[key] for m in per_fold.values()])) for key in keys}
    mean["per_class_f1"] = {
        lab: float(np.mean([m["per_class"][lab]["f1"] for m in per_fold.values() if m["per_class"][lab]["support"]]))
        for lab in LABELS
    }
    return {"folds": per_fold, "mean_over_folds": mean, "pooled": summarise(y, [str(p) for p in pooled_pred])}


# --- (a) YAMNet zero-shot -----------------------------------------------------


def yamnet_patch_scores(clips: list[Clip], model: Path, cache: Path | None) -> list[np.ndarray]:
    """Per clip YAMNet scores ``(n_patches, 521)`` at 0.48 s hop (cached in ``cache`` if given)."""
    from edge.yamnet.scorer import YamnetScorer

    if cache is not None and cache.is_file():
        z = np.load(cache, allow_pickle=False)
        if list(z["paths"]) == [str(c.path) for c in clips]:
            return np.split(z["scores"], np.cumsum(z["counts"])[:-1])
    from tqdm import tqdm

    scorer = YamnetScorer(model)
    out = [scorer.score_clip(load_audio(c.path)) for c in tqdm(clips, desc="yamnet", file=sys.stderr)]
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            cache, paths=np.array([str(c.path) for c in clips]), counts=np.array([len(s) for s in out]),
            scores=np.concatenate(out),
        )  # fmt: skip
    return out


def run_yamnet(clips: list[Clip], model: Path, cache: Path | None) -> dict:
    """YAMNet zero-shot with the strict and broad label maps, per-label and global thresholds."""
    from edge.yamnet import scorer as ym

    patch_scores = yamnet_patch_scores(clips, model, cache)
    names = ym.load_class_names(model.parent / "yamnet_class_map.csv")
    y = [c.label for c in clips]
    results: dict = {
        "label_map": {k: list(v) for k, v in ym.YAMNET_LABEL_MAP.items()},
        "broad_extra": {k: list(v) for k, v in ym.YAMNET_BROAD_EXTRA.items()},
        "variants": {},
    }
    for broad in (False, True):
        imap = ym.label_index_map(names, EVENT_LABELS, broad=broad)
        mapped = [ym.mapped_scores(s, imap, EVENT_LABELS) for s in patch_scores]
        pooled = {"max": np.stack([m.max(axis=0) for m in mapped]), "mean": np.stack([m.mean(axis=0) for m in mapped])}
        for per_label in (True, False):

            def predict_fold(tr: np.ndarray, te: np.ndarray, pooled=pooled, per_label=per_label) -> tuple:
                best: tuple[float, str, np.ndarray] | None = None
                for how, s in pooled.items():  # pooling chosen on the training folds too
                    thr = tune_thresholds(s[tr], [y[i] for i in tr], per_label)
                    f = _f1_of(s[tr], [y[i] for i in tr], thr)
                    if best is None or f > best[0]:
                        best = (f, how, thr)
                assert best is not None  # pooled has two poolings, so the loop ran
                f, how, thr = best
                thresholds = dict(zip(EVENT_LABELS, thr.tolist(), strict=True))
                info = {"pooling": how, "train_macro_f1": f, "thresholds": thresholds}
                return decide(pooled[how][te], thr), info

            name = f"{'broad' if broad else 'strict'}_map/{'per_label' if per_label else 'global'}_threshold"
            print(f"yamnet {name}", file=sys.stderr)
            results["variants"][name] = cross_validate(clips, predict_fold)
    results["primary"] = "strict_map/per_label_threshold"
    results["cost"] = ym.measure_cost(ym.YamnetScorer(model), audio_s=120.0)
    return results


# --- (b) NMF dictionary + logistic regression ---------------------------------

NMF_COMPONENTS = 64
NMF_FRAME_AVG = 10  # frames averaged before NMF (100 ms slices), as Bisot et al. average short slices
NMF_TRAIN_FRAMES = 10000
NMF_ITER = 200
LR_C = 1.0


def nmf_frames(clips: list[Clip]) -> list[np.ndarray]:
    """Non-negative log-mel slices per clip ``(n_slices, 64)``: ln(mel + 1e-6) - ln(1e-6), 100 ms averages."""
    from edge.features.frontend import FrontendParams, logmel

    p = FrontendParams()
    out = []
    for c in clips:
        x = load_audio(c.path)
        if x.shape[0] < p.win_length:
            x = np.pad(x, (0, p.win_length - x.shape[0]))
        lm = logmel(x, p) - np.float32(np.log(p.log_offset))
        n = max(1, lm.shape[0] // NMF_FRAME_AVG)
        lm = lm[: n * NMF_FRAME_AVG] if lm.shape[0] >= NMF_FRAME_AVG else lm
        out.append(np.maximum(lm.reshape(n, -1, lm.shape[1]).mean(axis=1), 0.0))
    return out


def nmf_activations(x: np.ndarray, w: np.ndarray, n_iter: int = NMF_ITER, eps: float = 1e-9) -> np.ndarray:
    """Activations ``(n, K)`` >= 0 of slices ``x (n, F)`` on a fixed dictionary ``w (K, F)``.

    Multiplicative updates for the Frobenius loss (Lee & Seung), all slices at
    once: vectorised, and much faster here than scikit-learn's per-call transform.
    """
    x = x.astype(np.float32)
    w = w.astype(np.float32)
    xw, ww = x @ w.T, w @ w.T
    h = np.full((x.shape[0], w.shape[0]), float(np.sqrt(x.mean() / w.shape[0])), np.float32)
    for _ in range(n_iter):
        h *= xw / (h @ ww + eps)
    return h


def _nmf_clip_features(w: np.ndarray, frames: list[np.ndarray]) -> np.ndarray:
    counts = [len(f) for f in frames]
    h = nmf_activations(np.concatenate(frames), w)
    parts = np.split(h, np.cumsum(counts)[:-1])
    return np.log1p(np.stack([np.concatenate((p.mean(axis=0), p.max(axis=0))) for p in parts]))


def _fit_lr(x: np.ndarray, y: list[str]):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=LR_C, class_weight="balanced", max_iter=3000)).fit(
        x, y
    )


def _event_probs(model, x: np.ndarray) -> np.ndarray:
    classes = list(model.classes_)
    proba = model.predict_proba(x)
    return np.stack(
        [proba[:, classes.index(lab)] if lab in classes else np.zeros(len(x)) for lab in EVENT_LABELS], axis=1
    )


def run_nmf(clips: list[Clip], seed: int = 0) -> dict:
    """NMF dictionary on training-fold frames + logistic regression; global threshold from inner CV."""
    from sklearn.decomposition import NMF

    frames = nmf_frames(clips)
    y = [c.label for c in clips]
    folds = np.array([c.fold for c in clips])
    rng = np.random.default_rng(seed)

    def predict_fold(tr: np.ndarray, te: np.ndarray) -> tuple:
        pool = np.concatenate([frames[i] for i in tr])
        pick = rng.choice(len(pool), size=min(NMF_TRAIN_FRAMES, len(pool)), replace=False)
        nmf = NMF(n_components=NMF_COMPONENTS, init="nndsvda", solver="mu", max_iter=NMF_ITER, random_state=seed)
        nmf.fit(pool[pick])
        feats = _nmf_clip_features(nmf.components_, frames)
        # Threshold from inner leave-one-fold-out over the training folds (LR refit, dictionary kept).
        oof = np.zeros((len(tr), len(EVENT_LABELS)))
        for k in np.unique(folds[tr]):
            inner_te, inner_tr = folds[tr] == k, folds[tr] != k
            m = _fit_lr(feats[tr][inner_tr], [y[i] for i in tr[inner_tr]])
            oof[inner_te] = _event_probs(m, feats[tr][inner_te])
        thr = tune_thresholds(oof, [y[i] for i in tr], per_label=False)
        model = _fit_lr(feats[tr], [y[i] for i in tr])
        info = {"threshold": float(thr[0]), "nmf_reconstruction_err": float(nmf.reconstruction_err_)}
        return decide(_event_probs(model, feats[te]), thr), info

    print("nmf", file=sys.stderr)
    res = cross_validate(clips, predict_fold)
    res["setup"] = {
        "features": "edge.features.frontend log-mel (64 mels, 25 ms / 10 ms), ln(mel+1e-6)-ln(1e-6) >= 0, "
                    "100 ms slice averages",
        "nmf": f"sklearn NMF, {NMF_COMPONENTS} components, Frobenius, nndsvda init, multiplicative updates, "
        f"{NMF_ITER} iterations, fit on {NMF_TRAIN_FRAMES} random training-fold slices; activations of every "
        f"slice on the fixed dictionary by {NMF_ITER} multiplicative updates",
        "pooling": "per clip: log1p(mean and max of activations) -> 128 features",
        "classifier": f"StandardScaler + multinomial LogisticRegression(C={LR_C}, class_weight=balanced), 18 classes",
        "threshold": "one global threshold on the top event probability, from inner leave-one-fold-out "
        "predictions on the training folds",
    }
    return res


# --- (c) small CNN --------------------------------------------------------------

PATCH_FRAMES = 100  # 1.0 s of 10 ms frames
EVAL_HOP_FRAMES = 50
BATCH = 16  # small batches: more updates in the few epochs the CPU budget allows
MAX_LR = 4e-3


def _cnn(n_out: int):
    import torch.nn as nn

    def block(cin: int, cout: int, pool: bool) -> list:
        layers = [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
        return layers + ([nn.MaxPool2d(2)] if pool else [])

    return nn.Sequential(
        *block(1, 16, True), *block(16, 32, True), *block(32, 64, True), *block(64, 96, False),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.3), nn.Linear(96, n_out),
    )  # fmt: skip


def cnn_macs(model, frames: int = PATCH_FRAMES, mels: int = 64) -> int:
    """Multiply-accumulates of one patch through the conv and linear layers."""
    import torch
    import torch.nn as nn

    total = 0

    def hook(mod, inp, out) -> None:
        nonlocal total
        if isinstance(mod, nn.Conv2d):
            total += out.numel() * mod.in_channels * mod.kernel_size[0] * mod.kernel_size[1] // mod.groups
        elif isinstance(mod, nn.Linear):
            total += mod.in_features * mod.out_features

    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 1, frames, mels))
    for h in hs:
        h.remove()
    return total


def run_cnn(clips: list[Clip], epochs: int, seed: int = 0) -> dict:
    """Small CNN on 1 s log-mel patches, softmax over 18 classes; clip = mean of patch probabilities."""
    import torch
    from tqdm import tqdm

    from edge.features.frontend import FrontendParams, logmel

    torch.set_num_threads(1)
    p = FrontendParams()
    floor = float(np.log(p.log_offset))
    mels = []
    for c in clips:
        lm = logmel(load_audio(c.path), p)
        if lm.shape[0] < PATCH_FRAMES:  # short events: pad with digital silence
            lm = np.concatenate((lm, np.full((PATCH_FRAMES - lm.shape[0], p.n_mels), floor, np.float32)))
        mels.append(lm)
    y = np.array([LABELS.index(c.label) for c in clips])
    bg = LABELS.index(BACKGROUND)

    def patches_of(lm: np.ndarray) -> np.ndarray:
        starts = list(range(0, lm.shape[0] - PATCH_FRAMES + 1, EVAL_HOP_FRAMES))
        if starts[-1] != lm.shape[0] - PATCH_FRAMES:
            starts.append(lm.shape[0] - PATCH_FRAMES)
        return np.stack([lm[s : s + PATCH_FRAMES] for s in starts])

    def predict_fold(tr: np.ndarray, te: np.ndarray) -> tuple:
        rng = np.random.default_rng(seed)
        torch.manual_seed(seed)
        allf = np.concatenate([mels[i] for i in tr])
        mu, sd = float(allf.mean()), float(allf.std())
        model = _cnn(len(LABELS))
        counts = np.bincount(y[tr], minlength=len(LABELS)).astype(np.float64)
        w = 1.0 / np.sqrt(counts[y[tr]])  # sampling weights: imbalance softened, not equalised
        opt = torch.optim.AdamW(model.parameters(), lr=MAX_LR, weight_decay=1e-3)
        steps_per_epoch = int(np.ceil(len(tr) / BATCH))
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=MAX_LR, total_steps=epochs * steps_per_epoch)
        lossf = torch.nn.CrossEntropyLoss()
        for ep in range(epochs):
            model.train()
            order = rng.choice(tr, size=len(tr), replace=True, p=w / w.sum())
            bar = tqdm(range(steps_per_epoch), desc=f"cnn ep {ep + 1}/{epochs}", file=sys.stderr, leave=False)
            for b in bar:
                idx = order[b * BATCH : (b + 1) * BATCH]
                xb = np.empty((len(idx), PATCH_FRAMES, p.n_mels), np.float32)
                for j, i in enumerate(idx):
                    lm = mels[i]
                    s = rng.integers(0, lm.shape[0] - PATCH_FRAMES + 1)  # time shift
                    xb[j] = lm[s : s + PATCH_FRAMES] + 2.0 * np.log(10 ** (rng.uniform(-10, 6) / 20))  # gain
                    t0, f0 = rng.integers(0, PATCH_FRAMES - 12), rng.integers(0, p.n_mels - 8)
                    xb[j, t0 : t0 + rng.integers(0, 12)] = floor  # SpecAugment: one time, one freq mask
                    xb[j, :, f0 : f0 + rng.integers(0, 8)] = floor
                xt = torch.from_numpy((np.maximum(xb, floor) - mu) / sd).unsqueeze(1)
                loss = lossf(model(xt), torch.from_numpy(y[idx]))
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                bar.set_postfix(loss=f"{loss.item():.3f}")
        model.eval()

        def clip_probs(ids: np.ndarray) -> np.ndarray:
            out = []
            with torch.no_grad():
                for i in ids:
                    xt = torch.from_numpy((patches_of(mels[i]) - mu) / sd).unsqueeze(1)
                    out.append(torch.softmax(model(xt), dim=1).mean(dim=0).numpy())
            return np.stack(out)

        probs = clip_probs(te)
        ev = [i for i in range(len(LABELS)) if i != bg]
        # Rule: the top event wins if its probability is at least background's (argmax over 18):
        # the threshold is the learned background class, fitted on the training folds only.
        pred = [LABELS[ev[int(np.argmax(r[ev]))]] if r[ev].max() >= r[bg] else BACKGROUND for r in probs]
        return pred, {"epochs": epochs}

    model = _cnn(len(LABELS))
    print("cnn", file=sys.stderr)
    res = cross_validate(clips, predict_fold)
    res["setup"] = {
        "params": int(sum(t.numel() for t in model.parameters())),
        "macs_per_patch": cnn_macs(model),
        "input": "1.0 s patch = 100 x 64 log-mel frames from edge.features.frontend (25 ms window, 10 ms hop)",
        "architecture": "4 x [conv3x3-BN-ReLU] (16, 32, 64, 96 ch), 3 max-pools, global average, dropout 0.3, "
        "linear 18",
        "training": f"{epochs} epochs, batch {BATCH}, AdamW one-cycle max lr {MAX_LR}, wd 1e-3, one random "
        "1 s crop per drawn clip, clips drawn with p ~ 1/sqrt(class count), torch threads 1",
        "augmentation": "random time shift (crop), gain -10..+6 dB, one time mask <= 11 frames, "
        "one freq mask <= 7 mels",
        "decision": "clip = mean softmax over 1 s patches at 0.5 s hop; top event if its probability >= background's",
    }
    return res


# --- report ---------------------------------------------------------------------


def _primary(results: dict, method: str) -> dict | None:
    r = results.get(method)
    if r is None:
        return None
    return r["variants"][r["primary"]] if method == "yamnet" else r


def render_markdown(results: dict) -> str:
    """Summary table and per-class F1 table (mean over folds) of the methods present."""
    names = {"yamnet": "YAMNet zero-shot (mapped labels)", "nmf": "NMF + logistic regression", "cnn": "small CNN"}
    rows = ["| method | macro-F1 (18) | macro-F1 (17, no bg) | accuracy | background recall | pooled macro-F1 |",
            "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    done = [m for m in METHODS if m in results]

    def primary(method: str) -> dict:
        r = _primary(results, method)
        assert r is not None  # only called for methods in ``done``
        return r

    for m in done:
        variants = {"": primary(m)}
        if m == "yamnet":
            variants = {f" — {k}": v for k, v in results[m]["variants"].items()}
        for suffix, r in variants.items():
            mm = r["mean_over_folds"]
            rows.append(
                f"| {names[m]}{suffix} | {mm['macro_f1']:.3f} | {mm['macro_f1_no_background']:.3f} | "
                f"{mm['accuracy']:.3f} | {mm['background_recall']:.3f} | {r['pooled']['macro_f1']:.3f} |"
            )
    rows += ["", "Per-fold macro-F1 (18 labels):", "", "| method | " + " | ".join(f"fold {k}" for k in "12345") + " |",
             "|---|" + "---:|" * 5]  # fmt: skip
    for m in done:
        r = primary(m)
        rows.append(f"| {m} | " + " | ".join(f"{r['folds'][k]['macro_f1']:.3f}" for k in sorted(r["folds"])) + " |")
    rows += ["", "Per-class F1, mean over the folds where the class occurs:", "",
             "| label | " + " | ".join(done) + " |", "|---|" + "---:|" * len(done)]  # fmt: skip
    for lab in LABELS:
        rows.append(f"| {lab} | " + " | ".join(f"{primary(m)['mean_over_folds']['per_class_f1'][lab]:.3f}"
                                               for m in done) + " |")  # fmt: skip
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m edge.evaluate.references", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="folder with manifest.csv (e.g. ../shared/data/homesounds)")
    ap.add_argument("--json", required=True, help="results file; methods already in it are kept unless re-run")
    ap.add_argument("--methods", default="yamnet,nmf,cnn", help="comma list of yamnet,nmf,cnn")
    ap.add_argument("--yamnet", default=None, help="yamnet.tflite (default ../shared/models/yamnet/yamnet.tflite)")
    ap.add_argument("--yamnet-cache", default=None, help="optional .npz cache of YAMNet patch scores")
    ap.add_argument("--cnn-epochs", type=int, default=15)
    ap.add_argument("--md", default=None, help="also write the markdown tables here")
    args = ap.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = [m for m in methods if m not in METHODS]
    if bad:
        print(f"references: unknown method {bad[0]!r} (choose from {', '.join(METHODS)})", file=sys.stderr)
        return 2
    try:
        clips = load_manifest(args.data)
    except DataError as exc:
        print(f"references: {exc}", file=sys.stderr)
        return 2
    out = Path(args.json)
    results = json.loads(out.read_text()) if out.is_file() else {}
    try:
        for m in methods:
            t0 = time.perf_counter()
            if m == "yamnet":
                from edge.yamnet.scorer import DEFAULT_YAMNET_PATH, yamnet_available

                model = Path(args.yamnet) if args.yamnet else DEFAULT_YAMNET_PATH
                reason = yamnet_available(model)
                if reason:
                    print(f"references: skipping yamnet: {reason}", file=sys.stderr)
                    continue
                r = run_yamnet(clips, model, Path(args.yamnet_cache) if args.yamnet_cache else None)
            elif m == "nmf":
                r = run_nmf(clips)
            else:
                r = run_cnn(clips, args.cnn_epochs)
            r["command"] = "python -m edge.evaluate.references " + " ".join(argv if argv is not None else sys.argv[1:])
            r["wall_s"] = round(time.perf_counter() - t0, 1)
            results[m] = r
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(results, indent=1) + "\n")  # after each method: partial runs are kept
    except DataError as exc:
        print(f"references: {exc}", file=sys.stderr)
        return 2
    results["clip_counts"] = {lab: sum(c.label == lab for c in clips) for lab in LABELS}
    results["cpu"] = {"threads": 1, "host_cpus": os.cpu_count()}
    out.write_text(json.dumps(results, indent=1) + "\n")
    if args.md:
        Path(args.md).write_text(render_markdown(results))
    print(render_markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Clip-level evaluation: run the shipped ONNX model exactly as the runtime does.

For each clip of a manifest (``path,label,...``; paths relative to the
manifest's folder): compute the front end's log-mel, score every window with
:class:`edge.model.classifier.Classifier` (one call per block; clips shorter than a
window are padded with the silence floor), pool the window scores over the
clip, and predict the top label if its pooled score passes that label's
threshold, else ``background``.

Runtime-safe: numpy + onnxruntime (+ soundfile/soxr to read audio); matplotlib
only for ``--plot``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.core.errors import EdgeError
from edge.corpus.metrics import metrics
from edge.model.clip_decision import BACKGROUND, decide, pool_scores


class EvalError(EdgeError, ValueError):
    """Bad manifest or audio; the message is one line for the user."""


@dataclass(frozen=True)
class ManifestClip:
    path: Path
    label: str


def read_eval_manifest(path: str | Path) -> list[ManifestClip]:
    """Rows ``(absolute path, label)`` of a manifest CSV with at least ``path`` and ``label`` columns."""
    from edge.corpus.manifest import ManifestError, read_rows

    try:
        p, raw = read_rows(path)
    except ManifestError as e:
        raise EvalError(str(e)) from None
    return [ManifestClip(p.parent / r["path"], r["label"]) for _, r in raw]


def read_audio(path: Path, sr: int) -> np.ndarray:
    """Mono float32 samples at ``sr`` Hz (see :func:`edge.capture.audiofile.read_mono`)."""
    from edge.capture.audiofile import AudioFileError, read_mono

    try:
        return read_mono(path, sr)
    except AudioFileError as e:
        raise EvalError(str(e)) from None


def clip_window_scores(classifier, audio: np.ndarray) -> np.ndarray:
    """Window scores ``(n_windows, n_labels)`` of one clip through the runtime classifier."""
    from edge.features.frontend import logmel

    mel = logmel(audio, classifier.contract.frontend)
    scores, _ = classifier.score_frames(mel)
    return scores


def evaluate_clips(model_path: str | Path, clips: Sequence[ManifestClip], pooling: str | None = None,
                   progress: Callable[[int, int], None] | None = None) -> dict:
    """Evaluate ``model_path`` on ``clips``; labels the model does not know are skipped and listed."""
    from edge.detect.settings import check_model_detector
    from edge.model.classifier import Classifier

    clf = Classifier(model_path)
    c = clf.contract
    check_model_detector(c)  # unused here, but a broken model is refused by every command alike
    labels = list(c.labels)
    known = set(labels) | {BACKGROUND}
    pooling = pooling or str(c.extra.get("clip_pooling", "max"))
    thr = np.array([c.threshold(lab) for lab in labels], np.float32)
    skipped: dict[str, int] = {}
    truth: list[str] = []
    pooled: list[np.ndarray] = []
    paths: list[str] = []
    for k, clip in enumerate(clips):
        if clip.label not in known:
            skipped[clip.label] = skipped.get(clip.label, 0) + 1
            continue
        audio = read_audio(clip.path, c.frontend.sample_rate)
        pooled.append(pool_scores(clip_window_scores(clf, audio), pooling))
        truth.append(clip.label)
        paths.append(str(clip.path))
        if progress:
            progress(k + 1, len(clips))
    scores = np.stack(pooled) if pooled else np.zeros((0, len(labels)), np.float32)
    pred = decide(scores, labels, thr)
    classes = sorted({*truth, *pred} - {BACKGROUND}) + [BACKGROUND]
    out = metrics(truth, pred, classes)
    out.update({
        "model": str(model_path),
        "model_version": c.model_version,
        "pooling": pooling,
        "thresholds": {lab: float(t) for lab, t in zip(labels, thr, strict=True)},
        "skipped_labels": dict(sorted(skipped.items())),
        "n_skipped": int(sum(skipped.values())),
        "predictions": [{"path": p, "label": t, "predicted": q} for p, t, q in zip(paths, truth, pred, strict=True)],
    })
    return out


def format_report(res: dict) -> str:
    lines = [
        f"model {res['model']} ({res['model_version']}), pooling {res['pooling']}",
        f"clips {res['n_clips']}  accuracy {res['accuracy']:.3f}  macro-F1 {res['macro_f1']:.3f}",
        f"{'class':<18}{'prec':>7}{'rec':>7}{'F1':>7}{'support':>9}",
    ]
    for c, m in res["per_class"].items():
        lines.append(f"{c:<18}{m['precision']:>7.3f}{m['recall']:>7.3f}{m['f1']:>7.3f}{m['support']:>9d}")
    if res.get("skipped_labels"):
        s = ", ".join(f"{k} ({v})" for k, v in res["skipped_labels"].items())
        lines.append(f"skipped labels the model does not know: {s}")
    labs = res["confusion"]["labels"]
    short = [lab[:6] for lab in labs]
    lines.append("confusion (rows = truth, columns = predicted):")
    lines.append(" " * 18 + "".join(f"{s:>7}" for s in short))
    for lab, row in zip(labs, res["confusion"]["matrix"], strict=True):
        lines.append(f"{lab:<18}" + "".join(f"{v:>7d}" for v in row))
    return "\n".join(lines)


def plot_confusion(res: dict, path: str | Path) -> None:
    """Write the confusion matrix as a PNG (needs matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise EvalError("--plot needs matplotlib (pip install edge-listener[eval])") from None
    labs = res["confusion"]["labels"]
    m = np.array(res["confusion"]["matrix"], dtype=float)
    norm = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1 + 0.5 * len(labs), 1 + 0.45 * len(labs)))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labs)), labs, rotation=90)
    ax.set_yticks(range(len(labs)), labs)
    for i in range(len(labs)):
        for j in range(len(labs)):
            if m[i, j]:
                ax.text(j, i, str(int(m[i, j])), ha="center", va="center", fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("truth")
    ax.set_title(f"macro-F1 {res['macro_f1']:.3f}, accuracy {res['accuracy']:.3f}")
    fig.tight_layout()
    fig.savefig(str(path), dpi=100)
    plt.close(fig)

"""YAMNet as a teacher: its AudioSet scores for every training crop, as an auxiliary target.

A training crop is one model window: 96 frames = 15600 samples, which is
exactly one YAMNet input patch. So the teacher's view of a crop starting at
frame ``f`` is YAMNet run on samples ``[f * hop_length, f * hop_length +
15600)`` of the clean clip. Scores are computed once per clip at a stride of
``stride_frames`` frames (the nearest patch stands in for the crop) and cached
on disk by clip path, so cross-validation folds share them.

What the student learns from it: not our labels (YAMNet's mapped scores did
not help in an earlier trial) but the whole AudioSet picture of a sound, in
particular what the *background* clips are (rain, engines, laughter, ...), on
an auxiliary head that is dropped at export. YAMNet is never shipped.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from edge.train.data import ClipSet

#: Frames between teacher patches (8 frames = 80 ms at a 10 ms hop).
STRIDE_FRAMES = 8


def _key(clips: ClipSet, i: int) -> str | None:
    row = clips.rows[i] if clips.rows else None
    if row is None:
        return None
    return f"{row.corpus}/{row.path}" if row.corpus else str(row.path)  # corpora may share relative paths


def clip_teacher_scores(scorer: object, audio: np.ndarray, hop_length: int, crop_samples: int,
                        stride_frames: int = STRIDE_FRAMES) -> np.ndarray:
    """YAMNet scores ``(n_patches, 521)`` of patches starting every ``stride_frames`` frames.

    Patch ``k`` starts at sample ``k * stride_frames * hop_length``; clips
    shorter than a patch give one zero-padded patch (as the crop sampler pads).
    """
    x = np.asarray(audio, dtype=np.float32)
    step = stride_frames * hop_length
    n = 1 if x.shape[0] <= crop_samples else 1 + (x.shape[0] - crop_samples) // step
    padded = np.zeros(max(x.shape[0], crop_samples), np.float32)
    padded[: x.shape[0]] = x
    return np.stack([scorer.score_patch(padded[k * step : k * step + crop_samples])  # type: ignore[attr-defined]
                     for k in range(n)]).astype(np.float16)


def _cache_file(clips: ClipSet, i: int, cache: Path, hop_length: int) -> Path | None:
    key = _key(clips, i)
    if key is None:
        return None
    name = hashlib.sha1(f"{key}|{clips.audio[i].shape[0]}|{STRIDE_FRAMES}|{hop_length}".encode()).hexdigest()
    return cache / f"{name}.npy"


def cache_complete(clips: ClipSet, cache_dir: str | Path, hop_length: int) -> bool:
    """True when every clip with a manifest row has cached teacher scores (YAMNet itself is not needed)."""
    files = [_cache_file(clips, i, Path(cache_dir), hop_length) for i in range(len(clips))]
    return all(f is None or f.exists() for f in files)


def teacher_scores(clips: ClipSet, cache_dir: str | Path, hop_length: int, crop_samples: int,
                   yamnet_path: str | Path | None = None, progress: bool = True) -> list[np.ndarray | None]:
    """Per clip, YAMNet scores ``(n_patches, 521)`` float16 (None for clips without a manifest row).

    Cached in ``cache_dir`` (one ``.npy`` per clip, named by a hash of its
    path and length); YAMNet is only loaded when something is missing.
    """
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    out: list[np.ndarray | None] = []
    scorer = None
    todo = [i for i in range(len(clips)) if _key(clips, i) is not None]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc="teacher (YAMNet)", leave=False, unit="clip")
    for i in range(len(clips)):
        f = _cache_file(clips, i, cache, hop_length)
        if f is None:
            out.append(None)
            continue
        if f.exists():
            out.append(np.load(f))
        else:
            if scorer is None:
                from edge.yamnet.scorer import DEFAULT_YAMNET_PATH, YamnetScorer

                scorer = YamnetScorer(yamnet_path or DEFAULT_YAMNET_PATH)
            s = clip_teacher_scores(scorer, clips.audio[i], hop_length, crop_samples)
            _save_atomic(f, s)
            out.append(s)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return out


def _save_atomic(f: Path, s: np.ndarray) -> None:
    # Two trainings (e.g. cross-validation folds in parallel) share one cache:
    # a reader must never see a half-written file, so write aside and rename.
    tmp = f.with_name(f"{f.stem}.{os.getpid()}.tmp.npy")
    np.save(tmp, s)
    os.replace(tmp, f)


def select_classes(scores: list[np.ndarray | None], min_peak: float = 0.2) -> np.ndarray:
    """Indices of the AudioSet classes that reach ``min_peak`` somewhere in the training clips."""
    peaks = np.max(np.stack([s.max(axis=0) for s in scores if s is not None]).astype(np.float32), axis=0)
    return np.nonzero(peaks >= min_peak)[0]

"""The distillation teacher's targets line up with the crops the student is trained on.

The scorer here is a stand-in that reports *where* its patch came from (so the
alignment can be checked exactly); the real YAMNet path is covered by
``test_teacher_scores_from_yamnet_are_cached`` when the model is present.
"""

from __future__ import annotations

import numpy as np
import pytest

from edge.features.frontend import FrontendParams
from edge.train.data import BACKGROUND, ClipSet, Row

pytest.importorskip("torch", reason="training needs the 'train' extra (torch)")

FP = FrontendParams()
CROP = 96
CROP_SAMPLES = (CROP - 1) * FP.hop_length + FP.win_length  # 15600 = one YAMNet patch


def _row(path: str) -> Row:
    return Row(path, "x", 1, 1.0, "test", "CC0-1.0", path)


class WhereScorer:
    """Scores ``[first sample, patch length, 0, ...]``: the audio is a ramp, so the first sample is its index."""

    def score_patch(self, patch: np.ndarray) -> np.ndarray:
        out = np.zeros(4, np.float32)
        out[0] = patch[0]
        out[1] = patch.shape[0]
        return out


def test_teacher_patches_start_every_stride_and_cover_one_model_window() -> None:
    from edge.train.teacher import clip_teacher_scores

    ramp = np.arange(40000, dtype=np.float32)
    s = clip_teacher_scores(WhereScorer(), ramp, FP.hop_length, CROP_SAMPLES, stride_frames=8)
    assert CROP_SAMPLES == 15600
    assert s.shape == (1 + (40000 - 15600) // 1280, 4)
    np.testing.assert_array_equal(s[:, 1], 15600)
    # float16 storage: compare the patch starts with its resolution
    np.testing.assert_allclose(s[:, 0].astype(np.float64), np.arange(s.shape[0]) * 8 * FP.hop_length, rtol=1e-3)
    short = clip_teacher_scores(WhereScorer(), ramp[:5000], FP.hop_length, CROP_SAMPLES)
    assert short.shape[0] == 1


def test_batch_teacher_target_is_the_patch_nearest_the_crop_start() -> None:
    from edge.train.augment import AugmentParams, BatchMaker

    rng = np.random.default_rng(0)
    n_frames = 300
    mels = [rng.normal(-5, 1, (n_frames, FP.n_mels)).astype(np.float32) for _ in range(3)]
    # Teacher "scores" encode the patch index, so the chosen patch can be read back.
    teacher = [np.repeat(np.arange(n_frames // 8 + 1, dtype=np.float32)[:, None], 2, axis=1) + 100 * k
               for k in range(2)] + [None]
    clips = ClipSet([np.zeros(1)] * 3, ["dog_bark", "speech", BACKGROUND], ["a", "b", "c"],
                    [_row("a"), _row("b"), None], mels)
    maker = BatchMaker(clips, ("dog_bark", "speech"), CROP, FP, AugmentParams(), np.ones(3), teacher=teacher,
                       teacher_stride=8)
    idx = np.array([0, 1, 2] * 20)
    starts: list[int] = []
    maker.sampler.crops_labelled(idx, np.random.default_rng(1), starts)
    t, ok = maker._teacher(idx, starts)
    np.testing.assert_array_equal(ok, idx != 2)
    for k in np.nonzero(ok)[0]:
        assert t[k, 0] == 100 * idx[k] + round(starts[k] / 8)
    mel, y, tb, okb = maker.batch(64, np.random.default_rng(2), with_teacher=True)
    assert mel.shape == (64, CROP, FP.n_mels) and tb.shape == (64, 2) and okb.dtype == bool


def test_teacher_scores_from_yamnet_are_cached(tmp_path) -> None:  # noqa: ANN001
    pytest.importorskip("ai_edge_litert", reason="YAMNet needs the 'eval' extra (ai-edge-litert)")
    from edge.train.teacher import teacher_scores
    from edge.yamnet.scorer import yamnet_available

    reason = yamnet_available()
    if reason:
        pytest.skip(reason)
    t = np.arange(32000) / FP.sample_rate
    tone = (0.3 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    clips = ClipSet([tone, tone[:8000]], ["x", "y"], ["g", "h"], [_row("tone"), None])
    first = teacher_scores(clips, tmp_path, FP.hop_length, CROP_SAMPLES, progress=False)
    assert first[1] is None and first[0].shape == (1 + (32000 - 15600) // 1280, 521)
    assert len(list(tmp_path.iterdir())) == 1
    again = teacher_scores(clips, tmp_path, FP.hop_length, CROP_SAMPLES, progress=False)
    np.testing.assert_array_equal(first[0], again[0])


def test_a_complete_teacher_cache_stands_in_for_yamnet(tmp_path) -> None:  # noqa: ANN001
    from edge.train.teacher import _cache_file, cache_complete, teacher_scores

    clips = ClipSet([np.zeros(32000, np.float32), np.zeros(20000, np.float32), np.zeros(100, np.float32)],
                    ["x", "y", "z"], ["g", "h", "i"], [_row("a"), _row("b"), None])
    assert not cache_complete(clips, tmp_path, FP.hop_length)
    want = [np.full((3, 521), k, np.float16) for k in range(2)]
    for i in range(2):
        np.save(_cache_file(clips, i, tmp_path, FP.hop_length), want[i])
    assert cache_complete(clips, tmp_path, FP.hop_length)  # the clip without a manifest row needs no entry
    got = teacher_scores(clips, tmp_path, FP.hop_length, CROP_SAMPLES, yamnet_path=tmp_path / "missing.tflite",
                         progress=False)
    assert got[2] is None
    for g, w in zip(got[:2], want, strict=True):
        np.testing.assert_array_equal(g, w)
    # A clip of another length is another cache entry: the cache is incomplete again.
    longer = ClipSet([np.zeros(40000, np.float32)], ["x"], ["g"], [_row("a")])
    assert not cache_complete(longer, tmp_path, FP.hop_length)

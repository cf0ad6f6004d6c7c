"""Training augmentations in the mel-power domain do what their names say (pitch, time, colouring)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch", reason="training needs the 'train' extra (torch)")

from edge.features.frontend import FrontendParams, mel_band_edges_hz  # noqa: E402
from edge.train.augment import mel_power, pitch_shift_power, random_filter_db, resample_time  # noqa: E402

FP = FrontendParams()
SR = FP.sample_rate


def _tone(hz: float, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


@pytest.mark.parametrize("semitones", [-2.0, -1.0, 1.0, 2.0])
def test_pitch_shift_moves_a_tone_to_the_band_of_the_shifted_frequency(semitones: float) -> None:
    centres = mel_band_edges_hz(FP)[1:-1]
    shifted = pitch_shift_power(mel_power(_tone(3000.0), FP)[None], np.array([semitones]), FP)
    expected = mel_power(_tone(3000.0 * 2 ** (semitones / 12)), FP)
    got_band = int(shifted[0].mean(axis=0).argmax())
    assert abs(got_band - int(expected.mean(axis=0).argmax())) <= 1
    assert abs(centres[got_band] - 3000.0 * 2 ** (semitones / 12)) < 0.06 * 3000.0


def test_zero_pitch_shift_is_the_identity() -> None:
    x = np.random.default_rng(0).random((2, 96, FP.n_mels)).astype(np.float32)
    assert np.allclose(pitch_shift_power(x, np.zeros(2), FP), x, atol=1e-6)


def test_time_stretch_resamples_a_crop_onto_the_model_window() -> None:
    ramp = np.repeat(np.arange(120, dtype=np.float32)[:, None], FP.n_mels, axis=1)
    out = resample_time([ramp, ramp[:80], ramp[:96]], 96)
    assert out.shape == (3, 96, FP.n_mels)
    # A 120-frame crop squeezed into 96 frames keeps its first and last frame, evenly spaced in between.
    assert out[0, 0, 0] == 0 and out[0, -1, 0] == pytest.approx(119) and np.allclose(np.diff(out[0, :, 0]), 119 / 95)
    assert out[1, -1, 0] == pytest.approx(79) and np.array_equal(out[2], ramp[:96])


def test_random_filter_is_smooth_and_bounded() -> None:
    g = random_filter_db(200, FP.n_mels, np.random.default_rng(1), 6.0)
    assert np.abs(g).max() <= 6.0 + 1e-6 and np.ptp(g) > 6.0
    # Piecewise linear through at most 5 points: neighbouring bands differ by at most 12 dB / 12.6 bands.
    assert np.abs(np.diff(g, axis=1)).max() <= 12.0 / ((FP.n_mels - 1) / 4) + 1e-5

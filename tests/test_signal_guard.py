"""SignalGuard: NaN/inf never pass, and the digital-silence run is counted in samples."""

from __future__ import annotations

import numpy as np

from edge.capture.supervisor import SignalGuard


def test_nonfinite_samples_are_zeroed_and_counted() -> None:
    g = SignalGuard(16000, silent_after_s=1.0)
    x = np.ones(100, np.float32)
    x[[3, 50]] = np.nan
    x[70] = np.inf
    y = g.clean(x)
    assert np.isfinite(y).all() and y[3] == 0 and y[70] == 0 and y[0] == 1
    assert g.nonfinite == 3
    assert np.isnan(x[3])  # the caller's array is left alone


def test_quiet_run_counts_trailing_zeros_across_blocks() -> None:
    g = SignalGuard(1000, silent_after_s=0.5)  # silent after 500 zero samples
    block = np.zeros(300, np.float32)
    block[:100] = 0.1
    g.clean(block)
    assert g.quiet_run == 200 and not g.silent
    g.clean(np.zeros(299, np.float32))
    assert g.quiet_run == 499 and not g.silent
    g.clean(np.zeros(1, np.float32))
    assert g.silent
    g.clean(np.full(10, 1e-30, np.float32))  # tiny but non-zero: its square underflows, still sound
    assert g.quiet_run == 0 and not g.silent


def test_long_blocks_of_sound_are_never_silent() -> None:
    g = SignalGuard(48000, silent_after_s=0.5)
    rng = np.random.default_rng(0)
    for _ in range(5):
        g.clean(rng.standard_normal(48000).astype(np.float32) * 0.01)  # 1 s blocks, longer than silent_after
        assert g.quiet_run == 0 and not g.silent


def test_huge_values_take_the_exact_path() -> None:
    g = SignalGuard(1000, silent_after_s=1.0)
    x = np.array([3e38, 0.0, 0.0], np.float32)  # x.x overflows to inf, yet every sample is finite
    y = g.clean(x)
    assert g.nonfinite == 0 and y[0] == np.float32(3e38) and g.quiet_run == 2

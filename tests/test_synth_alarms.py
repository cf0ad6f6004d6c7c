"""Synthetic alarms follow ISO 8201 / NFPA 72 temporal patterns; the demo recording is reproducible."""

from __future__ import annotations

import numpy as np
import pytest

from edge.synth_alarms import AlarmVariant, beep_intervals, pattern_period, synth_alarm

SR = 16000


def _measured_beeps(x: np.ndarray, sr: int) -> list[tuple[float, float]]:
    """(on, off) seconds of the tone, from a 1 ms RMS envelope of the signal itself."""
    hop = sr // 1000
    n = x.shape[0] // hop
    env = np.sqrt((x[: n * hop].reshape(n, hop) ** 2).mean(axis=1))
    on = env > 0.3 * env.max()
    edges = np.diff(on.astype(int), prepend=0, append=0)
    starts = np.nonzero(edges == 1)[0]
    stops = np.nonzero(edges == -1)[0]
    return [(a / 1000, b / 1000) for a, b in zip(starts, stops, strict=True)]


@pytest.mark.parametrize(("kind", "beep", "gap", "n", "pause"), [("T3", 0.5, 0.5, 3, 1.5), ("T4", 0.1, 0.1, 4, 5.0)])
def test_generated_alarm_beeps_match_the_standard_timing(kind: str, beep: float, gap: float, n: int,
                                                         pause: float) -> None:
    dur = 2 * pattern_period(kind)
    x = synth_alarm(kind, dur, SR, np.random.default_rng(1), AlarmVariant(rt60_s=0.0))
    beeps = _measured_beeps(x, SR)
    assert len(beeps) == 2 * n
    tol = 0.01
    for on, off in beeps:
        assert abs((off - on) - beep) < tol
    for k in range(1, len(beeps)):
        silence = beeps[k][0] - beeps[k - 1][1]
        expected = pause if k % n == 0 else gap
        assert abs(silence - expected) < tol, (k, silence, expected)


def test_pattern_periods_are_4_and_5_7_seconds() -> None:
    assert pattern_period("T3") == pytest.approx(4.0)
    assert pattern_period("T4") == pytest.approx(5.7)
    assert beep_intervals("T3", 4.0) == pytest.approx(np.array([[0.0, 0.5], [1.0, 1.5], [2.0, 2.5]]))


@pytest.mark.parametrize("f0", [2900.0, 3500.0])
def test_alarm_tone_peaks_at_the_piezo_frequency(f0: float) -> None:
    x = synth_alarm("T3", 2.0, SR, np.random.default_rng(0), AlarmVariant(f0=f0, wobble_hz=0.0, rt60_s=0.0))
    spec = np.abs(np.fft.rfft(x))
    peak = np.argmax(spec) * SR / x.shape[0]
    assert abs(peak - f0) < 20.0


def test_unknown_pattern_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown pattern 'T5'"):
        synth_alarm("T5", 1.0, SR)


def test_committed_demo_recording_is_what_the_generator_writes(tmp_path) -> None:
    from edge.audiofile import read_audio
    from edge.demo import DEFAULT_PATH, write_demo

    fresh = write_demo(tmp_path / "demo.wav")
    assert fresh.stat().st_size <= 1_000_000
    assert DEFAULT_PATH.is_file(), "edge/data/demo.wav missing: run python -m edge.demo"
    assert DEFAULT_PATH.read_bytes() == fresh.read_bytes()
    x, sr = read_audio(fresh)
    assert sr == 16000 and 29.0 <= x.shape[0] / sr <= 31.0

"""Synthetic alarms follow ISO 8201 / NFPA 72 temporal patterns; the demo recording is reproducible."""

from __future__ import annotations

import numpy as np
import pytest

from edge.synth.alarms import AlarmVariant, beep_intervals, pattern_period, synth_alarm

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
    from edge.capture.audiofile import read_audio
    from edge.synth.demo import DEFAULT_PATH, write_demo

    fresh = write_demo(tmp_path / "demo.wav")
    assert fresh.stat().st_size <= 1_000_000
    assert DEFAULT_PATH.is_file(), "edge/data/demo.wav missing: run python -m edge.synth.demo"
    assert DEFAULT_PATH.read_bytes() == fresh.read_bytes()
    x, sr = read_audio(fresh)
    assert sr == 16000 and 29.0 <= x.shape[0] / sr <= 31.0


PATTERNS_N = {"T3": 3, "T4": 4}


@pytest.mark.parametrize("kind", ["T3", "T4"])
def test_training_example_reports_where_its_beeps_are(kind: str) -> None:
    from edge.synth.alarms import synth_alarm_example

    x, iv = synth_alarm_example(kind, 8.0, SR, np.random.default_rng(5))
    assert x.shape == (8 * SR,) and iv.shape[1] == 2 and len(iv) >= PATTERNS_N[kind]
    # Inside the beeps the 2.9-3.5 kHz band is far louder than in the pauses.
    t = np.arange(x.shape[0]) / SR
    inside = ((t[:, None] >= iv[None, :, 0]) & (t[:, None] < iv[None, :, 1])).any(axis=1)
    far = np.ones_like(inside)
    for on, off in iv:  # keep reverb tails (<= 0.9 s) out of the "pause" samples
        far &= (t < on - 0.05) | (t > off + 1.0)
    assert far.any()
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(x.shape[0], 1 / SR)
    spec[(f < 2800) | (f > 3600)] = 0
    tone = np.fft.irfft(spec, x.shape[0])
    assert np.mean(tone[inside] ** 2) > 30 * np.mean(tone[far] ** 2)


def test_room_noise_clips_are_varied_quiet_and_reproducible() -> None:
    from edge.synth.alarms import room_noise_clip

    a = [room_noise_clip(2.0, SR, np.random.default_rng(s)) for s in range(8)]
    b = room_noise_clip(2.0, SR, np.random.default_rng(0))
    assert np.array_equal(a[0], b)
    levels = [10 * np.log10(np.mean(x**2)) for x in a]
    assert all(-71.0 <= lv <= -24.0 for lv in levels) and np.ptp(levels) > 5.0
    # Spectral shape differs between draws (not one noise colour at different levels).
    tilt = [np.log(np.sum(np.abs(np.fft.rfft(x))[:1000] ** 2) / np.sum(np.abs(np.fft.rfft(x))[4000:] ** 2))
            for x in a]
    assert np.ptp(tilt) > 2.0


def test_synthetic_alarm_crops_are_labelled_only_when_they_hold_beeps() -> None:
    pytest.importorskip("torch", reason="training needs the 'train' extra (torch)")
    from edge.features.frontend import FrontendParams
    from edge.train.augment import AugmentParams, BatchMaker
    from edge.train.recipe import synthetic_alarms

    fp = FrontendParams()
    clips = synthetic_alarms(3, SR, seed=1)
    labels = ("smoke_alarm", "co_alarm")
    maker = BatchMaker(clips, labels, 96, fp, AugmentParams(), np.ones(len(clips)), 0.0, 0)
    rng = np.random.default_rng(0)
    band = slice(44, 54)  # mel bands around 3 kHz
    for lab in labels:
        idx = np.array([i for i, x in enumerate(clips.labels) if x == lab] * 40)
        x, holds = maker.sampler.crops_labelled(idx, rng)
        assert 0.6 < holds.mean() < 1.0, (lab, holds.mean())  # mostly beeps, some pause-only negatives
        loud = np.log(x[:, :, band].max(axis=(1, 2)) + 1e-12)
        # Every crop labelled as the alarm is louder in the alarm band than every pause-only crop of its clip.
        for i in np.unique(idx):
            sel = idx == i
            if holds[sel].any() and (~holds[sel]).any():
                assert loud[sel][holds[sel]].min() > loud[sel][~holds[sel]].max() - 1.0
    # Batches carry both: alarm-labelled crops and pause-only crops with an all-zero (background) target.
    _, y = maker.batch(256, rng, augment=False)
    assert set(np.unique(y)) <= {0.0, 1.0}
    assert (y.sum(axis=1) == 0).any() and (y[:, 0] == 1).any() and (y[:, 1] == 1).any()


def test_device_timings_stay_within_tolerance_or_beep_continuously_for_smoke() -> None:
    from edge.synth.alarms import PATTERNS, random_timing

    rng = np.random.default_rng(3)
    for kind in ("T3", "T4"):
        timings = [random_timing(kind, rng) for _ in range(200)]
        standard = [t for t in timings if t[2] == PATTERNS[kind][2]]
        for got in standard:
            for value, ref in zip(got, PATTERNS[kind], strict=True):
                assert 0.9 * ref - 1e-9 <= value <= 1.1 * ref + 1e-9
        continuous = [t for t in timings if t[2] == 1]
        if kind == "T4":
            assert not continuous  # a CO alarm keeps its four short beeps
        else:
            assert 60 < len(continuous) < 140  # about half
            assert all(0.15 <= beep <= 0.6 and 0.06 <= pause <= 0.6 for beep, _, _, pause in continuous)


def test_a_continuous_beeper_sounds_as_its_timing_says() -> None:
    timing = (0.25, 0.0, 1, 0.08)
    x = synth_alarm("T3", 1.95, SR, np.random.default_rng(1), AlarmVariant(rt60_s=0.0), timing=timing)
    beeps = _measured_beeps(x, SR)
    assert len(beeps) == 6  # one every 0.33 s
    assert all(abs((off - on) - 0.25) < 0.01 for on, off in beeps)
    assert all(abs(beeps[k][0] - beeps[k - 1][1] - 0.08) < 0.01 for k in range(1, len(beeps)))
    assert beep_intervals("T3", 1.95, timing=timing) == pytest.approx(np.array(beeps), abs=0.01)

"""Alarm pattern check: T3/T4 cycles confirm; other rhythms, tones and speech-like noise do not."""

from __future__ import annotations

import numpy as np
import pytest

from edge.core.events import Event
from edge.detect.alarm_pattern import T3, T4, AlarmConfirmer, AlarmGate, confirm_pattern
from edge.features.frontend import FrontendParams, LogMelStream, logmel
from edge.synth import alarms as sa

P = FrontendParams()
SR = P.sample_rate


def _noise(n: int, rng: np.random.Generator, level: float = 0.005) -> np.ndarray:
    return (level * rng.standard_normal(n)).astype(np.float32)


def _gated_tone(on_off: list[tuple[float, float]], total_s: float, f0: float = 3150.0) -> np.ndarray:
    t = np.arange(int(total_s * SR)) / SR
    env = np.zeros_like(t)
    for a, b in on_off:
        env[(t >= a) & (t < b)] = 1.0
    return (0.3 * env * np.sin(2 * np.pi * f0 * t)).astype(np.float32)


def _alarm(kind: str, seconds: float, seed: int, rt60: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = sa.AlarmVariant(f0=float(rng.uniform(2900, 3500)), rt60_s=rt60, level_dbfs=-10.0)
    x = sa.synth_alarm(kind, seconds, SR, rng, v, start_s=1.0)
    return x + _noise(x.shape[0], rng)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_synthetic_t3_confirms_as_t3_only(seed: int) -> None:
    L = logmel(_alarm("T3", 9.0, seed), P)
    at = confirm_pattern(L, P, T3)
    # Cycle starts at 1.0 s: three beeps end at 3.5 s, confirmed once the pause has lasted pause_min_s.
    assert at == pytest.approx(3.5 + T3.pause_min_s, abs=0.1)
    assert confirm_pattern(L, P, T4) is None


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_synthetic_t4_confirms_as_t4_only(seed: int) -> None:
    L = logmel(_alarm("T4", 9.0, seed, rt60=0.2), P)
    at = confirm_pattern(L, P, T4)
    assert at == pytest.approx(1.7 + T4.pause_min_s, abs=0.1)
    assert confirm_pattern(L, P, T3) is None


def test_other_beeping_patterns_tone_and_speech_like_noise_are_not_confirmed() -> None:
    rng = np.random.default_rng(5)
    cases = {
        # continuous 0.5 s / 0.5 s beeping (no pause): a reversing beeper, not T3
        "continuous 0.5/0.5": _gated_tone([(0.5 + k, 1.0 + k) for k in range(10)], 11.0),
        # two beeps then a pause, repeated
        "two beeps": _gated_tone([(1 + 4 * c + k, 1.5 + 4 * c + k) for c in range(2) for k in (0, 1)], 10.0),
        # clock-alarm style: 4 short beeps, 0.5 s pause (too short for T4), repeated
        "clock 4x0.1 + 0.5": _gated_tone([(0.5 + 1.2 * c + 0.2 * k, 0.6 + 1.2 * c + 0.2 * k)
                                         for c in range(7) for k in range(4)], 10.0),
        # 0.25 s beeps (wrong length for both)
        "0.25 s beeps": _gated_tone([(1 + 4 * c + 0.5 * k, 1.25 + 4 * c + 0.5 * k)
                                    for c in range(2) for k in range(3)], 10.0),
        "continuous tone": _gated_tone([(0.5, 9.5)], 10.0),
    }
    # speech-like: noise shaped by a 4 Hz syllable envelope
    t = np.arange(10 * SR) / SR
    syll = np.clip(np.sin(2 * np.pi * 4 * t) + 0.3 * rng.standard_normal(t.size).cumsum() / 300, 0, None)
    cases["speech-like noise"] = (0.2 * syll * rng.standard_normal(t.size)).astype(np.float32)
    for name, x in cases.items():
        L = logmel(x + _noise(x.shape[0], rng), P)
        assert confirm_pattern(L, P, T3) is None, name
        assert confirm_pattern(L, P, T4) is None, name


def test_streaming_confirmer_matches_offline_check_for_any_chunking() -> None:
    x = _alarm("T3", 10.0, 3)
    rng = np.random.default_rng(0)
    mel = LogMelStream(P)
    conf = AlarmConfirmer(P, T3)
    pos, first = 0, None
    while pos < x.shape[0]:
        n = int(rng.integers(1, 6000))
        frames = mel.push(x[pos : pos + n])
        pos += n
        t = mel.frames_emitted / P.frame_rate
        if conf.update(frames, t) and first is None:
            first = conf.confirmed_at
    assert first == pytest.approx(3.5 + T3.pause_min_s, abs=0.1)


def _ev(label: str, state: str, onset: float, offset: float | None, eid: str) -> Event:
    return Event(eid, label, state, onset, offset, onset, offset, 0.9, 0.8, -20.0, "t")


def test_gate_holds_alarm_onset_until_pattern_or_fallback_and_drops_short_unconfirmed() -> None:
    g = AlarmGate(P, ["smoke_alarm"], fallback_s=5.0)
    silence = logmel(_noise(SR, np.random.default_rng(0)), P)
    g.push_frames(silence, 1.0)
    # Other labels pass straight through.
    assert [e.id for e in g.filter([_ev("dog_bark", "on", 0.2, None, "d")], 1.0)] == ["d"]
    # An unconfirmed smoke_alarm onset is held, then dropped with its offset before the fallback time.
    assert g.filter([_ev("smoke_alarm", "on", 1.0, None, "s1")], 1.2) == []
    assert g.filter([_ev("smoke_alarm", "off", 1.0, 3.0, "s1")], 3.0) == []
    assert g.suppressed == 1
    # A long classifier-only event fires at the fallback time, with its original onset.
    assert g.filter([_ev("smoke_alarm", "on", 10.0, None, "s2")], 10.2) == []
    out = g.filter([], 15.1)
    assert [(e.id, e.state, e.onset) for e in out] == [("s2", "on", 10.0)]
    assert [e.state for e in g.filter([_ev("smoke_alarm", "off", 10.0, 20.0, "s2")], 20.0)] == ["off"]
    # A real T3 cycle confirms it early.
    g2 = AlarmGate(P, ["smoke_alarm"], fallback_s=60.0)
    x = _alarm("T3", 6.0, 4)
    assert g2.filter([_ev("smoke_alarm", "on", 1.2, None, "s3")], 1.5) == []
    g2.push_frames(logmel(x, P), 6.0)
    assert [e.id for e in g2.filter([], 6.0)] == ["s3"] and g2.confirmed == 1

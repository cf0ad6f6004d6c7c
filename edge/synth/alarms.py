"""Synthetic smoke (T3) and CO (T4) alarm sounds: runtime-safe numpy only.

Temporal patterns follow ISO 8201 / NFPA 72:

* **T3** (smoke): three 0.5 s beeps separated by 0.5 s gaps, then a 1.5 s pause
  (period 4.0 s).
* **T4** (CO): four 0.1 s beeps separated by 0.1 s gaps, then a ~5 s pause
  (period 5.7 s).

The tone is a piezo horn: a fundamental of 2.9-3.5 kHz plus harmonics (only
those below the Nyquist frequency are kept), with short attack/release ramps
and a slight frequency wobble. Used by the training recipe (to add ``co_alarm``
and strengthen ``smoke_alarm``) and by :mod:`edge.synth.demo`.

All signals are float32 mono in [-1, 1] at ``sr`` Hz; times are in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.detect.labels import ALARM_PATTERN_NAMES

#: (beep_s, gap_s, n_beeps, pause_s) per pattern.
PATTERNS: dict[str, tuple[float, float, int, float]] = {
    "T3": (0.5, 0.5, 3, 1.5),
    "T4": (0.1, 0.1, 4, 5.0),
}
#: Which contract label each pattern trains.
PATTERN_LABEL = {pattern: label for label, pattern in ALARM_PATTERN_NAMES.items()}
#: ``(beep_s, gap_s, n_beeps, pause_s)``: a pattern's timing (``PATTERNS[kind]`` or a device's variant of it).
Timing = tuple[float, float, int, float]


def pattern_period(kind: str, timing: Timing | None = None) -> float:
    """Length in seconds of one repetition of ``kind`` (beeps, gaps and pause)."""
    beep, gap, n, pause = timing or PATTERNS[kind]
    return n * beep + (n - 1) * gap + pause


def random_timing(kind: str, rng: np.random.Generator, p_continuous: float = 0.5) -> Timing:
    """A device's timing of ``kind``: the standard one within +-10 % (the standards' tolerance), or,
    for smoke alarms with probability ``p_continuous``, continuous beeping.

    Many smoke alarms in homes (older ones, models sold outside North America)
    do not sound T3 but beep continuously: one 0.15-0.6 s beep every
    0.2-1.2 s. CO alarms keep T4's four short beeps (continuous beeps of at
    least 0.15 s stay smoke-like, so the two labels remain distinct).
    """
    beep, gap, n, pause = PATTERNS[kind]
    if kind == "T3" and rng.random() < p_continuous:
        return float(rng.uniform(0.15, 0.6)), 0.0, 1, float(rng.uniform(0.06, 0.6))
    j = rng.uniform(0.9, 1.1, 3)
    return float(beep * j[0]), float(gap * j[1]), n, float(pause * j[2])


def beep_intervals(kind: str, duration_s: float, start_s: float = 0.0, timing: Timing | None = None) -> np.ndarray:
    """``(n, 2)`` array of beep ``[on, off)`` times in seconds within ``[0, duration_s)``.

    The first pattern repetition starts at ``start_s`` (may be negative to
    begin mid-pattern). ``timing`` overrides ``PATTERNS[kind]``.
    """
    beep, gap, n, _ = timing or PATTERNS[kind]
    period = pattern_period(kind, timing)
    first = int(np.floor(-start_s / period)) if start_s < 0 else 0
    reps = np.arange(first, int(np.ceil((duration_s - start_s) / period)) + 1)
    on = (start_s + reps[:, None] * period + np.arange(n)[None, :] * (beep + gap)).reshape(-1)
    iv = np.stack([on, on + beep], axis=1)
    keep = (iv[:, 1] > 0) & (iv[:, 0] < duration_s)
    return np.clip(iv[keep], 0.0, duration_s)


def beep_envelope(kind: str, n_samples: int, sr: int, start_s: float = 0.0, ramp_s: float = 0.004,
                  timing: Timing | None = None) -> np.ndarray:
    """Gate ``(n_samples,)`` in [0, 1]: 1 during beeps, linear ramps of ``ramp_s`` at the edges."""
    t = np.arange(n_samples, dtype=np.float64) / sr
    env = np.zeros(n_samples, dtype=np.float64)
    for on, off in beep_intervals(kind, n_samples / sr, start_s, timing):
        # Distance (s) inside the beep from its nearest edge -> trapezoid.
        inside = np.minimum(t - on, off - t)
        env = np.maximum(env, np.clip(inside / ramp_s, 0.0, 1.0))
    return env.astype(np.float32)


@dataclass(frozen=True)
class AlarmVariant:
    """One alarm device/room: tone, harmonics, level and room."""

    f0: float = 3150.0            # Hz, piezo fundamental
    harmonics: tuple[float, ...] = (1.0, 0.3)  # amplitude of f0, 2*f0, 3*f0, ...
    level_dbfs: float = -12.0     # peak level of the dry tone
    wobble_hz: float = 15.0       # slow frequency wobble depth
    rt60_s: float = 0.0           # room reverb (0 = dry)
    wet: float = 0.3              # reverb mix


def random_variant(rng: np.random.Generator) -> AlarmVariant:
    n_h = int(rng.integers(1, 4))
    harm = (1.0,) + tuple(float(rng.uniform(0.05, 0.5)) for _ in range(n_h - 1))
    return AlarmVariant(
        f0=float(rng.uniform(2900.0, 3500.0)),
        harmonics=harm,
        level_dbfs=float(rng.uniform(-35.0, -3.0)),
        wobble_hz=float(rng.uniform(0.0, 40.0)),
        rt60_s=float(rng.choice([0.0, rng.uniform(0.15, 0.7)])),
        wet=float(rng.uniform(0.1, 0.5)),
    )


def synthetic_rir(rng: np.random.Generator, sr: int, rt60_s: float) -> np.ndarray:
    """Room impulse response: exponentially decaying Gaussian noise, unit energy.

    The decay reaches -60 dB after ``rt60_s`` seconds; length ``rt60_s`` (>= 10 ms).
    """
    n = max(int(rt60_s * sr), int(0.01 * sr))
    t = np.arange(n) / sr
    rir = rng.standard_normal(n) * np.exp(-6.9078 * t / max(rt60_s, 1e-3))
    rir[0] = abs(rir[0]) + 1.0  # direct path
    return (rir / np.sqrt(np.sum(rir**2))).astype(np.float32)


def apply_reverb(x: np.ndarray, rir: np.ndarray, wet: float) -> np.ndarray:
    """Mix ``x`` with its convolution by ``rir`` (same length as ``x``), energy kept."""
    n = x.shape[-1] + rir.shape[-1] - 1
    nfft = 1 << (n - 1).bit_length()
    y = np.fft.irfft(np.fft.rfft(x, nfft) * np.fft.rfft(rir, nfft), nfft)[..., : x.shape[-1]]
    out = (1.0 - wet) * x + wet * y
    gain = np.sqrt((np.sum(x**2) + 1e-12) / (np.sum(out**2) + 1e-12))
    return (out * gain).astype(np.float32)


def piezo_tone(n_samples: int, sr: int, v: AlarmVariant, rng: np.random.Generator) -> np.ndarray:
    """Continuous piezo tone ``(n_samples,)`` with peak 1 (harmonics above Nyquist dropped)."""
    t = np.arange(n_samples) / sr
    wobble = v.wobble_hz * np.sin(2 * np.pi * rng.uniform(0.5, 4.0) * t + rng.uniform(0, 2 * np.pi))
    phase = 2 * np.pi * np.cumsum(v.f0 + wobble) / sr
    y = np.zeros(n_samples)
    for k, a in enumerate(v.harmonics, start=1):
        if k * (v.f0 + v.wobble_hz) < 0.48 * sr:
            y += a * np.sin(k * phase)
    return (y / (np.max(np.abs(y)) + 1e-12)).astype(np.float32)


def synth_alarm(kind: str, duration_s: float, sr: int = 16000, rng: np.random.Generator | None = None,
                variant: AlarmVariant | None = None, start_s: float = 0.0, timing: Timing | None = None) -> np.ndarray:
    """A T3/T4 alarm of ``duration_s`` seconds, float32 ``(round(duration_s*sr),)``, no background.

    ``timing`` overrides the pattern's standard timing (see :func:`random_timing`).
    """
    if kind not in PATTERNS:
        raise ValueError(f"synth_alarm: unknown pattern {kind!r} (expected one of {sorted(PATTERNS)})")
    rng = rng or np.random.default_rng(0)
    v = variant or AlarmVariant()
    n = int(round(duration_s * sr))
    y = piezo_tone(n, sr, v, rng) * beep_envelope(kind, n, sr, start_s, timing=timing)
    if v.rt60_s > 0:
        y = apply_reverb(y, synthetic_rir(rng, sr, v.rt60_s), v.wet)
    peak = np.max(np.abs(y)) + 1e-12
    return (y / peak * 10 ** (v.level_dbfs / 20)).astype(np.float32)


def colored_noise(n_samples: int, rng: np.random.Generator, exponent: float) -> np.ndarray:
    """Noise with power spectrum ~ 1/f**exponent (0 white, 1 pink, 2 brown), unit RMS."""
    spec = rng.standard_normal(n_samples // 2 + 1) + 1j * rng.standard_normal(n_samples // 2 + 1)
    f = np.arange(spec.shape[0], dtype=np.float64)
    f[0] = 1.0
    y = np.fft.irfft(spec / f ** (exponent / 2), n_samples)
    return (y / (np.std(y) + 1e-12)).astype(np.float32)


def synth_alarm_example(kind: str, duration_s: float, sr: int, rng: np.random.Generator,
                        timing: Timing | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A random training variant and its beep ``[on, off)`` intervals in seconds ``(n, 2)``.

    Random device/room, random pattern phase, light coloured-noise floor. The
    intervals are the dry beeps, so training can label a crop by whether it
    holds beep energy (the pauses are only room noise). ``timing``: see :func:`random_timing`.
    """
    v = random_variant(rng)
    start = -float(rng.uniform(0, pattern_period(kind, timing) * 0.6))
    y = synth_alarm(kind, duration_s, sr, rng, v, start_s=start, timing=timing)
    noise_db = v.level_dbfs - float(rng.uniform(15.0, 45.0))
    y = y + colored_noise(y.shape[0], rng, float(rng.uniform(0.0, 2.0))) * 10 ** (noise_db / 20)
    return np.clip(y, -1.0, 1.0).astype(np.float32), beep_intervals(kind, duration_s, start, timing)


def _band_noise(n: int, sr: int, rng: np.random.Generator, lo_hz: float, hi_hz: float) -> np.ndarray:
    """Gaussian noise band-limited to ``[lo_hz, hi_hz]`` (FFT mask), unit RMS."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / sr)
    spec[(f < lo_hz) | (f > hi_hz)] = 0.0
    y = np.fft.irfft(spec, n)
    return (y / (np.std(y) + 1e-12)).astype(np.float32)


#: Components :func:`room_noise_clip` draws from.
ROOM_NOISE_KINDS = ("pink", "brown", "white", "hum", "fan", "fridge", "clatter", "tone")


def room_noise_clip(duration_s: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Synthetic room tone with no event: a random mix of noise-floor components, float32 in [-1, 1].

    Always a pink/brown/white floor, plus (each at random) mains hum (50 or 60 Hz
    and harmonics), a fan (band-limited noise with blade-rate amplitude
    modulation and a blade-pass tone), a fridge compressor (100/120 Hz buzz),
    faint clatter bursts, and a *continuous* 2-4 kHz tone (a steady whistle or
    test tone: not an alarm, whose beeps have gaps). RMS level -70..-25 dBFS.
    Used as ``background`` (all-negative) training clips.
    """
    n = int(round(duration_s * sr))
    t = np.arange(n) / sr
    x = colored_noise(n, rng, float(rng.choice([0.0, 1.0, 2.0, rng.uniform(0.5, 2.0)])))
    x *= 10 ** (rng.uniform(-12.0, 0.0) / 20)
    if rng.random() < 0.5:
        x += colored_noise(n, rng, float(rng.uniform(1.0, 2.0))) * 10 ** (rng.uniform(-12.0, 0.0) / 20)
    if rng.random() < 0.5:  # mains hum
        f0 = float(rng.choice([50.0, 60.0]))
        for k in range(1, int(rng.integers(2, 7))):
            x += np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 2 * np.pi)) * 10 ** (rng.uniform(-30.0, -3.0) / 20)
    if rng.random() < 0.4:  # fan: broadband whoosh modulated at the blade rate + blade-pass tone
        hi = float(rng.uniform(800.0, 6000.0))
        rate = float(rng.uniform(2.0, 30.0))
        am = 1.0 + rng.uniform(0.05, 0.5) * np.sin(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi))
        g = 10 ** (rng.uniform(-6.0, 6.0) / 20)
        x += _band_noise(n, sr, rng, float(rng.uniform(20.0, 200.0)), hi) * am * g
        x += np.sin(2 * np.pi * rng.uniform(30.0, 300.0) * t) * 10 ** (rng.uniform(-24.0, -6.0) / 20)
    if rng.random() < 0.3:  # fridge / compressor buzz
        f0 = float(rng.choice([100.0, 120.0]))
        buzz = sum(np.sign(np.sin(2 * np.pi * f0 * k * t)) / k for k in (1, 2, 3))
        x += buzz * 10 ** (rng.uniform(-24.0, -6.0) / 20)
    if rng.random() < 0.3:  # clatter: short decaying noise bursts
        for onset in rng.uniform(0.0, max(duration_s - 0.15, 0.01), int(rng.integers(1, 6))):
            m = int(rng.uniform(0.02, 0.12) * sr)
            i = int(onset * sr)
            burst = rng.standard_normal(m) * np.exp(-np.arange(m) / (rng.uniform(0.005, 0.03) * sr))
            x[i:i + m] += (burst * 10 ** (rng.uniform(0.0, 15.0) / 20))[: n - i]
    if rng.random() < 0.3:  # continuous tone (no on/off pattern)
        v = random_variant(rng)
        v = AlarmVariant(f0=float(rng.uniform(2000.0, 4000.0)), harmonics=v.harmonics, wobble_hz=v.wobble_hz)
        x += piezo_tone(n, sr, v, rng) * 10 ** (rng.uniform(0.0, 20.0) / 20)
    x = x / (np.sqrt(np.mean(x**2)) + 1e-12) * 10 ** (rng.uniform(-70.0, -25.0) / 20)
    return np.clip(x, -1.0, 1.0).astype(np.float32)


def steady_tone_clip(duration_s: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A continuous 2-4 kHz piezo-like tone (no on/off pattern) in light room noise, float32 in [-1, 1].

    Not an alarm: smoke/CO alarms beep (T3, T4 or fast beeping), so training
    uses these as ``background`` to keep "a 3 kHz tone is present" from being
    enough for an alarm label. Random level -35..-3 dBFS, slow level drift, room reverb.
    """
    n = int(round(duration_s * sr))
    v = random_variant(rng)
    v = AlarmVariant(f0=float(rng.uniform(2000.0, 4000.0)), harmonics=v.harmonics, level_dbfs=v.level_dbfs,
                     wobble_hz=v.wobble_hz, rt60_s=v.rt60_s, wet=v.wet)
    t = np.arange(n) / sr
    drift = 1.0 + rng.uniform(0.0, 0.3) * np.sin(2 * np.pi * rng.uniform(0.05, 0.5) * t + rng.uniform(0, 2 * np.pi))
    y = piezo_tone(n, sr, v, rng) * drift
    if v.rt60_s > 0:
        y = apply_reverb(y.astype(np.float32), synthetic_rir(rng, sr, v.rt60_s), v.wet)
    y = y / (np.max(np.abs(y)) + 1e-12) * 10 ** (v.level_dbfs / 20)
    noise_db = v.level_dbfs - float(rng.uniform(15.0, 45.0))
    y = y + colored_noise(n, rng, float(rng.uniform(0.0, 2.0))) * 10 ** (noise_db / 20)
    return np.clip(y, -1.0, 1.0).astype(np.float32)

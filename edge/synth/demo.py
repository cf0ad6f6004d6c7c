"""Generate the demo recording ``edge/data/demo.wav`` with the project's own code only.

~30 s of synthetic room noise (pink + brown noise, 50 Hz mains hum with
harmonics, faint kitchen clatter) with a T3 smoke alarm (about 3-11 s) and a
T4 CO alarm (about 16-28 s), 16 kHz mono 16-bit, deterministic (fixed seed).
No third-party audio is involved. ``python -m edge.synth.demo [OUT.wav]`` regenerates it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from edge.core.paths import demo_recording
from edge.synth.alarms import AlarmVariant, colored_noise, pattern_period, synth_alarm

SR = 16000
DURATION_S = 30.0
SEED = 20261125
DEFAULT_PATH = demo_recording()
#: (pattern, start s, repetitions): where the alarms sound in the demo.
ALARMS = (("T3", 3.0, 2), ("T4", 16.0, 2))


def _db(x: float) -> float:
    return float(10 ** (x / 20))


def room_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Room tone: pink + brown noise, mains hum (50 Hz and harmonics), faint clatter; float32."""
    t = np.arange(n) / SR
    x = colored_noise(n, rng, 1.0) * _db(-50) + colored_noise(n, rng, 2.0) * _db(-46)
    for k, lvl in ((1, -52), (2, -58), (3, -56), (5, -62)):
        x += np.sin(2 * np.pi * 50.0 * k * t + rng.uniform(0, 2 * np.pi)) * _db(lvl)
    # Clatter: short decaying noise bursts (cutlery, a cup) at random times.
    for onset in np.sort(rng.uniform(0.5, n / SR - 0.5, 9)):
        m = int(rng.uniform(0.03, 0.12) * SR)
        burst = rng.standard_normal(m) * np.exp(-np.arange(m) / (0.015 * SR)) * _db(rng.uniform(-40, -30))
        i = int(onset * SR)
        x[i:i + m] += burst[: n - i]
    return x.astype(np.float32)


def demo_signal() -> np.ndarray:
    """The demo recording as float32 ``(DURATION_S * SR,)`` in [-1, 1]."""
    rng = np.random.default_rng(SEED)
    n = int(DURATION_S * SR)
    x = room_noise(n, rng)
    variants = {"T3": AlarmVariant(f0=3150.0, harmonics=(1.0, 0.25), level_dbfs=-14.0, rt60_s=0.4, wet=0.3),
                "T4": AlarmVariant(f0=3350.0, harmonics=(1.0, 0.2), level_dbfs=-16.0, rt60_s=0.4, wet=0.3)}
    for kind, start, reps in ALARMS:
        dur = reps * pattern_period(kind)
        a = synth_alarm(kind, dur, SR, rng, variants[kind])
        i = int(start * SR)
        x[i:i + a.shape[0]] += a[: n - i]
    return np.clip(x, -1.0, 1.0).astype(np.float32)


def write_demo(path: str | Path = DEFAULT_PATH) -> Path:
    from edge.capture.audiofile import write_wav

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    return write_wav(p, demo_signal(), SR, "s16")


if __name__ == "__main__":
    out = write_demo(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_PATH)
    print(f"wrote {out} ({out.stat().st_size} bytes)")

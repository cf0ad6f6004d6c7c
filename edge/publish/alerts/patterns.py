"""Alert patterns: parsing, the built-in rules, and rendering a pattern as audio or as on/off steps.

A pattern is a string of steps ``HZ:SECONDS`` separated by spaces; ``0:SECONDS``
is a pause. The earcon plays the tones; a vibration motor or an LED plays the
rhythm (a tone step = on, a pause = off; adjacent tone steps merge into one
"on"). Pure functions, numpy only.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

#: A parsed pattern: ``(frequency Hz, duration s)`` per step; frequency 0 = pause.
Steps = tuple[tuple[float, float], ...]

#: Longest pattern accepted (s): an earcon is a cue, not a song.
MAX_PATTERN_S = 10.0
#: Raised-cosine ramp at each tone's start and end (s): no clicks in an earpiece.
RAMP_S = 0.005
#: Lowest and highest tone (Hz) an earpiece reproduces usefully.
MIN_HZ, MAX_HZ = 50.0, 12000.0


class PatternError(ValueError):
    """A pattern string that cannot be played; ``str(err)`` says why (the caller adds file and key)."""


def parse_pattern(text: str) -> Steps:
    """``"880:0.12 0:0.06 1320:0.2"`` -> ``((880.0, 0.12), (0.0, 0.06), (1320.0, 0.2))``.

    Raises :class:`PatternError` for a malformed step, a duration <= 0, a tone
    outside [50, 12000] Hz, no tone at all, or more than :data:`MAX_PATTERN_S` in all.
    """
    steps = []
    for token in text.split():
        hz_s, sep, dur_s = token.partition(":")
        try:
            if not sep:
                raise ValueError
            hz, dur = float(hz_s), float(dur_s)
        except ValueError:
            raise PatternError(f"step {token!r}: expected HZ:SECONDS, e.g. 880:0.12") from None
        if not dur > 0:
            raise PatternError(f"step {token!r}: the duration must be > 0 s")
        if hz != 0 and not MIN_HZ <= hz <= MAX_HZ:
            raise PatternError(f"step {token!r}: a tone must be {MIN_HZ:g}-{MAX_HZ:g} Hz (0 = a pause)")
        steps.append((hz, dur))
    if not any(hz > 0 for hz, _ in steps):
        raise PatternError("no tone in the pattern")
    total = sum(d for _, d in steps)
    if total > MAX_PATTERN_S:
        raise PatternError(f"{total:g} s long; at most {MAX_PATTERN_S:g} s")
    return tuple(steps)


def pattern_seconds(steps: Steps) -> float:
    """Length of a pattern in seconds."""
    return float(sum(d for _, d in steps))


def on_off(steps: Steps) -> list[tuple[bool, float]]:
    """The rhythm for a motor or an LED: ``(on, seconds)`` runs, adjacent equal states merged, no trailing pause."""
    runs: list[tuple[bool, float]] = []
    for hz, dur in steps:
        on = hz > 0
        if runs and runs[-1][0] == on:
            runs[-1] = (on, runs[-1][1] + dur)
        else:
            runs.append((on, dur))
    while runs and not runs[-1][0]:
        runs.pop()
    return runs


def render(steps: Steps, sample_rate: int, volume: float) -> np.ndarray:
    """The pattern as float32 samples ``(n,)`` at ``sample_rate`` Hz, peak ``volume`` (1 = full scale).

    Each tone is a sine with :data:`RAMP_S` raised-cosine ramps at its edges;
    tones above 0.45 x ``sample_rate`` (no room below Nyquist) are left silent.
    """
    parts = []
    for hz, dur in steps:
        n = max(1, int(round(dur * sample_rate)))
        if hz <= 0 or hz >= 0.45 * sample_rate:
            parts.append(np.zeros(n, np.float32))
            continue
        t = np.arange(n, dtype=np.float64) / sample_rate
        y = np.sin(2.0 * np.pi * hz * t)
        r = min(int(RAMP_S * sample_rate), n // 2)
        if r > 0:
            ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(r) / r)
            y[:r] *= ramp
            y[n - r :] *= ramp[::-1]
        parts.append((volume * y).astype(np.float32))
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


# -- built-in rules -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Rule:
    """A resolved rule (every field concrete); see :class:`edge.publish.alerts.settings.AlertRule`."""

    label: str
    steps: Steps
    wav: str | None
    priority: str
    min_interval_s: float
    repeat_s: float
    outputs: tuple[str, ...] | None  # None = every enabled output


#: The built-in rules, as config-style mappings (merged under the configuration's ``alerts.rules``).
#: Patterns echo the sound: smoke = three beeps (T3), CO = four quick beeps (T4), glass = a falling
#: shatter, baby = a rising call, knock = knock-knock; the rhythms differ too, for a vibration motor.
BUILTIN_RULES: dict[str, dict[str, object]] = {
    "all": {"priority": "normal", "min_interval_s": 10.0, "repeat_s": 0.0},
    "safety": {"priority": "urgent", "min_interval_s": 0.0, "repeat_s": 3.0},
    "smoke_alarm": {"pattern": "1760:0.15 0:0.08 1760:0.15 0:0.08 1760:0.15"},
    "co_alarm": {"pattern": "1320:0.07 0:0.05 1320:0.07 0:0.05 1320:0.07 0:0.05 1320:0.07"},
    "glass_breaking": {"pattern": "2640:0.06 0:0.03 1980:0.06 0:0.03 1320:0.25"},
    "baby_cry": {"pattern": "660:0.2 0:0.05 880:0.2 0:0.05 1100:0.2"},
    "door_knock": {"pattern": "880:0.1 0:0.12 880:0.1"},
}

#: Notes (Hz) of a pentatonic scale the automatic patterns are drawn from.
_SCALE = (523.25, 587.33, 659.25, 783.99, 880.0, 1046.5, 1174.66, 1318.51)


def auto_pattern(label: str) -> str:
    """A stable two-note pattern for a label without one (a taught sound, say), different across labels.

    Derived from a CRC of the name, so the same label always sounds the same, on every device.
    """
    h = zlib.crc32(label.encode("utf-8"))
    a = _SCALE[h % len(_SCALE)]
    b = _SCALE[(h // len(_SCALE)) % len(_SCALE)]
    if b == a:
        b = _SCALE[(h + 3) % len(_SCALE)]
    long_first = (h >> 16) & 1
    da, db = (0.2, 0.1) if long_first else (0.1, 0.2)
    return f"{a:g}:{da} 0:0.06 {b:g}:{db}"

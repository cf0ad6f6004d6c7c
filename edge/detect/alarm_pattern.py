"""Alarm pattern confirmation: does the 2.5-4 kHz band beep in the T3 (smoke) or T4 (CO) rhythm?

Runtime-safe (numpy only). Works on the log-mel frames the front end already
computes, so it costs a few vector operations per block.

Signal path (frame rate = ``sample_rate / hop_length``, 100 Hz by default):

1. **Band envelope**: power in the mel bands whose centre lies in
   ``[band_lo_hz, band_hi_hz]`` (dB), and that power's share of all bands.
2. **On/off segmentation**: a frame is *on* when its band level is within
   ``on_drop_db`` of the loudest band level in the history (95th percentile),
   at least ``min_contrast_db`` above the quiet level (10th percentile), and the
   band holds at least ``min_share`` of the frame's power (a piezo tone does;
   speech, music and broadband noise mostly do not). Runs of on frames are
   beeps; off runs shorter than ``merge_s`` are bridged.
3. **Pattern match** (ISO 8201 / NFPA 72): ``n_beeps`` beeps of ``beep_s`` with
   ``gap_s`` gaps (each within ``tol`` relative tolerance, at least
   ``abs_tol_s``), followed by a pause of at least ``pause_min_s`` and not
   preceded by another beep closer than ``pause_min_s``. So one full cycle
   confirms; a continuous beeper (no pause), a tone (no gaps) and other rhythms
   do not.

How the detector uses it (see :class:`AlarmGate`): the classifier's onset of
``smoke_alarm``/``co_alarm`` is *held* until the pattern of that label is
confirmed (then it is emitted with its original onset time) or until the
classifier has kept the event alive for ``fallback_s`` seconds (then it fires
on the classifier alone, so recall does not depend on the DSP check). An
event that ends before either is dropped, with its offset.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from edge.core.events import Event
from edge.detect.labels import ALARM_PATTERN_NAMES
from edge.features.frontend import FrontendParams, mel_band_edges_hz


@dataclass(frozen=True)
class Pattern:
    """A temporal beep pattern. Times in seconds."""

    name: str
    beep_s: float
    gap_s: float
    n_beeps: int
    pause_s: float
    pause_min_s: float
    tol: float = 0.4
    abs_tol_s: float = 0.05

    def ok(self, measured: float, nominal: float) -> bool:
        return abs(measured - nominal) <= max(self.tol * nominal, self.abs_tol_s)


#: T3 (smoke): 3 x 0.5 s beeps, 0.5 s gaps, 1.5 s pause. T4 (CO): 4 x 0.1 s, 0.1 s gaps, ~5 s pause.
#: The minimum pause is below nominal so a cycle confirms as soon as the pause is evident.
T3 = Pattern("T3", beep_s=0.5, gap_s=0.5, n_beeps=3, pause_s=1.5, pause_min_s=1.0)
T4 = Pattern("T4", beep_s=0.1, gap_s=0.1, n_beeps=4, pause_s=5.0, pause_min_s=1.5)
LABEL_PATTERNS: dict[str, Pattern] = {lab: {"T3": T3, "T4": T4}[name] for lab, name in ALARM_PATTERN_NAMES.items()}


@dataclass(frozen=True)
class BandParams:
    """Band and segmentation settings (Hz, dB, seconds, fraction)."""

    band_lo_hz: float = 2500.0
    band_hi_hz: float = 4000.0
    on_drop_db: float = 8.0
    min_contrast_db: float = 12.0
    min_share: float = 0.3
    merge_s: float = 0.03
    history_s: float = 14.0


def mel_centres_hz(p: FrontendParams) -> np.ndarray:
    """Centre frequency (Hz) of each mel band of the front end, ``(n_mels,)``."""
    return mel_band_edges_hz(p)[1:-1]


def band_envelope(logmel: np.ndarray, p: FrontendParams, b: BandParams = BandParams()) -> tuple[np.ndarray, np.ndarray]:
    """``(level_db, share)`` per frame from log-mel frames ``(n_frames, n_mels)``.

    ``level_db``: 10 log10 of the summed mel power in the band; ``share``: band
    power / power of all bands, in [0, 1].
    """
    c = mel_centres_hz(p)
    sel = (c >= b.band_lo_hz) & (c <= b.band_hi_hz)
    if not sel.any():
        raise ValueError(f"no mel band centred in {b.band_lo_hz:g}-{b.band_hi_hz:g} Hz for this front end")
    power = np.exp(logmel.astype(np.float64)) - p.log_offset
    power = np.maximum(power, 0.0)
    band = power[:, sel].sum(axis=1)
    total = power.sum(axis=1)
    level = 10.0 * np.log10(band + 1e-12)
    share = band / (total + 1e-12)
    return level, share


def segment_beeps(level_db: np.ndarray, share: np.ndarray, frame_rate: float,
                  b: BandParams = BandParams()) -> np.ndarray:
    """On-runs of the band envelope as ``(n, 2)`` ``[start_s, end_s)`` times (from frame 0)."""
    if level_db.size == 0:
        return np.zeros((0, 2))
    hi = float(np.percentile(level_db, 95))
    lo = float(np.percentile(level_db, 10))
    if hi - lo < b.min_contrast_db:
        return np.zeros((0, 2))
    on = (level_db >= max(hi - b.on_drop_db, lo + b.min_contrast_db)) & (share >= b.min_share)
    edges = np.diff(np.concatenate(([0], on.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    if starts.size == 0:
        return np.zeros((0, 2))
    merge = int(round(b.merge_s * frame_rate))
    keep_s, keep_e = [starts[0]], [ends[0]]
    for s, e in zip(starts[1:], ends[1:], strict=True):
        if s - keep_e[-1] <= merge:
            keep_e[-1] = e
        else:
            keep_s.append(s)
            keep_e.append(e)
    return np.stack([np.array(keep_s), np.array(keep_e)], axis=1) / frame_rate


def match_pattern(beeps: np.ndarray, pat: Pattern, observed_until_s: float) -> float | None:
    """End time (s) of the first beep group of ``beeps`` that follows ``pat``, else None.

    Args:
        beeps: ``(n, 2)`` beep ``[start, end)`` times, ascending.
        observed_until_s: time up to which the envelope has been seen (the pause
            after the last beep counts only up to here).
    Returns the time at which the cycle is confirmed: the group's last beep end + ``pause_min_s``.
    """
    n = pat.n_beeps
    for i in range(0, beeps.shape[0] - n + 1):
        grp = beeps[i : i + n]
        dur = grp[:, 1] - grp[:, 0]
        gaps = grp[1:, 0] - grp[:-1, 1]
        if not all(pat.ok(float(d), pat.beep_s) for d in dur):
            continue
        if not all(pat.ok(float(g), pat.gap_s) for g in gaps):
            continue
        if i > 0 and grp[0, 0] - beeps[i - 1, 1] < pat.pause_min_s:
            continue  # part of a longer beep train
        nxt = beeps[i + n, 0] if i + n < beeps.shape[0] else observed_until_s
        if nxt - grp[-1, 1] >= pat.pause_min_s:
            return float(grp[-1, 1] + pat.pause_min_s)
    return None


def confirm_pattern(logmel: np.ndarray, p: FrontendParams, pat: Pattern,
                    b: BandParams = BandParams()) -> float | None:
    """Offline check of a whole log-mel sequence; time (s from frame 0) of confirmation or None."""
    level, share = band_envelope(logmel, p, b)
    beeps = segment_beeps(level, share, p.frame_rate, b)
    return match_pattern(beeps, pat, logmel.shape[0] / p.frame_rate)


class AlarmConfirmer:
    """Streaming pattern check over the last ``history_s`` seconds of log-mel frames.

    ``update(frames, t)`` takes the newly computed log-mel frames ``(n, n_mels)``
    and the stream time ``t`` (s) at the end of the last of them; returns True
    while a pattern cycle has been confirmed within the history.
    """

    def __init__(self, params: FrontendParams, pattern: Pattern, band: BandParams = BandParams(),
                 check_every_s: float = 0.2) -> None:
        self.params, self.pattern, self.band = params, pattern, band
        self.n_hist = int(round(band.history_s * params.frame_rate))
        self._level = np.full(self.n_hist, np.nan)
        self._share = np.zeros(self.n_hist)
        self._filled = 0
        self._since_check = 0
        self._check_frames = max(1, int(round(check_every_s * params.frame_rate)))
        self.confirmed_at: float | None = None
        self.t = 0.0

    def reset(self) -> None:
        self._level[:] = np.nan
        self._filled = 0
        self.confirmed_at = None

    def update(self, frames: np.ndarray, t: float) -> bool:
        self.t = t
        if frames.shape[0]:
            lv, sh = band_envelope(frames[-self.n_hist :], self.params, self.band)
            k = lv.shape[0]
            self._level = np.roll(self._level, -k)
            self._share = np.roll(self._share, -k)
            self._level[-k:] = lv
            self._share[-k:] = sh
            self._filled = min(self.n_hist, self._filled + k)
            self._since_check += k
        if self._since_check >= self._check_frames:
            self._since_check = 0
            n = self._filled
            lv, sh = self._level[-n:], self._share[-n:]
            beeps = segment_beeps(lv, sh, self.params.frame_rate, self.band)
            span = n / self.params.frame_rate
            at = match_pattern(beeps, self.pattern, span)
            if at is not None:
                self.confirmed_at = t - span + at
        if self.confirmed_at is not None and t - self.confirmed_at > self.band.history_s:
            self.confirmed_at = None  # the confirmed cycle has left the history
        return self.confirmed_at is not None


class AlarmGate:
    """Holds the detector's alarm onsets until the beep pattern confirms them (or ``fallback_s`` passes).

    Hook (two calls in the listener loop):

    * ``gate.push_frames(new_logmel_frames, t_end_s)`` wherever new log-mel frames are computed;
    * ``events = gate.filter(detector_events, t_end_s)`` on every detector output before emitting,
      and ``gate.filter(detector.flush(), t_end_s, final=True)`` at end of stream.

    Labels not in ``patterns`` pass through untouched. A held onset is emitted
    (unchanged, with its true onset time) when the pattern is confirmed, or when
    the event has been active ``fallback_s`` seconds; if its offset arrives first,
    both are dropped. ``fallback_s = None`` = never fire without confirmation.
    """

    def __init__(self, params: FrontendParams, labels: Iterable[str], fallback_s: float | None = 10.0,
                 patterns: Mapping[str, Pattern] = LABEL_PATTERNS, band: BandParams = BandParams()) -> None:
        self.fallback_s = fallback_s
        self.confirmers = {lab: AlarmConfirmer(params, patterns[lab], band) for lab in labels if lab in patterns}
        self._held: dict[str, Event] = {}
        self._passed: set[str] = set()
        self.suppressed = 0
        self.confirmed = 0
        self.fallbacks = 0

    def push_frames(self, frames: np.ndarray, t: float) -> None:
        for c in self.confirmers.values():
            c.update(frames, t)

    def filter(self, events: Iterable[Event], t: float, final: bool = False) -> list[Event]:
        out: list[Event] = []
        for ev in events:
            if ev.label not in self.confirmers:
                out.append(ev)
            elif ev.state == "on":
                self._held[ev.id] = ev
            elif ev.id in self._passed:
                self._passed.discard(ev.id)
                out.append(ev)
            else:
                held = self._held.pop(ev.id, None)
                if held is not None and self._release(held, t if not final else ev.offset or t) is not None:
                    out += [held, ev]
                else:
                    self.suppressed += 1
        for eid, ev in list(self._held.items()):
            if self._release(ev, t) is not None:
                del self._held[eid]
                self._passed.add(eid)
                out.append(ev)
        return out

    def _release(self, ev: Event, t: float) -> str | None:
        c = self.confirmers[ev.label]
        if c.confirmed_at is not None:
            self.confirmed += 1
            return "pattern"
        if self.fallback_s is not None and t - ev.onset >= self.fallback_s:
            self.fallbacks += 1
            return "fallback"
        return None


"""Training-time augmentation and batch building, in the mel-power domain (vectorised numpy).

Each clip's features are computed once with the runtime front end
(:func:`edge.features.frontend.logmel`) and kept as linear mel power
``exp(logmel) - log_offset``, shape ``(n_frames, n_mels)``. Augmenting there
is ~50x cheaper than recomputing the STFT of every augmented waveform, which
matters on a shared 2-core machine; the approximations are standard:

* gain: power times ``10**(dB/10)``;
* mixing (background at 0-20 dB SNR, a second event, a noise floor): powers
  add (the cross term has zero mean for independent sources);
* room reverberation: each band's power envelope convolved with an
  exponentially decaying RIR power envelope (synthetic exponentially decaying
  noise RIR, -60 dB after RT60), mixed with the dry signal;
* time shift/crop: event-energy-aware choice of a 96-frame crop;
* time stretch: a crop of ``96 * r`` frames resampled to 96 (linear
  interpolation along time; duration changes, pitch does not);
* pitch shift: each mel band takes the power the source had at its centre
  frequency divided by the shift factor (interpolated between bands);
* microphone/room colouring ("FilterAugment"): a smooth random gain curve
  over the bands (piecewise linear in dB);
* SpecAugment: time and frequency masks on the log-mel.

A training example is one model window (96 frames = 0.975 s) with a multi-hot target.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import overload

import numpy as np

from edge.features.frontend import FrontendParams, hz_to_mel, logmel, mel_band_edges_hz
from edge.synth.alarms import colored_noise
from edge.train.data import BACKGROUND, ClipSet
from edge.train.teacher import STRIDE_FRAMES


@dataclass(frozen=True)
class AugmentParams:
    gain_db: tuple[float, float] = (-18.0, 6.0)
    p_reverb: float = 0.2
    rt60_s: tuple[float, float] = (0.15, 0.8)
    wet: tuple[float, float] = (0.2, 0.7)
    p_background: float = 0.4
    snr_db: tuple[float, float] = (0.0, 20.0)
    p_mix_event: float = 0.1
    p_noise: float = 0.2
    noise_db_below: tuple[float, float] = (10.0, 50.0)
    #: time stretch: probability and range of the factor r (a crop of 96 * r frames becomes 96 frames)
    p_stretch: float = 0.5
    stretch: tuple[float, float] = (0.85, 1.2)
    #: pitch shift of the (first) event, in semitones
    p_pitch: float = 0.5
    pitch_semitones: tuple[float, float] = (-2.0, 2.0)
    #: random smooth equaliser (microphone / room colouring): gain in +-filter_db at 2-5 control points
    p_filter: float = 0.5
    filter_db: float = 6.0
    time_masks: int = 2
    time_mask_frames: int = 12
    freq_masks: int = 2
    freq_mask_bands: int = 8
    #: a crop of a synthetic alarm is labelled only if it covers this much beep (s): a T3 crop
    #: needs 0.2 s (a partial 0.5 s beep), a T4 crop two of its 0.1 s beeps
    min_active_s: tuple[tuple[str, float], ...] = (("smoke_alarm", 0.2), ("co_alarm", 0.15))


def mel_power(x: np.ndarray, fp: FrontendParams) -> np.ndarray:
    """Linear mel power ``(n_frames, n_mels)`` of a waveform, from the runtime front end."""
    return np.maximum(np.exp(logmel(x, fp)) - np.float32(fp.log_offset), 0.0).astype(np.float32)


class CropSampler:
    """Draws event-energy-aware ``crop``-frame crops from per-clip mel power, with a "holds the event" flag.

    Event clips: the crop start is drawn with probability ~ sqrt(energy in the
    crop) (silent stretches are rarely labelled as the event). Clips with an
    activity mask (synthetic alarms, whose beeps are known): a crop holds the
    event only if it covers at least ``min_active`` active frames (label by the
    active part, as for the real clips); starts are drawn 80 % among those
    crops and 20 % uniformly, so the pauses between beeps appear as negatives.
    Background clips: uniform. Clips shorter than a crop are placed at a
    random offset in zero power (the front end's silence floor, as the
    evaluation pads).
    """

    def __init__(self, mels: list[np.ndarray], labels: list[str], crop: int,
                 active: list[np.ndarray | None] | None = None, min_active: dict[str, int] | None = None,
                 p_active: float = 0.8) -> None:
        self.mels = mels
        self.crop = crop
        self._probs: list[np.ndarray | None] = []
        #: per clip, per crop start: does the crop hold the labelled sound (None = always)
        self._holds: list[np.ndarray | None] = []
        active = active or [None] * len(mels)
        min_active = min_active or {}
        for m, lab, act in zip(mels, labels, active, strict=True):
            self._holds.append(None)
            if m.shape[0] <= crop or lab == BACKGROUND:
                self._probs.append(None)
                continue
            if act is not None:
                ca = np.concatenate([[0], np.cumsum(act[: m.shape[0]].astype(np.int64))])
                holds = (ca[crop:] - ca[:-crop]) >= min_active.get(lab, 1)
                p = np.full(holds.shape[0], (1.0 - p_active) / holds.shape[0])
                if holds.any():
                    p[holds] += p_active / holds.sum()
                self._holds[-1] = holds
                self._probs.append(p / p.sum())
                continue
            cs = np.concatenate([[0.0], np.cumsum(m.sum(axis=1, dtype=np.float64))])
            win = cs[crop:] - cs[:-crop]  # energy of the crop starting at each frame
            p = np.sqrt(np.maximum(win, 0.0)) + 0.02 * np.sqrt(win.max() + 1e-20) + 1e-20
            self._probs.append(p / p.sum())

    def crop_one(self, i: int, rng: np.random.Generator, length: int | None = None) -> tuple[np.ndarray, bool, int]:
        """One crop of clip ``i``, whether it holds the clip's sound, and its start frame (0 if padded).

        ``length`` (default ``crop``) frames are returned, centred on where a
        ``crop``-frame crop was drawn (for time stretching) and kept inside the clip.
        """
        m = self.mels[i]
        c = self.crop
        n = c if length is None else length
        if m.shape[0] <= c:
            out = np.zeros((n, m.shape[1]), np.float32)
            if m.shape[0] <= n:
                off = int(rng.integers(0, n - m.shape[0] + 1))
                out[off: off + m.shape[0]] = m
            else:
                off = int(rng.integers(0, m.shape[0] - n + 1))
                out[:] = m[off: off + n]
            return out, True, 0
        p = self._probs[i]
        start = int(rng.integers(0, m.shape[0] - c + 1)) if p is None else int(rng.choice(p.shape[0], p=p))
        holds = self._holds[i]
        flag = bool(holds is None or holds[start])
        if n == c:
            return m[start: start + c], flag, start
        if m.shape[0] <= n:
            out = np.zeros((n, m.shape[1]), np.float32)
            out[: m.shape[0]] = m
            return out, flag, start
        s = min(max(start + (c - n) // 2, 0), m.shape[0] - n)
        return m[s: s + n], flag, start

    @overload
    def crops_labelled(self, idx: np.ndarray, rng: np.random.Generator, starts: list[int] | None = None,
                       lengths: None = None) -> tuple[np.ndarray, np.ndarray]: ...

    @overload
    def crops_labelled(self, idx: np.ndarray, rng: np.random.Generator, starts: list[int] | None,
                       lengths: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]: ...

    def crops_labelled(self, idx: np.ndarray, rng: np.random.Generator, starts: list[int] | None = None,
                       lengths: np.ndarray | None = None) -> tuple[list[np.ndarray] | np.ndarray, np.ndarray]:
        """``(len(idx), crop, n_mels)`` crops and a bool ``(len(idx),)``: crop holds its clip's sound.

        ``starts``, if given, receives each crop's start frame. With ``lengths``
        (frames per crop), the crops are returned as a list of ``(length, n_mels)``.
        """
        got = [self.crop_one(int(i), rng, None if lengths is None else int(lengths[k])) for k, i in enumerate(idx)]
        if starts is not None:
            starts.extend(g[2] for g in got)
        holds = np.array([g[1] for g in got], dtype=bool)
        if lengths is not None:
            return [g[0] for g in got], holds
        return np.stack([g[0] for g in got]), holds

    def crops(self, idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.crops_labelled(idx, rng)[0]


def resample_time(crops: list[np.ndarray], n_frames: int) -> np.ndarray:
    """Linear interpolation of each ``(L_i, F)`` crop onto ``n_frames`` frames -> ``(B, n_frames, F)``."""
    out = np.empty((len(crops), n_frames, crops[0].shape[1]), np.float32)
    for k, c in enumerate(crops):
        if c.shape[0] == n_frames:
            out[k] = c
            continue
        pos = np.linspace(0.0, c.shape[0] - 1, n_frames)
        i0 = np.floor(pos).astype(np.int64)
        i1 = np.minimum(i0 + 1, c.shape[0] - 1)
        w = (pos - i0).astype(np.float32)[:, None]
        out[k] = c[i0] * (1.0 - w) + c[i1] * w
    return out


def pitch_shift_power(x: np.ndarray, semitones: np.ndarray, fp: FrontendParams) -> np.ndarray:
    """Shift ``(B, T, F)`` mel power by ``semitones`` ``(B,)``: band ``k`` gets the power at ``centre_k / factor``.

    The source position is found on the mel scale and interpolated between
    neighbouring bands (clamped at the edges).
    """
    centres = mel_band_edges_hz(fp)[1:-1]
    m = hz_to_mel(centres)
    factor = 2.0 ** (semitones / 12.0)
    src = hz_to_mel(centres[None, :] / factor[:, None])  # (B, F) mel of the source frequency
    pos = np.clip((src - m[0]) / (m[1] - m[0]), 0.0, len(centres) - 1.0)
    i0 = np.floor(pos).astype(np.int64)
    i1 = np.minimum(i0 + 1, len(centres) - 1)
    w = (pos - i0).astype(np.float32)[:, None, :]
    lo = np.take_along_axis(x, np.broadcast_to(i0[:, None, :], x.shape), axis=2)
    hi = np.take_along_axis(x, np.broadcast_to(i1[:, None, :], x.shape), axis=2)
    return (lo * (1.0 - w) + hi * w).astype(np.float32)


def random_filter_db(n: int, n_bands: int, rng: np.random.Generator, max_db: float) -> np.ndarray:
    """``(n, n_bands)`` smooth random gains (dB): piecewise linear through 2-5 points in +-``max_db``."""
    out = np.empty((n, n_bands), np.float32)
    grid = np.arange(n_bands)
    for k in range(n):
        pts = int(rng.integers(2, 6))
        xs = np.linspace(0, n_bands - 1, pts)
        out[k] = np.interp(grid, xs, rng.uniform(-max_db, max_db, pts))
    return out


def _power(x: np.ndarray) -> np.ndarray:
    return x.mean(axis=(1, 2)) + 1e-20


def reverb_power(x: np.ndarray, rng: np.random.Generator, a: AugmentParams, frame_rate: float) -> np.ndarray:
    """Reverberate a random subset of ``(B, T, F)`` mel-power crops (exponential decay, FFT along time)."""
    n_crops: int = x.shape[0]
    sel = np.nonzero(rng.random(n_crops) < a.p_reverb)[0]
    if sel.size == 0:
        return x
    t_len = x.shape[1]
    n_taps = int(a.rt60_s[1] * frame_rate)
    k = np.arange(n_taps)[None, :] / frame_rate
    rt = rng.uniform(*a.rt60_s, sel.size)[:, None]
    env = np.exp(-13.8155 * k / rt)  # power decays 60 dB (x1e-6) after rt60
    env[:, 1:] *= rng.uniform(0.5, 1.5, env[:, 1:].shape)  # noise-like RIR fine structure
    env /= env.sum(axis=1, keepdims=True)
    nfft = 1 << (t_len + n_taps - 1).bit_length()
    y = np.fft.irfft(np.fft.rfft(x[sel], nfft, axis=1) * np.fft.rfft(env, nfft, axis=1)[:, :, None], nfft,
                     axis=1)[:, :t_len]
    wet = rng.uniform(*a.wet, sel.size)[:, None, None]
    x = x.copy()
    x[sel] = ((1 - wet) * x[sel] + wet * np.maximum(y, 0.0)).astype(np.float32)
    return x


class BatchMaker:
    """Builds augmented ``(log-mel (B, crop, n_mels), targets (B, n_labels))`` batches.

    ``weights`` is each clip's sampling probability (class balance).
    """

    def __init__(self, clips: ClipSet, labels: tuple[str, ...], crop: int, fp: FrontendParams,
                 aug: AugmentParams, weights: np.ndarray, label_smoothing: float = 0.0, seed: int = 0,
                 teacher: list[np.ndarray | None] | None = None, teacher_stride: int = STRIDE_FRAMES) -> None:
        self.fp = fp
        #: per clip, teacher scores ``(n_patches, n_teacher)`` at ``teacher_stride`` frames (None: no target)
        self.teacher = teacher
        self.teacher_stride = teacher_stride
        self.n_teacher = next((t.shape[1] for t in teacher or [] if t is not None), 0)
        off = np.float32(fp.log_offset)
        self.mels = ([np.maximum(np.exp(m) - off, 0.0).astype(np.float32) for m in clips.mels] if clips.mels
                     else [mel_power(x, fp) for x in clips.audio])
        min_active = {lab: int(round(sec * fp.frame_rate)) for lab, sec in aug.min_active_s}
        self.sampler = CropSampler(self.mels, clips.labels, crop, clips.activity(), min_active)
        self.labels = labels
        self.aug = aug
        self.n = len(clips)
        self.weights = weights / weights.sum()
        self.base_weights = self.weights.copy()
        self.smooth = label_smoothing
        index = {lab: k for k, lab in enumerate(labels)}
        self.target_of = np.array([index.get(lab, -1) for lab in clips.labels])
        self.bg_idx = np.array([i for i, lab in enumerate(clips.labels) if lab == BACKGROUND])
        self.event_idx = np.array([i for i, lab in enumerate(clips.labels) if lab != BACKGROUND])
        # Noise floors (white / pink / brown), 20 s each, as mel power.
        nrng = np.random.default_rng([seed, 7])
        self.noises = [mel_power(colored_noise(20 * fp.sample_rate, nrng, e) * 0.1, fp) for e in (0.0, 1.0, 2.0)]
        self.noise_sampler = CropSampler(self.noises, [BACKGROUND] * 3, crop)

    def reweight_hard(self, hardness: dict[int, np.ndarray], alpha: float, block_frames: int,
                      floor: float = 0.25) -> None:
        """Hard-negative mining: background clips whose windows score high for some label are drawn more.

        ``hardness[i]``: for background clip ``i``, the highest label score of each window ``(n_windows,)``
        (window ``w`` starts at frame ``w * block_frames``), from the model being trained. The clip's
        sampling weight becomes ``base * (1 + alpha * max(hardness))``, background's total mass unchanged
        (class balance stays); within the clip, a crop starts near window ``w`` with probability
        ``~ floor + hardness[w]``. Called again later, it starts from the base weights.
        """
        w = self.base_weights.copy()
        idx = np.array(sorted(hardness), dtype=np.int64)
        if idx.size == 0:
            return
        mass = w[idx].sum()
        w[idx] *= 1.0 + alpha * np.array([float(hardness[int(i)].max()) for i in idx])
        w[idx] *= mass / w[idx].sum()
        self.weights = w / w.sum()
        crop = self.sampler.crop
        for i in idx:
            m, h = self.mels[int(i)], hardness[int(i)]
            if m.shape[0] <= crop or h.size == 0:
                continue
            starts = np.arange(m.shape[0] - crop + 1)
            pos = np.minimum(np.rint(starts / block_frames).astype(np.int64), h.size - 1)
            p = floor + h[pos].astype(np.float64)
            self.sampler._probs[int(i)] = p / p.sum()

    def _teacher(self, idx: np.ndarray, starts: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Teacher targets ``(n, n_teacher)`` of crops and a mask ``(n,)`` of those that have one."""
        t = np.zeros((len(idx), self.n_teacher), np.float32)
        ok = np.zeros(len(idx), bool)
        for k, (i, s) in enumerate(zip(idx, starts, strict=True)):
            sc = self.teacher[int(i)] if self.teacher is not None else None
            if sc is not None:
                t[k] = sc[min(int(round(s / self.teacher_stride)), sc.shape[0] - 1)]
                ok[k] = True
        return t, ok

    def batch(self, n: int, rng: np.random.Generator, augment: bool = True,
              with_teacher: bool = False) -> tuple[np.ndarray, ...]:
        """``(mel, y)``, or ``(mel, y, teacher, teacher_mask)`` with ``with_teacher`` (see :meth:`_teacher`)."""
        a = self.aug
        idx = rng.choice(self.n, size=n, p=self.weights)
        starts: list[int] = []
        crop = self.sampler.crop
        if augment and a.p_stretch > 0:
            r = np.where(rng.random(n) < a.p_stretch, rng.uniform(*a.stretch, n), 1.0)
            crops, holds = self.sampler.crops_labelled(idx, rng, starts, np.round(crop * r).astype(np.int64))
            x = resample_time(crops, crop)
        else:
            x, holds = self.sampler.crops_labelled(idx, rng, starts)
        if with_teacher:
            t, t_ok = self._teacher(idx, starts)
        y = np.zeros((n, len(self.labels)), np.float32)
        has = (self.target_of[idx] >= 0) & holds
        y[np.nonzero(has)[0], self.target_of[idx][has]] = 1.0
        if augment:
            x = x.copy()
            ps = np.nonzero(rng.random(n) < a.p_pitch)[0] if a.p_pitch > 0 else np.zeros(0, np.int64)
            if ps.size:
                x[ps] = pitch_shift_power(x[ps], rng.uniform(*a.pitch_semitones, ps.size), self.fp)
            # Second event at -6..0 dB relative level (multi-label target).
            mix = np.nonzero((rng.random(n) < a.p_mix_event) & has)[0]
            if mix.size and self.event_idx.size:
                j = rng.choice(self.event_idx, size=mix.size)
                other_starts: list[int] = []
                other, other_holds = self.sampler.crops_labelled(j, rng, other_starts)
                g = 10 ** (rng.uniform(-6.0, 0.0, mix.size) / 10) * _power(x[mix]) / _power(other)
                x[mix] += other * g[:, None, None]
                tj = self.target_of[j]
                ok = (tj >= 0) & other_holds
                y[mix[ok], tj[ok]] = 1.0
                if with_teacher:  # both sounds are present: the teacher would score both
                    t2, ok2 = self._teacher(j, other_starts)
                    t[mix] = np.maximum(t[mix], t2)
                    t_ok[mix] &= ok2
            x = reverb_power(x, rng, a, self.fp.frame_rate)
            # Background clip at 0-20 dB SNR.
            bg = np.nonzero(rng.random(n) < a.p_background)[0]
            if bg.size and self.bg_idx.size:
                j = rng.choice(self.bg_idx, size=bg.size)
                noise = self.sampler.crops(j, rng)
                g = _power(x[bg]) / _power(noise) * 10 ** (-rng.uniform(*a.snr_db, bg.size) / 10)
                x[bg] += noise * g[:, None, None]
            # Microphone / room noise floor 10-50 dB below the signal.
            nz = np.nonzero(rng.random(n) < a.p_noise)[0]
            if nz.size:
                noise = self.noise_sampler.crops(rng.integers(0, len(self.noises), nz.size), rng)
                g = _power(x[nz]) / _power(noise) * 10 ** (-rng.uniform(*a.noise_db_below, nz.size) / 10)
                x[nz] += noise * g[:, None, None]
            eq = np.nonzero(rng.random(n) < a.p_filter)[0] if a.p_filter > 0 else np.zeros(0, np.int64)
            if eq.size:
                x[eq] *= (10 ** (random_filter_db(eq.size, x.shape[2], rng, a.filter_db) / 10))[:, None, :]
            x *= (10 ** (rng.uniform(*a.gain_db, n) / 10)).astype(np.float32)[:, None, None]
        mel = np.log(x + np.float32(self.fp.log_offset)).astype(np.float32)
        if augment:
            mel = spec_augment(mel, rng, a)
        if self.smooth > 0:
            y = y * (1.0 - self.smooth) + self.smooth / 2.0
        if with_teacher:
            return mel, y, t, t_ok
        return mel, y


def spec_augment(mel: np.ndarray, rng: np.random.Generator, a: AugmentParams) -> np.ndarray:
    """Time and frequency masks on ``(B, T, F)`` log-mel, filled with each row's mean."""
    b: int
    b, t, f = mel.shape
    out = mel
    fill = mel.mean(axis=(1, 2))[:, None, None]
    tt = np.arange(t)[None, :]
    ff = np.arange(f)[None, :]
    for _ in range(a.time_masks):
        w = rng.integers(0, a.time_mask_frames + 1, b)
        s = rng.integers(0, t, b)
        m = (tt >= s[:, None]) & (tt < (s + w)[:, None])
        out = np.where(m[:, :, None], fill, out)
    for _ in range(a.freq_masks):
        w = rng.integers(0, a.freq_mask_bands + 1, b)
        s = rng.integers(0, f, b)
        m = (ff >= s[:, None]) & (ff < (s + w)[:, None])
        out = np.where(m[:, None, :], fill, out)
    return out.astype(np.float32)

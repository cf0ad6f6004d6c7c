"""Log-mel front end: one implementation for training and for the live stream.

Frames follow the "no centring" convention: frame ``i`` covers samples
``[i * hop_length, i * hop_length + win_length)`` of the signal. This makes the
incremental computation exact: a frame is emitted as soon as its last sample
has arrived, and it never changes afterwards.

Shapes: signals are float32 arrays in [-1, 1]; power spectra are
``(n_frames, n_fft // 2 + 1)``; log-mel features are ``(n_frames, n_mels)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

#: Largest number of frames given to one FFT call (see :func:`power_frames`).
FFT_BATCH_FRAMES = 32


@dataclass(frozen=True)
class FrontendParams:
    """Front-end settings; a model carries these in its ONNX metadata.

    Attributes:
        sample_rate: Hz of the audio the model expects.
        n_fft: FFT size in samples (>= win_length; the frame is zero-padded).
        win_length: analysis window length in samples (periodic Hann).
        hop_length: samples between frame starts.
        n_mels: number of mel bands.
        fmin: lowest mel band edge in Hz.
        fmax: highest mel band edge in Hz (<= sample_rate / 2).
        log_offset: added to mel power before the natural log (sets the floor).
    """

    sample_rate: int = 16000
    n_fft: int = 512
    win_length: int = 400
    hop_length: int = 160
    n_mels: int = 64
    fmin: float = 60.0
    fmax: float = 7800.0
    log_offset: float = 1e-6

    def __post_init__(self) -> None:
        if not (0 < self.hop_length <= self.win_length <= self.n_fft):
            raise ValueError(
                "frontend: need 0 < hop_length <= win_length <= n_fft, got "
                f"{self.hop_length}, {self.win_length}, {self.n_fft}"
            )
        if not (0 <= self.fmin < self.fmax <= self.sample_rate / 2):
            raise ValueError(
                f"frontend: need 0 <= fmin < fmax <= sample_rate/2, got {self.fmin}, {self.fmax}"
            )
        if self.n_mels < 1 or self.log_offset <= 0:
            raise ValueError("frontend: n_mels must be >= 1 and log_offset > 0")

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def frame_rate(self) -> float:
        """Frames per second of audio."""
        return self.sample_rate / self.hop_length

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> FrontendParams:
        fields = {f: d[f] for f in cls.__dataclass_fields__ if f in d}
        return cls(**fields)  # type: ignore[arg-type]

    def n_frames(self, n_samples: int) -> int:
        """Number of complete frames in a signal of ``n_samples`` samples."""
        if n_samples < self.win_length:
            return 0
        return 1 + (n_samples - self.win_length) // self.hop_length


def hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Hz -> mel (HTK formula, the scale of the filterbank)."""
    return 2595.0 * np.log10(1.0 + hz / 700.0)


def mel_to_hz(mel: np.ndarray) -> np.ndarray:
    """Mel (HTK) -> Hz."""
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


@lru_cache(maxsize=8)
def _cached_tables(p: FrontendParams) -> tuple[np.ndarray, np.ndarray]:
    n = np.arange(p.win_length, dtype=np.float64)
    window = (0.5 - 0.5 * np.cos(2.0 * np.pi * n / p.win_length)).astype(np.float32)
    fb = mel_filterbank(p)
    window.setflags(write=False)
    fb.setflags(write=False)
    return window, fb


def mel_band_edges_hz(p: FrontendParams) -> np.ndarray:
    """``(n_mels + 2,)`` frequencies (Hz, HTK mel scale): band ``k`` rises from ``edges[k]``,
    peaks at ``edges[k + 1]`` (its centre) and falls to ``edges[k + 2]``."""
    return mel_to_hz(np.linspace(hz_to_mel(np.array(p.fmin)), hz_to_mel(np.array(p.fmax)), p.n_mels + 2))


def mel_filterbank(p: FrontendParams) -> np.ndarray:
    """Triangular mel filters (HTK mel scale, peak 1), shape ``(n_bins, n_mels)``."""
    freqs = np.linspace(0.0, p.sample_rate / 2.0, p.n_bins)
    edges = mel_band_edges_hz(p)
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (freqs[:, None] - lower[None, :]) / (centre - lower)[None, :]
    falling = (upper[None, :] - freqs[:, None]) / (upper - centre)[None, :]
    return np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)


def power_frames(frames: np.ndarray, p: FrontendParams, scratch: np.ndarray | None = None) -> np.ndarray:
    """Power spectra of already-cut frames ``(..., win_length)`` -> ``(..., n_bins)`` float32.

    Frames are windowed into a zero-padded ``(FFT_BATCH_FRAMES, n_fft)``
    scratch and transformed in slices of at most ``FFT_BATCH_FRAMES``:
    pocketfft is 2-4x slower per frame on larger batches of 512 points here
    (cache), and a 1 s read or a whole training clip is 100-500 frames.
    ``scratch`` (columns ``win_length:`` zero) may be passed in to reuse it.
    """
    window, _ = _cached_tables(p)
    lead = frames.shape[:-1]
    flat = frames.reshape(-1, p.win_length)
    n = flat.shape[0]
    out = np.empty((n, p.n_bins), dtype=np.float32)
    if scratch is None:
        scratch = np.zeros((min(n, FFT_BATCH_FRAMES), p.n_fft), dtype=np.float32)
    for i in range(0, n, FFT_BATCH_FRAMES):
        j = min(n, i + FFT_BATCH_FRAMES)
        windowed = scratch[: j - i]
        np.multiply(flat[i:j], window, out=windowed[:, : p.win_length])
        spec = np.fft.rfft(windowed, axis=-1)
        np.square(spec.real, out=out[i:j])
        out[i:j] += np.square(spec.imag)
    return out.reshape(lead + (p.n_bins,))


def power_to_logmel(power: np.ndarray, p: FrontendParams) -> np.ndarray:
    """Power spectra ``(..., n_bins)`` -> natural-log mel energies ``(..., n_mels)``."""
    _, fb = _cached_tables(p)
    return np.log(power @ fb + np.float32(p.log_offset)).astype(np.float32, copy=False)


def _cut_frames(signal: np.ndarray, p: FrontendParams) -> np.ndarray:
    n = p.n_frames(signal.shape[-1])
    if n == 0:
        return np.zeros(signal.shape[:-1] + (0, p.win_length), dtype=np.float32)
    view = sliding_window_view(signal, p.win_length, axis=-1)
    return view[..., : (n - 1) * p.hop_length + 1 : p.hop_length, :]


def power_spectrogram(signal: np.ndarray, p: FrontendParams) -> np.ndarray:
    """Batch STFT power of ``(..., n_samples)`` -> ``(..., n_frames, n_bins)``."""
    return power_frames(_cut_frames(np.asarray(signal, dtype=np.float32), p), p)


def logmel(signal: np.ndarray, p: FrontendParams) -> np.ndarray:
    """Log-mel features of ``(..., n_samples)`` audio -> ``(..., n_frames, n_mels)``.

    Works on a single signal or a batch of equal-length signals (training).
    """
    return power_to_logmel(power_spectrogram(signal, p), p)


class IncrementalSTFT:
    """Streaming STFT that computes only the frames completed by each new chunk.

    ``push`` accepts any number of samples (including 0 or 1) and returns the
    power spectra of the newly completed frames, ``(n_new, n_bins)``. For any
    chunking of a signal, the concatenated output equals
    ``power_spectrogram(signal)``.

    Working memory is preallocated and reused: a sample buffer holding the
    frame in progress plus the newest chunk (it grows only when a larger chunk
    than ever before arrives) and a fixed zero-padded ``(FFT_BATCH_FRAMES,
    n_fft)`` scratch for windowed frames, so steady streaming allocates
    nothing but the returned spectra.
    """

    def __init__(self, params: FrontendParams) -> None:
        self.params = params
        self._buf = np.zeros(4 * params.win_length, dtype=np.float32)
        self._n = 0  # samples in _buf: the frame in progress (< win_length between calls)
        # Columns win_length..n_fft stay zero: the FFT's zero padding.
        self._scratch = np.zeros((FFT_BATCH_FRAMES, params.n_fft), dtype=np.float32)
        self._empty = np.zeros((0, params.n_bins), dtype=np.float32)
        self._empty.setflags(write=False)
        self.frames_emitted = 0

    def reset(self) -> None:
        self._n = 0
        self.frames_emitted = 0

    def push(self, chunk: np.ndarray) -> np.ndarray:
        p = self.params
        chunk = np.asarray(chunk, dtype=np.float32).reshape(-1)
        total = self._n + chunk.shape[0]
        if total > self._buf.shape[0]:
            grown = np.zeros(max(total, 2 * self._buf.shape[0]), dtype=np.float32)
            grown[: self._n] = self._buf[: self._n]
            self._buf = grown
        self._buf[self._n : total] = chunk
        self._n = total
        n = p.n_frames(total)
        if n == 0:
            return self._empty
        out = power_frames(_cut_frames(self._buf[:total], p), p, self._scratch)
        # Keep everything from the start of the next (incomplete) frame.
        keep = total - n * p.hop_length
        self._buf[:keep] = self._buf[n * p.hop_length : total]
        self._n = keep
        self.frames_emitted += n
        return out


class LogMelStream:
    """Incremental log-mel: ``push(chunk) -> (n_new, n_mels)`` float32."""

    def __init__(self, params: FrontendParams) -> None:
        self.params = params
        self.stft = IncrementalSTFT(params)

    def reset(self) -> None:
        self.stft.reset()

    @property
    def frames_emitted(self) -> int:
        return self.stft.frames_emitted

    def push(self, chunk: np.ndarray) -> np.ndarray:
        return power_to_logmel(self.stft.push(chunk), self.params)

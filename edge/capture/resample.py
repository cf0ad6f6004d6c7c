"""Streaming sample-rate conversion (a thin wrapper around ``soxr.ResampleStream``).

Runs in the consumer thread, never in the audio callback. Output is float32
and, over a whole stream, has ``round(n_in * out_rate / in_rate)`` samples;
``soxr`` compensates its own filter delay, so output sample ``k`` is at
``k / out_rate`` seconds like input sample ``j`` is at ``j / in_rate``.
"""

from __future__ import annotations

import numpy as np


class StreamResampler:
    """``push(chunk) -> resampled chunk``; ``flush()`` returns the tail at end of stream."""

    def __init__(self, in_rate: float, out_rate: float, quality: str = "HQ") -> None:
        import soxr

        self.in_rate = float(in_rate)
        self.out_rate = float(out_rate)
        self._stream = soxr.ResampleStream(self.in_rate, self.out_rate, 1, dtype="float32", quality=quality)

    def push(self, chunk: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(chunk, dtype=np.float32).reshape(-1)
        return self._stream.resample_chunk(x, last=False).reshape(-1)

    def flush(self) -> np.ndarray:
        return self._stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True).reshape(-1)


class Passthrough:
    """Same interface when no conversion is needed."""

    def push(self, chunk: np.ndarray) -> np.ndarray:
        return np.asarray(chunk, dtype=np.float32).reshape(-1)

    def flush(self) -> np.ndarray:
        return np.zeros(0, dtype=np.float32)


def make_resampler(in_rate: float, out_rate: float) -> StreamResampler | Passthrough:
    if int(round(in_rate)) == int(round(out_rate)):
        return Passthrough()
    return StreamResampler(in_rate, out_rate)

"""Lock-free single-producer / single-consumer ring buffer of float32 samples.

The producer is the audio callback: :meth:`RingBuffer.write` never blocks,
never allocates and takes no lock. When the consumer falls behind, the oldest
samples are overwritten; the consumer notices on its next :meth:`read` and
counts every sample it never saw in :attr:`RingBuffer.lost`.

Every sample has an absolute index (0 = first sample ever written), so a
position in the stream maps to a time: ``index / sample_rate`` seconds after
the stream started.

Why no lock: CPython makes the assignment of an ``int`` attribute atomic. The
producer first *reserves* the range it is about to overwrite, copies, then
*publishes* the new write position. The consumer copies optimistically and,
after copying, discards anything the producer may have reserved in the meantime
(a seqlock), so a torn read is never returned as audio.
"""

from __future__ import annotations

import threading

import numpy as np


class RingBuffer:
    """Fixed-capacity ring of mono float32 samples with absolute indices.

    Attributes:
        capacity: samples held.
        written: absolute index one past the last published sample.
        read_pos: absolute index of the next sample the consumer will get.
        lost: samples overwritten before the consumer read them (total).
        muted: while True, :meth:`write` drops what it is given (privacy: "Listening" off in
            Home Assistant); the samples never reach the buffer and the consumer sees none.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("ring buffer capacity must be >= 1 sample")
        self.capacity = int(capacity)
        self._buf = np.zeros(self.capacity, dtype=np.float32)
        self.written = 0
        self._reserved = 0  # producer may be overwriting slots of indices < _reserved
        self.read_pos = 0
        self.lost = 0
        self.closed = False
        self.muted = False  # one attribute read per write: set by the consumer's thread, read by the callback
        # The producer sets _data only once ``written`` reaches ``_want`` (the absolute index the waiting
        # consumer asked for), so a consumer waiting for a whole block is woken once per block, not once
        # per write. Event.set() takes the event's internal lock only for a few bytecodes; the consumer
        # never holds it while working.
        self._want = 1
        self._data = threading.Event()
        self._space = threading.Event()

    # -- producer side -------------------------------------------------------------
    def write(self, samples: np.ndarray) -> None:
        """Append ``samples`` (1-D, any float dtype, may be a strided view). Never blocks."""
        n = samples.shape[0]
        if n == 0 or self.muted:
            return
        cap = self.capacity
        if n > cap:
            # Only the newest `cap` samples can survive; the rest count as lost on read.
            samples = samples[n - cap :]
        m = samples.shape[0]
        start_idx = self.written + (n - m)
        self._reserved = self.written + n
        pos = start_idx % cap
        first = min(m, cap - pos)
        self._buf[pos : pos + first] = samples[:first]
        if first < m:
            self._buf[: m - first] = samples[first:]
        self.written += n
        if self.written >= self._want:
            self._data.set()

    def free_space(self) -> int:
        """Samples that can be written without overwriting unread audio."""
        return self.capacity - (self.written - self.read_pos)

    def wait_for_space(self, n: int, timeout: float) -> bool:
        """For non-realtime producers (files): wait until ``n`` samples fit. Returns True if they do."""
        n = min(n, self.capacity)
        if self.free_space() >= n:
            return True
        self._space.clear()
        if self.free_space() >= n:
            return True
        self._space.wait(timeout)
        return self.free_space() >= n

    def close(self) -> None:
        """Producer is done; wakes the consumer so it can drain and stop."""
        self.closed = True
        self._data.set()

    # -- consumer side -------------------------------------------------------------
    @property
    def available(self) -> int:
        return min(self.written - self.read_pos, self.capacity)

    def wait(self, timeout: float) -> bool:
        """Block the consumer until new data (or close) or ``timeout`` seconds. Returns True on data."""
        return self.wait_for(1, timeout)

    def wait_for(self, n: int, timeout: float) -> bool:
        """Block the consumer until ``n`` unread samples are there (or close, or :meth:`wake`), at most
        ``timeout`` seconds. The producer wakes it only when its write completes the ``n`` samples, so
        writes that leave them incomplete cost the consumer nothing. True when they are there or closed.
        """
        target = self.read_pos + max(1, min(int(n), self.capacity))
        if self.written >= target or self.closed:
            return True
        # Order matters (no lock): publish the target, clear, then look again. A write that completes
        # the samples after this look sees the new target and sets the event after the clear.
        self._want = target
        self._data.clear()
        if self.written >= target or self.closed:
            return True
        self._data.wait(timeout)
        return self.written >= target or self.closed

    def wake(self) -> None:
        """Wake a consumer blocked in :meth:`wait_for` now (e.g. to stop it); thread-safe."""
        self._data.set()

    def read(self, max_samples: int | None = None) -> tuple[int, np.ndarray]:
        """Take the unread samples (at most ``max_samples``).

        Returns ``(start_index, samples)`` where ``start_index`` is the absolute
        index of ``samples[0]``. If audio was overwritten since the last read,
        ``start_index`` jumps ahead of the previous read position and the gap
        is added to :attr:`lost`.
        """
        cap = self.capacity
        end = self.written
        start = max(self.read_pos, end - cap)
        if max_samples is not None:
            end = min(end, start + max_samples)
        n = end - start
        if n <= 0:
            return self.read_pos, np.zeros(0, dtype=np.float32)
        pos = start % cap
        first = min(n, cap - pos)
        out = np.empty(n, dtype=np.float32)
        out[:first] = self._buf[pos : pos + first]
        if first < n:
            out[first:] = self._buf[: n - first]
        # Anything the producer reserved while we copied may be torn: drop it.
        valid_from = self._reserved - cap
        if valid_from > start:
            cut = min(valid_from - start, n)
            out = out[cut:]
            start += cut
        self.lost += start - self.read_pos
        self.read_pos = start + out.shape[0]
        self._space.set()
        return start, out

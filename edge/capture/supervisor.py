"""Microphone supervision: notice a dead, stalled or silent input and bring it back.

Two halves, each on its own thread:

* :class:`SignalGuard` runs on the processing (consumer) thread inside
  ``Listener.feed``: it replaces NaN/inf samples with 0 (and counts them) so
  they never reach the model, and measures how long the input has been digital
  silence (every sample exactly 0 or non-finite), in samples at the source rate.
* :class:`MicSupervisor` runs on its own thread and watches a
  :class:`~edge.capture.sources.MicSource`. It does not poll a healthy microphone: it sleeps
  to the next moment something can be wrong (the stall deadline after the last callback, the
  end of the silence allowance) and is woken at once when PortAudio ends the stream.
  The stream is *lost* when PortAudio finished it (device error, USB microphone
  unplugged, sound server died) or when no callback arrived for ``health.stall_after_s``
  seconds. A lost stream, or one
  that has been silent for ``health.silent_after_s``, is closed and reopened
  (PortAudio re-initialised, so a restarted sound server or re-plugged device is
  found again) with exponential back-off from :data:`MIN_BACKOFF_S` doubling up
  to ``health.reopen_max_backoff_s``, until audio flows again.

The microphone state reported in the health status is :func:`mic_state`:
``lost`` (no audio arriving), ``silent`` (audio arriving, all zeros/NaN) or ``ok``.
Nothing here runs on the audio callback thread.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np

from edge.capture.settings import HealthConfig
from edge.core.logutil import one_line

log = logging.getLogger("edge.mic")

MIN_BACKOFF_S = 0.5          # first wait between reopen attempts (s); doubles up to reopen_max_backoff_s
FIRST_CALLBACK_GRACE_S = 3.0  # a freshly opened stream may take this long (s) beyond stall_after_s to start
HEALTHY_RESET_S = 10.0       # audio (not only silence) flowing this long (s) resets the back-off

_clock = time.monotonic  # the supervisor's time base (seconds); one name, so a test can drive it
POLL_S = 0.1                 # check period (s) while a fault is being handled; the shortest sleep otherwise
MAX_SLEEP_S = 5.0            # longest sleep between two checks of a healthy microphone (s)


class SignalGuard:
    """Non-finite samples -> 0 (counted) and the length of the current digital-silence run.

    Args:
        sample_rate: rate of the audio passed to :meth:`clean` (Hz).
        silent_after_s: a silence run this long (s) makes :attr:`silent` true.
    """

    def __init__(self, sample_rate: int, silent_after_s: float) -> None:
        self.rate = int(sample_rate)
        self.silent_after = max(1, int(round(silent_after_s * sample_rate)))
        self.nonfinite = 0   # samples replaced so far
        self.quiet_run = 0   # samples since the last non-zero finite sample

    @property
    def silent(self) -> bool:
        return self.quiet_run >= self.silent_after

    def clean(self, x: np.ndarray) -> np.ndarray:
        """Return ``x`` (1-D float32) with NaN/inf replaced by 0; a copy only when there were any."""
        # One BLAS dot product is finite exactly when no sample is NaN/inf (an overflow also sends
        # the block to the exact scan), so normal audio skips the element-wise isfinite pass.
        with np.errstate(over="ignore", invalid="ignore"):
            energy = float(np.dot(x, x)) if x.dtype == np.float32 and x.ndim == 1 else float("nan")
        if not np.isfinite(energy):
            finite = np.isfinite(x)
            if not finite.all():
                self.nonfinite += int(finite.size - np.count_nonzero(finite))
                x = np.where(finite, x, np.float32(0.0)).astype(np.float32, copy=False)
        if x.shape[0] and x[-1] != 0:
            self.quiet_run = 0
        else:
            nz = x != 0
            if nz.any():
                self.quiet_run = int(np.argmax(nz[::-1]))  # trailing zeros
            else:
                self.quiet_run += int(x.shape[0])
        return x


def mic_state(supervisor: MicSupervisor | None, guard: SignalGuard) -> str:
    """``lost`` | ``silent`` | ``ok`` (a file source is never lost)."""
    if supervisor is not None and supervisor.lost:
        return "lost"
    return "silent" if guard.silent else "ok"


class MicSupervisor:
    """Watches a microphone source from its own thread and reopens it with back-off.

    The source must offer ``callbacks`` (count), ``last_callback`` (monotonic s),
    ``stream_finished`` (bool), ``block`` and ``sample_rate``, ``ring`` and
    ``gaps`` (a deque of ``(ring index, seconds)`` the listener adds to its time
    base), and ``reopen()`` raising on failure (see :class:`edge.capture.sources.MicSource`).
    """

    def __init__(self, source: Any, cfg: HealthConfig, guard: SignalGuard) -> None:
        self.source = source
        self.cfg = cfg
        self.guard = guard
        self.lost = False
        self.reason = ""
        self.reopens = 0          # successful reopen calls
        self.failed_attempts = 0  # reopen calls that raised
        self._down = False        # the last reopen failed: no stream is open
        self._lost_since = 0.0
        self._backoff = MIN_BACKOFF_S
        self._next_try = 0.0
        self._count = -1
        self._progress = _clock()
        self._healthy_since: float | None = None
        self._stall_limit = cfg.stall_after_s + FIRST_CALLBACK_GRACE_S
        self._pending_gap: tuple[int, int, float] | None = None  # (ring index, callbacks at reopen, last cb time)
        self._stop = threading.Event()
        self._wake = threading.Event()  # stop(), or PortAudio ended the stream
        self._thread: threading.Thread | None = None
        if hasattr(source, "on_finished"):
            source.on_finished = self._wake.set

    def start(self) -> None:
        self._progress = _clock()
        self._thread = threading.Thread(target=self._run, name="edge-mic-supervisor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        wait = POLL_S
        while True:
            self._wake.wait(wait)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.check(_clock())
                wait = self.next_wait(_clock())
            except Exception:  # supervision must never die; the next check tries again
                log.exception("microphone supervisor: unexpected error")
                wait = POLL_S

    def next_wait(self, now: float) -> float:
        """Seconds until the next :meth:`check` is due (``now``: the supervisor's clock).

        While a fault is handled (lost, reopening, a reopened stream not yet delivering) every
        :data:`POLL_S`. Otherwise the earliest moment something can change: the stall deadline
        (the last callback + ``stall_after_s``), the end of the silence allowance (from the
        length of the current silence run), or the next reopen of a silent input; within
        [:data:`POLL_S`, :data:`MAX_SLEEP_S`]. A stream PortAudio ends wakes it at once.
        """
        if self.lost or self._down or self._pending_gap is not None:
            return POLL_S
        due = self._progress + self._stall_limit - now
        g = self.guard
        if g.silent:
            due = min(due, self._next_try - now)
        else:
            due = min(due, (g.silent_after - g.quiet_run) / g.rate)
        return min(max(due, POLL_S), MAX_SLEEP_S)

    def check(self, now: float) -> None:
        """One supervision step (called again after :meth:`next_wait` seconds)."""
        src = self.source
        n = src.callbacks
        if n != self._count:
            self._count = n
            last = src.last_callback  # same clock; the time of the callback, not of this check
            self._progress = max(self._progress, last) if 0.0 < last <= now else now
            self._record_gap(n)
            if self.lost and not self._down and not src.stream_finished:
                log.warning("microphone back after %.1f s (%d reopen attempt(s) so far); it was lost: %s",
                            now - self._lost_since, self.reopens + self.failed_attempts, self.reason)
                self.lost = False
                self._stall_limit = self.cfg.stall_after_s
            if self._healthy_since is None:
                self._healthy_since = now
            elif now - self._healthy_since >= HEALTHY_RESET_S and not self.guard.silent:
                # Callbacks of zeros are not health: resetting here would reopen a dead
                # microphone every few seconds forever instead of backing off.
                self._backoff = MIN_BACKOFF_S
        reason = None
        if self._down:
            reason = self.reason
        elif src.stream_finished:
            reason = "the audio stream stopped (device error, unplugged, or sound server gone)"
        elif now - self._progress > self._stall_limit:
            reason = f"no audio callback for {now - self._progress:.1f} s"
        if reason is not None:
            self._set_lost(reason)
        elif not self.guard.silent:
            return
        if now < self._next_try:
            return
        self._reopen(now, silent=reason is None)

    def _set_lost(self, reason: str) -> None:
        self._healthy_since = None
        if not self.lost:
            self.lost = True
            self.reason = reason
            self._lost_since = _clock()
            log.warning("microphone lost: %s; reopening with back-off (max %g s)", reason,
                        self.cfg.reopen_max_backoff_s)

    def _reopen(self, now: float, silent: bool) -> None:
        src = self.source
        index, count, last_cb = src.ring.written, src.callbacks, src.last_callback
        try:
            src.reopen()
        except Exception as e:  # PortAudioError, SourceError: the device is not back yet
            self.failed_attempts += 1
            self._down = True  # the old stream is closed and no new one opened: lost until a reopen works
            self._set_lost(f"cannot reopen it ({one_line(e)})")
            log.info("microphone reopen failed (%s); next try in %.1f s", one_line(e), self._backoff)
        else:
            self._down = False
            self.reopens += 1
            if silent:
                log.warning("microphone delivered only silence for %g s; reopened it", self.cfg.silent_after_s)
            self._pending_gap = (index, count, last_cb)
            self._stall_limit = self.cfg.stall_after_s + FIRST_CALLBACK_GRACE_S
            self._progress = _clock()
        self._healthy_since = None
        self._next_try = _clock() + self._backoff
        self._backoff = min(self._backoff * 2.0, self.cfg.reopen_max_backoff_s)

    def _record_gap(self, n: int) -> None:
        """Once the reopened stream delivers, add the audio time it missed to the listener's time base."""
        if self._pending_gap is None:
            return
        index, count, last_cb = self._pending_gap
        if n <= count:
            return
        self._pending_gap = None
        src = self.source
        block_s = src.block / src.sample_rate
        first_cb = src.last_callback - (n - count - 1) * block_s  # when the new stream's first block arrived
        gap = first_cb - block_s - last_cb if last_cb > 0 else 0.0
        if gap > 0:
            src.gaps.append((index, gap))

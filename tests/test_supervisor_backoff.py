"""MicSupervisor's reopen back-off, on a clock the test drives.

A microphone that keeps delivering callbacks of zeros (a muted USB card, a
dead capsule) is a fault we cannot cause on a CI machine's real device, so a
stand-in source delivers them; the supervision code under it is the real one.
"""

from __future__ import annotations

import numpy as np
import pytest

import edge.capture.supervisor as sup
from edge.capture.ring import RingBuffer
from edge.capture.supervisor import MicSupervisor, SignalGuard
from edge.service.config import HealthConfig

SR = 16000


class ZerosSource:
    """Calls back every poll with zeros (or with sound once ``sound`` is set); reopen always succeeds."""

    stream_finished = False
    sample_rate = SR
    block = int(sup.POLL_S * SR)  # samples per callback

    def __init__(self, guard: SignalGuard) -> None:
        self.ring = RingBuffer(SR)
        self.guard = guard
        self.callbacks = 0
        self.last_callback = 0.0
        self.reopen_times: list[float] = []
        self.sound = False
        self.now = 0.0

    def deliver(self, seconds: float) -> None:
        n = int(seconds * SR)
        x = (np.random.default_rng(0).standard_normal(n) * 0.1 if self.sound else np.zeros(n)).astype(np.float32)
        self.guard.clean(x)
        self.callbacks += 1
        self.last_callback = self.now

    def reopen(self) -> None:
        self.reopen_times.append(self.now)


def _run(monkeypatch: pytest.MonkeyPatch, seconds: float,
         sound_after: float | None = None) -> tuple[ZerosSource, MicSupervisor]:
    cfg = HealthConfig()
    guard = SignalGuard(SR, cfg.silent_after_s)
    src = ZerosSource(guard)
    monkeypatch.setattr(sup, "_clock", lambda: src.now)
    s = MicSupervisor(src, cfg, guard)
    step = sup.POLL_S
    while src.now < seconds:
        src.now += step
        src.sound = sound_after is not None and src.now >= sound_after
        src.deliver(step)
        s.check(src.now)
    return src, s


def test_a_microphone_delivering_only_silence_is_reopened_with_a_growing_back_off(monkeypatch) -> None:
    src, _ = _run(monkeypatch, 600.0)
    gaps = np.diff(src.reopen_times)
    cap = HealthConfig().reopen_max_backoff_s
    # Silence for silent_after_s, then reopens at 0.5, 1, 2, 4 ... s apart, capped: about 25 in 10 min.
    assert src.reopen_times[0] >= HealthConfig().silent_after_s - sup.POLL_S
    assert gaps[-1] == pytest.approx(cap, abs=0.2), gaps
    assert np.all(np.diff(gaps[:5]) > 0), gaps
    assert len(src.reopen_times) < 30, len(src.reopen_times)


def test_the_back_off_starts_again_small_once_real_sound_has_flowed(monkeypatch) -> None:
    silent, s_silent = _run(monkeypatch, 200.0)
    assert s_silent._backoff == HealthConfig().reopen_max_backoff_s
    src, s = _run(monkeypatch, 200.0 + sup.HEALTHY_RESET_S + 1.0, sound_after=200.0)
    assert src.reopen_times == silent.reopen_times  # sound: no further reopen
    assert s._backoff == sup.MIN_BACKOFF_S

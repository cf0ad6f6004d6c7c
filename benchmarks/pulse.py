"""A private PulseAudio with null sinks, and a recorder of a sink's monitor that timestamps what it hears.

Used by ``benchmarks/alert_latency.py``, ``benchmarks/hearable_profile.py`` and the
alert tests (``tests/test_alerts_pulseaudio.py``): the real sound server, no
hardware. PortAudio reads ``PULSE_SERVER`` when it is initialised, so whatever
plays or records through sounddevice must run in a process started with
:func:`pulse_env`'s environment.

Timing: :class:`MonitorRecorder` runs ``parec`` on a monitor with a 5 ms
latency request and stamps every read with ``time.monotonic()`` on arrival.
A sample's time is its chunk's arrival time minus the samples after it in the
chunk (then the running maximum, so times never go back), so it is never
earlier than the moment the sample left the sink: a latency measured against
it is an upper bound. (The null sink renders at the
lowest latency its streams ask for; with nothing recording its monitor at low
latency it renders seconds ahead, unlike a sound card.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

RATE = 48000
TOOLS = ("pulseaudio", "pactl", "parec", "paplay")


def missing_tools() -> list[str]:
    return [t for t in TOOLS if shutil.which(t) is None]


@contextmanager
def private_pulseaudio(workdir: Path, sinks: Sequence[str] = ("edge_null",)) -> Iterator[dict[str, str]]:
    """Start a PulseAudio of our own with ``sinks`` (null sinks, 48 kHz stereo); yields its environment.

    The first sink is the default sink, its monitor the default source. Stopped on exit.
    """
    run = workdir / "run"
    (run / "pulse").mkdir(parents=True, exist_ok=True)
    home = workdir / "home"
    home.mkdir(exist_ok=True)
    sock = run / "pulse" / "native"
    env = dict(os.environ, XDG_RUNTIME_DIR=str(run), PULSE_RUNTIME_PATH=str(run / "pulse"), HOME=str(home),
               PULSE_SERVER=f"unix:{sock}")
    for var in ("PULSE_SINK", "PULSE_SOURCE"):
        env.pop(var, None)
    args = ["pulseaudio", "--daemonize=no", "--exit-idle-time=-1", "-n", "--use-pid-file=no", "--disable-shm=yes",
            "--log-target=stderr", "-L", f"module-native-protocol-unix auth-anonymous=1 socket={sock}"]
    for name in sinks:
        args += ["-L", f"module-null-sink sink_name={name} rate={RATE} channels=2"]
    args += ["-L", "module-always-sink"]
    log_path = workdir / "pulse.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode != 0:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("PulseAudio did not start: " + log_path.read_text()[-2000:])
            time.sleep(0.1)
        for cmd in (["set-default-sink", sinks[0]], ["set-default-source", f"{sinks[0]}.monitor"],
                    *(["set-sink-volume", s, "100%"] for s in sinks)):
            subprocess.run(["pactl", *cmd], env=env, check=True, capture_output=True)
        env["EDGE_PULSE_PID"] = str(proc.pid)
        yield env
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class MonitorRecorder:
    """Records ``source`` (a sink's monitor) as mono int16 at 48 kHz, each 5 ms read stamped on arrival."""

    def __init__(self, env: dict[str, str], source: str) -> None:
        self.proc = subprocess.Popen(
            ["parec", "-d", source, "--raw", "--format=s16le", f"--rate={RATE}", "--channels=1",
             "--latency-msec=5"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0)
        self._chunks: list[tuple[float, bytes]] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
        rest = b""
        while True:
            b = out.read(480)  # 240 samples = 5 ms
            if not b:
                return
            now = time.monotonic()
            b = rest + b
            keep = len(b) - len(b) % 2
            rest = b[keep:]
            self._chunks.append((now, b[:keep]))

    def wait_running(self, timeout: float = 5.0) -> bool:
        """Whether audio (even silence) has started to arrive."""
        deadline = time.monotonic() + timeout
        while not self._chunks and time.monotonic() < deadline:
            time.sleep(0.01)
        return bool(self._chunks)

    def stop(self) -> tuple[np.ndarray, np.ndarray]:
        """Stop; ``(times (n,) monotonic s, samples (n,) float32 in [-1, 1])``."""
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._thread.join(2)
        return self.arrays()

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        chunks = list(self._chunks)
        if not chunks:
            return np.zeros(0), np.zeros(0, np.float32)
        times, xs = [], []
        for t, b in chunks:
            x = np.frombuffer(b, np.int16)
            times.append(t - (x.shape[0] - 1 - np.arange(x.shape[0])) / RATE)
            xs.append(x)
        # Reads that arrive together would give overlapping times; the running maximum keeps the times
        # sorted and only ever moves a sample later (the figures stay upper bounds).
        t = np.maximum.accumulate(np.concatenate(times))
        return t, np.concatenate(xs).astype(np.float32) / 32768.0


def tone_onset(times: np.ndarray, x: np.ndarray, after: float, threshold: float,
               before: float | None = None) -> int | None:
    """Index of the first sample at or after time ``after`` (and before ``before``) with ``|x| >= threshold``."""
    sel = times >= after
    if before is not None:
        sel &= times < before
    idx = np.nonzero(sel & (np.abs(x) >= threshold))[0]
    return int(idx[0]) if idx.size else None


def dominant_hz(x: np.ndarray, start: int, seconds: float = 0.03) -> float:
    """The strongest frequency (Hz) in ``seconds`` of ``x`` from sample ``start``."""
    seg = x[start : start + int(seconds * RATE)].astype(np.float64)
    if seg.size < 16:
        return 0.0
    spec = np.abs(np.fft.rfft(seg * np.hanning(seg.size), 8 * seg.size))
    return float(np.argmax(spec) * RATE / (8 * seg.size))

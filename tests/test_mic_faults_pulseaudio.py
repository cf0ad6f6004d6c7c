"""Microphone faults through the real audio stack: the sound server dies under a running listener.

A private PulseAudio (null sink, as in test_mic_pulseaudio.py) feeds ``edge run``
through the ALSA ``pulse`` device. The test SIGKILLs the server, checks that
the health status says ``mic=lost``, starts the server again on the same
socket, and checks that the listener reopens the stream by itself and detects a
tone played after the restart. The null sink's monitor is exact digital zero
while nothing plays, so ``silent`` is seen through the real stack as well.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import bursts

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    not (shutil.which("pulseaudio") and shutil.which("paplay") and shutil.which("pactl")),
    reason="needs PulseAudio (apt: pulseaudio, libasound2-plugins, libportaudio2)",
)


class PulseServer:
    """A private PulseAudio with a null sink; ``kill()`` and ``start()`` keep the same socket."""

    def __init__(self, root: Path) -> None:
        run = root / "run"
        (run / "pulse").mkdir(parents=True)
        (root / "home").mkdir()
        self.sock = run / "pulse" / "native"
        self.log = root / "pulse.log"
        self.env = dict(os.environ, XDG_RUNTIME_DIR=str(run), PULSE_RUNTIME_PATH=str(run / "pulse"),
                        HOME=str(root / "home"), PULSE_SERVER=f"unix:{self.sock}")
        self.env.pop("PULSE_SINK", None)
        self.env.pop("PULSE_SOURCE", None)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("a") as log:
            self.proc = subprocess.Popen(
                ["pulseaudio", "--daemonize=no", "--exit-idle-time=-1", "-n", "--use-pid-file=no",
                 "--disable-shm=yes", "--log-target=stderr",
                 "-L", f"module-native-protocol-unix auth-anonymous=1 socket={self.sock}",
                 "-L", "module-null-sink sink_name=edge_null rate=48000 channels=2", "-L", "module-always-sink"],
                env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while subprocess.run(["pactl", "info"], env=self.env, capture_output=True).returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("PulseAudio did not start: " + self.log.read_text()[-2000:])
            time.sleep(0.1)
        for args in (["set-default-sink", "edge_null"], ["set-default-source", "edge_null.monitor"],
                     ["set-sink-volume", "edge_null", "100%"], ["set-source-volume", "edge_null.monitor", "100%"]):
            subprocess.run(["pactl", *args], env=self.env, check=True)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def play(self, wav: Path) -> None:
        subprocess.run(["paplay", "--device=edge_null", "--volume=65536", str(wav)], env=self.env, check=True)


class Lines:
    """Collects a pipe's lines on a thread, with arrival times."""

    def __init__(self, stream) -> None:  # noqa: ANN001
        self.lines: list[tuple[float, str]] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream) -> None:  # noqa: ANN001
        for line in stream:
            with self.lock:
                self.lines.append((time.monotonic(), line.rstrip("\n")))

    def wait(self, pattern: str, timeout: float, after: float = 0.0) -> str | None:
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                for t, line in self.lines:
                    if t >= after and rx.search(line):
                        return line
            time.sleep(0.05)
        return None

    def text(self) -> str:
        with self.lock:
            return "\n".join(line for _, line in self.lines)


def edge_run(pulse: PulseServer, cfg: Path, model: Path) -> subprocess.Popen:
    """``edge run --config cfg --model model --verbose`` against ``pulse``, stdout and stderr piped."""
    env = dict(pulse.env, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "edge", "run", "--config", str(cfg), "--model", str(model),
                             "--verbose"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT)


def test_mic_lost_when_sound_server_dies_and_detection_resumes_after_restart(tiny_model, tmp_path, wav_writer):
    pulse = PulseServer(tmp_path / "pa")
    pulse.start()
    x = bursts([(1000.0, 0.0, 3.0)], 3.0, 48000)
    tone = wav_writer("tone.wav", np.stack([x, x], axis=1), 48000)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("audio: {source: mic, device: pulse}\n"
                   "detector: {release_s: 0.1}\n"
                   "health: {stall_after_s: 1.0, silent_after_s: 1.0, reopen_max_backoff_s: 2.0}\n"
                   "mqtt: {status_interval_s: 1.0}\n")
    proc = edge_run(pulse, cfg, tiny_model)
    out, err = Lines(proc.stdout), Lines(proc.stderr)
    try:
        # Nothing plays yet: the monitor is digital zero -> silent, through the real stack.
        assert err.wait(r"edge: status mic=silent", 20), err.text()
        t_kill = time.monotonic()
        pulse.kill()
        assert err.wait(r"edge: status mic=lost", 10, after=t_kill), err.text()
        assert err.wait(r"microphone lost", 1, after=t_kill), err.text()
        time.sleep(1.0)  # a reopen attempt or two fail while the server is away
        assert proc.poll() is None, err.text()
        t_back = time.monotonic()
        pulse.start()
        assert err.wait(r"microphone back", 20, after=t_back), err.text()
        back = err.wait(r"edge: status mic=(silent|ok) .* reopens=[1-9]", 10, after=t_back)
        assert back, err.text()
        # The tone may land while a silence-triggered reopen is in progress (seconds under load):
        # play it again until it is heard, at most three times.
        for _ in range(3):
            t_play = time.monotonic()
            pulse.play(tone)
            if out.wait(r'"state": ?"off"', 8, after=t_play):
                break
        assert out.wait(r'"state": ?"off"', 0.1, after=t_back), (out.text(), err.text())
        events = [json.loads(line) for _, line in out.lines]
        after = [(e["label"], e["state"]) for e in events]
        assert ("mid_tone", "on") in after and ("mid_tone", "off") in after, events
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        pulse.kill()
    print(err.text())
    assert rc == 0, err.text()
    assert "Traceback" not in err.text()


def test_sigterm_while_the_microphone_is_being_reopened_stops_the_listener_promptly(tiny_model, tmp_path):
    """The sound server is gone and the supervisor keeps reopening: SIGTERM still ends `edge run` in a moment."""
    pulse = PulseServer(tmp_path / "pa")
    pulse.start()
    cfg = tmp_path / "c.yaml"
    cfg.write_text("audio: {source: mic, device: pulse}\n"
                   "health: {stall_after_s: 0.5, silent_after_s: 60.0, reopen_max_backoff_s: 0.5}\n"
                   "mqtt: {status_interval_s: 1.0}\n")
    proc = edge_run(pulse, cfg, tiny_model)
    Lines(proc.stdout)  # drained, so the child never blocks on a full pipe
    err = Lines(proc.stderr)
    took = None
    try:
        assert err.wait(r"edge: status mic=", 20), err.text()
        t_kill = time.monotonic()
        pulse.kill()
        assert err.wait(r"microphone lost", 10, after=t_kill), err.text()
        assert err.wait(r"microphone reopen failed", 10, after=t_kill), err.text()  # reopening, 0.5 s apart
        time.sleep(0.7)
        t_term = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(15)
        took = time.monotonic() - t_term
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        pulse.kill()
    assert rc == 0, err.text()
    assert took is not None and took < 3.0, (took, err.text())
    assert "Traceback" not in err.text()

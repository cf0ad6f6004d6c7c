"""Microphone capture through a real audio stack.

PulseAudio runs in the test with a null sink; its monitor is the default
source. PortAudio reaches it through the ALSA ``pulse`` plugin
(libasound2-plugins). A WAV is played into the sink with ``paplay`` and
captured through :class:`edge.capture.sources.MicSource` (raw signal check) and through
the whole listener chain (event check).

The capture runs in a subprocess because PortAudio reads the environment
(PULSE_SERVER etc.) once, when it is initialised at import.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import bursts
from test_mic_faults_pulseaudio import Lines

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    not (shutil.which("pulseaudio") and shutil.which("paplay") and shutil.which("pactl")),
    reason="needs PulseAudio (apt: pulseaudio, libasound2-plugins, libportaudio2)",
)

CAPTURE = r"""
import json, subprocess, sys, threading, time
import numpy as np
from edge.model.classifier import Classifier
from edge.service.config import parse_config
from edge.publish.sinks import CollectSink
from edge.service.listener import Listener, make_source
from edge.capture.sources import MicSource

model, wav = sys.argv[1], sys.argv[2]
out = {}

def play_after_first_callback(src, done):
    t0 = time.monotonic()
    if not src.wait_first_callback(10.0):
        out.setdefault("errors", []).append("no audio callback within 10 s")
    out.setdefault("first_callback_s", []).append(round(time.monotonic() - t0, 3))
    subprocess.run(["paplay", "--device=edge_null", "--volume=65536", wav], check=True)
    time.sleep(0.6)
    done()

# 1. Raw capture: MicSource alone, at the model rate (16 kHz), device picked by name.
src = MicSource("pulse", 16000, channel=None, block_s=0.02, buffer_s=20.0)
src.start()
stop = threading.Event()
th = threading.Thread(target=play_after_first_callback, args=(src, stop.set))
th.start()
chunks = []
while not stop.is_set():
    src.ring.wait(0.1)
    chunks.append(src.ring.read()[1])
th.join()
src.stop()
x = np.concatenate(chunks + [src.ring.read()[1]])
spec = np.abs(np.fft.rfft(x * np.hanning(x.size)))
out["raw"] = {"rate": src.sample_rate, "n": int(x.size), "peak_hz": float(np.argmax(spec) * src.sample_rate / x.size),
              "rms": float(np.sqrt(np.mean(x ** 2))), "max": float(np.max(np.abs(x))),
              "lost": src.ring.lost, "overflows": src.overflows,
              "callbacks": src.callbacks, "device": src.device_name}

# 2. The whole chain: mic opened at 44.1 kHz, resampled to the model's 16 kHz in the consumer.
cfg = parse_config({"audio": {"source": "mic", "device": "pulse", "sample_rate": 44100},
                    "detector": {"release_s": 0.1}})
clf = Classifier(model)
src = make_source(cfg, clf.contract.frontend.sample_rate, clf.contract.block_seconds)
sink = CollectSink()
lis = Listener(cfg, clf, [sink], src)
th = threading.Thread(target=play_after_first_callback, args=(src, lis.stop))
th.start()
lis.run()
th.join()
out["chain"] = {"rate": src.sample_rate, "events": [e.to_dict() for e in sink.events], "health": lis.health(),
                "block": src.block, "model_block_s": clf.contract.block_seconds, "callbacks": src.callbacks,
                "written": src.ring.written, "open_channels": src.open_channels}
print(json.dumps(out))
"""


@pytest.fixture
def pulse(tmp_path):
    run = tmp_path / "run"
    (run / "pulse").mkdir(parents=True)
    home = tmp_path / "home"
    home.mkdir()
    sock = run / "pulse" / "native"
    env = dict(os.environ, XDG_RUNTIME_DIR=str(run), PULSE_RUNTIME_PATH=str(run / "pulse"), HOME=str(home),
               PULSE_SERVER=f"unix:{sock}")
    env.pop("PULSE_SINK", None)
    env.pop("PULSE_SOURCE", None)
    log = (tmp_path / "pulse.log").open("w")
    proc = subprocess.Popen(
        ["pulseaudio", "--daemonize=no", "--exit-idle-time=-1", "-n", "--use-pid-file=no", "--disable-shm=yes",
         "--log-target=stderr", "-L", f"module-native-protocol-unix auth-anonymous=1 socket={sock}",
         "-L", "module-null-sink sink_name=edge_null rate=48000 channels=2",
         "-L", "module-always-sink"],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while True:
            r = subprocess.run(["pactl", "info"], env=env, capture_output=True, text=True)
            if r.returncode == 0:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("PulseAudio did not start: " + (tmp_path / "pulse.log").read_text()[-2000:])
            time.sleep(0.1)
        subprocess.run(["pactl", "set-default-sink", "edge_null"], env=env, check=True)
        subprocess.run(["pactl", "set-default-source", "edge_null.monitor"], env=env, check=True)
        # Unity gain end to end, so the captured level can be checked.
        subprocess.run(["pactl", "set-sink-volume", "edge_null", "100%"], env=env, check=True)
        subprocess.run(["pactl", "set-source-volume", "edge_null.monitor", "100%"], env=env, check=True)
        yield env
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_microphone_captures_a_tone_played_into_pulseaudio(pulse, tiny_model, wav_writer):
    sr = 48000
    x = bursts([(1000.0, 0.0, 1.5)], 1.5, sr, amp=0.3)
    wav = wav_writer("tone.wav", np.stack([x, x], axis=1), sr, "s16")
    env = dict(pulse, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-c", CAPTURE, str(tiny_model), str(wav)], env=env, capture_output=True,
                       text=True, timeout=90)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert "errors" not in out, out
    raw = out["raw"]
    assert raw["rate"] == 16000 and raw["callbacks"] > 10
    assert abs(raw["peak_hz"] - 1000.0) < 5, raw
    # The monitor of a silent null sink is exact digital zero, so any level means the tone arrived.
    # (PulseAudio's capture path attenuates by ~13 dB here even at 100% volumes, so no exact level check.)
    assert raw["rms"] > 0.01 and raw["lost"] == 0, json.dumps(raw)
    # A downmix of PulseAudio's 32-channel ALSA device opens 2 channels (DOWNMIX_MAX_CHANNELS): the tone
    # arrives at the level it was played at (0.3 peak), not ~13 dB below as the mean of 32 was.
    assert 0.25 < raw["max"] < 0.35, json.dumps(raw)
    chain = out["chain"]
    assert chain["rate"] == 44100
    assert chain["open_channels"] == 2, chain["open_channels"]
    # audio.block_s null: one PortAudio callback per model block (at the source rate), each a whole block.
    assert chain["block"] == round(chain["model_block_s"] * 44100), chain
    assert chain["callbacks"] > 10 and chain["written"] == chain["callbacks"] * chain["block"], chain
    labels = [(e["label"], e["state"]) for e in chain["events"]]
    assert labels == [("mid_tone", "on"), ("mid_tone", "off")], chain
    off = chain["events"][1]
    assert 1.2 <= off["offset"] - off["onset"] <= 1.9, off  # a 1.5 s tone
    assert -40.0 < off["level_dbfs"] < -10.0, off
    assert chain["health"]["inferences"] > 15


def test_learn_background_from_the_microphone_stops_on_time_or_on_ctrl_c_and_keeps_what_it_learnt(
        pulse, tmp_path):
    import signal

    from edge.core.paths import bundled_model
    from edge.detect.home_background import HomeBackground
    from edge.model.classifier import Classifier

    cfg = tmp_path / "c.yaml"
    cfg.write_text("audio:\n  device: pulse\n")
    env = dict(pulse, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "edge", "learn-background", "--config", str(cfg)]
    out = tmp_path / "home.npz"
    r = subprocess.run([*cmd, "--seconds", "3", "--out", str(out)], env=env, capture_output=True, text=True,
                       timeout=90)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "learning this home's background from mic for 3 s" in r.stderr
    contract = Classifier(bundled_model()).contract
    bank = HomeBackground.load(out, contract)
    assert bank.seconds == pytest.approx(3.0, abs=0.3) and bank.vectors.shape[0] >= 10
    # Ctrl-C long before the time is up: what was heard so far is kept.
    out2 = tmp_path / "early.npz"
    p = subprocess.Popen([*cmd, "--seconds", "600", "--out", str(out2)], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    out_lines, err_lines = Lines(p.stdout), Lines(p.stderr)
    try:
        # Once it says it is learning (its Ctrl-C handler is in place), some seconds of listening.
        assert err_lines.wait("learning this home's background", 60), err_lines.text()
        time.sleep(4.0)
        p.send_signal(signal.SIGINT)
        p.wait(30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    out_lines.wait("learnt", 5)  # the reader thread takes the last lines
    stdout, stderr = out_lines.text(), err_lines.text()
    assert p.returncode == 0, stderr[-3000:]
    assert "Traceback" not in stderr and "learnt" in stdout
    early = HomeBackground.load(out2, contract)
    assert 0.5 < early.seconds < 8.0

"""``edge run`` as a real process: SIGTERM (MQTT offline, outbox flushed, systemd), SIGHUP reload; ``edge doctor``."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from broker import Subscriber, mosquitto, mosquitto_auth  # noqa: F401  (fixtures)
from conftest import bursts
from test_mic_faults_pulseaudio import Lines
from tinymodel import build_tiny_model

from edge.publish.outbox import Outbox

ROOT = Path(__file__).resolve().parent.parent
SR = 16000


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1", **extra)
    for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        if k not in extra:
            env.pop(k, None)
    return env


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "edge", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)


def test_sigterm_ends_open_event_flushes_outbox_publishes_offline_and_exits_0(mosquitto, tiny_model,  # noqa: F811
                                                                             wav_writer, tmp_path):
    wav = wav_writer("s.wav", bursts([(1000.0, 0.5, 1.3), (2000.0, 2.0, 30.0)], 30.0, SR), SR)
    outbox = tmp_path / "outbox.sqlite"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"detector: {{release_s: 0.1}}\n"
                   f"mqtt: {{enabled: true, host: 127.0.0.1, port: {mosquitto.port}, device_id: life, "
                   f"status_interval_s: 1.0, level_interval_s: 0, reconnect_min_s: 0.05}}\n"
                   f"outbox: {{path: {outbox}}}\n")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    msgs: list[str] = []

    def systemd() -> None:  # reads the datagrams as they come, like systemd does
        while True:
            try:
                m = notify.recv(256).decode()
            except OSError:
                return
            if not m:
                return
            msgs.append(m)

    threading.Thread(target=systemd, daemon=True).start()
    sub = Subscriber(mosquitto.host, mosquitto.port, "homesound/life/#").start()
    proc = _start(["run", "--config", str(cfg), "--source", str(wav), "--realtime", "--model", str(tiny_model)],
                  _env(NOTIFY_SOCKET=str(tmp_path / "notify.sock"), WATCHDOG_USEC="400000"))
    err = Lines(proc.stderr)
    try:
        events = "homesound/life/event"
        assert sub.wait_for(lambda ms: any(m.topic == events and b'"high_tone"' in m.payload for m in ms), 20), \
            err.text()
        assert sub.wait_for(lambda ms: any(m.topic == "homesound/life/status" for m in ms), 5)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(10)
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert rc == 0 and elapsed < 5.0, (rc, elapsed, err.text())
    assert "Traceback" not in err.text()
    got = [json.loads(m.payload) for m in sub.on(events)]
    pairs = [(e["label"], e["state"]) for e in got]
    assert pairs == [("mid_tone", "on"), ("mid_tone", "off"), ("high_tone", "on"), ("high_tone", "off")], pairs
    assert got[2]["id"] == got[3]["id"] and got[3]["offset"] < 29.0  # ended by the shutdown, not the file
    avail = [m.payload for m in sub.on("homesound/life/availability")]
    assert avail[0] == b"online" and avail[-1] == b"offline", avail
    status = json.loads(sub.on("homesound/life/status")[-1].payload)
    assert status["mic"] == "ok" and status["inferences"] > 0 and "rss_mb" in status and "outbox_depth" in status
    sub.stop()
    # A new subscriber gets the retained availability: offline, and nothing is left in the outbox.
    late = Subscriber(mosquitto.host, mosquitto.port, "homesound/life/availability").start()
    assert late.wait_for(lambda ms: any(m.retain and m.payload == b"offline" for m in ms), 5)
    late.stop()
    ob = Outbox(outbox, 100)
    assert ob.depth() == 0
    ob.close()
    notify.shutdown(socket.SHUT_RDWR)
    notify.close()
    assert "READY=1\nSTATUS=listening" in msgs, msgs
    assert msgs.count("WATCHDOG=1") >= 2 and msgs[-1] == "STOPPING=1", msgs


def test_sighup_applies_a_valid_config_and_rejects_an_invalid_one(tmp_path, wav_writer):
    # Scores of this model stay below 1.0, so a threshold of 1.0 silences a label.
    model = build_tiny_model(tmp_path / "soft.onnx", gain=0.5)
    spec = []
    for i in range(12):  # alternate mid and low tones, 0.7 s each, every 0.9 s
        spec.append((1000.0 if i % 2 == 0 else 500.0, 0.3 + 0.9 * i, 1.0 + 0.9 * i))
    wav = wav_writer("h.wav", bursts(spec, 12.0, SR), SR)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("detector: {release_s: 0.1}\n")
    proc = _start(["run", "--config", str(cfg), "--source", str(wav), "--realtime", "--model", str(model)], _env())
    out, err = Lines(proc.stdout), Lines(proc.stderr)
    try:
        assert out.wait(r'"mid_tone".*"state": ?"off"', 10), err.text()
        cfg.write_text("detector: {release_s: 0.1, thresholds: {mid_tone: 1.0}}\n")
        proc.send_signal(signal.SIGHUP)
        assert err.wait("configuration reloaded", 5), err.text()
        t_reload = time.monotonic()
        # Rejected: the running (reloaded) configuration stays; the process keeps listening.
        time.sleep(1.5)
        cfg.write_text("detector: {release_s: 0.1, thresholds: {mid_tone: high}}\n")
        proc.send_signal(signal.SIGHUP)
        assert err.wait("config reload rejected", 5), err.text()
        t_reject = time.monotonic()
        assert out.wait(r'"low_tone".*"state": ?"off"', 5, after=t_reject + 0.3), err.text()
        rc = proc.wait(20)  # the file ends
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert rc == 0, err.text()
    rejected = [line for _, line in err.lines if "reload" in line and "rejected" in line]
    assert len(rejected) == 1, err.text()
    assert f"{cfg}: detector.thresholds.mid_tone: expected a number in [0, 1], got 'high'" in rejected[0]
    # Every mid_tone onset came before the reload took effect (allow one hop in flight).
    late_mid = [line for t, line in out.lines if '"mid_tone"' in line and '"on"' in line and t > t_reload + 0.5]
    assert not late_mid, late_mid
    low_after = [line for t, line in out.lines if '"low_tone"' in line and t > t_reload + 0.5]
    assert len(low_after) >= 4, out.text()


def test_doctor_checks_model_and_broker_and_fails_on_a_wrong_password(tiny_model, mosquitto_auth,  # noqa: F811
                                                                     tmp_path):
    b = mosquitto_auth
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    base = f"audio: {{source: {tmp_path / 'x.wav'}}}\nmqtt: {{enabled: true, host: 127.0.0.1, port: {b.port}, "
    good.write_text(base + f"username: {b.username}, password: {b.password}}}\n")
    bad.write_text(base + f"username: {b.username}, password: wrong}}\n")
    r = subprocess.run([sys.executable, "-m", "edge", "doctor", "--config", str(good), "--model", str(tiny_model)],
                       capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=60)
    lines = r.stdout.splitlines()
    assert r.returncode == 0, r.stdout + r.stderr
    assert lines[0].startswith(f"PASS  model: {tiny_model} (tiny-1) loads and runs: 3 labels, 16000 Hz")
    assert "labels (3): low_tone, mid_tone, high_tone" in r.stdout
    assert any(x.startswith("SKIP  microphone: audio.source is a file") for x in lines), lines
    assert any(x.startswith(f"PASS  broker: connected to 127.0.0.1:{b.port} user 'edge'") for x in lines), lines
    r = subprocess.run([sys.executable, "-m", "edge", "doctor", "--config", str(bad), "--model", str(tiny_model)],
                       capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=60)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "FAIL  broker: connection refused: not authorised (check mqtt.username/password)" in r.stdout.splitlines()


def test_doctor_measures_the_microphone_through_pulseaudio(tiny_model, tmp_path, wav_writer):
    import shutil

    if not (shutil.which("pulseaudio") and shutil.which("paplay")):
        pytest.skip("needs PulseAudio (apt: pulseaudio, libasound2-plugins)")
    import numpy as np
    from test_mic_faults_pulseaudio import PulseServer

    pulse = PulseServer(tmp_path / "pa")
    pulse.start()
    try:
        x = bursts([(1000.0, 0.0, 8.0)], 8.0, 48000)
        tone = wav_writer("tone.wav", np.stack([x, x], axis=1), 48000)
        player = subprocess.Popen(["paplay", "--device=edge_null", str(tone)], env=pulse.env)
        cfg = tmp_path / "c.yaml"
        cfg.write_text("audio: {source: mic, device: pulse}\n")
        r = subprocess.run([sys.executable, "-m", "edge", "doctor", "--config", str(cfg), "--model",
                            str(tiny_model)], capture_output=True, text=True, cwd=ROOT, timeout=60,
                           env=dict(_env(), **{k: pulse.env[k] for k in ("PULSE_SERVER", "XDG_RUNTIME_DIR",
                                                                          "PULSE_RUNTIME_PATH", "HOME")}))
        player.kill()
        player.wait()
    finally:
        pulse.kill()
    mic = [x for x in r.stdout.splitlines() if "microphone:" in x]
    assert r.returncode == 0 and mic and mic[0].startswith("PASS  microphone: 'pulse' at 16000 Hz"), r.stdout
    level = float(mic[0].split("level ")[1].split(" dBFS")[0])
    assert -40.0 < level < -10.0, mic  # a 0.3-amplitude tone, attenuated a little by PulseAudio


def test_a_sighup_while_starting_is_applied_once_listening_instead_of_ending_the_process(tmp_path, burst_wav, caplog):
    """``edge enroll`` (or ``systemctl reload``) right after a start: the reload waits for the listener."""
    import logging

    from edge.capture.sources import FileSource
    from edge.model.classifier import Classifier
    from edge.publish.sinks import CollectSink
    from edge.service.config import parse_config
    from edge.service.lifecycle import Lifecycle, hold_reloads_until_running
    from edge.service.listener import Listener

    saved = signal.getsignal(signal.SIGHUP)
    try:
        hold_reloads_until_running()  # what cmd_run does first
        os.kill(os.getpid(), signal.SIGHUP)  # while "loading the model": the default action would end pytest
        wav = burst_wav("s.wav", [(1000.0, 2.0, 2.7)], 3.0)  # the tone seconds after the first pass
        model = build_tiny_model(tmp_path / "soft.onnx", gain=0.5)  # scores below 1.0: 1.0 silences a label
        sink = CollectSink()
        lis = Listener(parse_config({"detector": {"release_s": 0.1}}), Classifier(model), [sink],
                       FileSource(wav, realtime=True))
        new = parse_config({"detector": {"release_s": 0.1, "thresholds": {"mid_tone": 1.0}}})
        with caplog.at_level(logging.INFO, logger="edge"):
            Lifecycle(lis, reload_config=lambda: new).run()
        assert lis.detector.threshold("mid_tone") == 1.0  # the settings read after the signal
        assert [r.getMessage() for r in caplog.records if "configuration reloaded" in r.getMessage()]
        assert not [e for e in sink.events if e.label == "mid_tone"]  # applied on the first pass, before the tone
    finally:
        signal.signal(signal.SIGHUP, saved)

"""Earcons through the real audio stack: PortAudio -> ALSA ``pulse`` -> a PulseAudio null sink, whose monitor is
recorded (benchmarks/pulse.py) to find when each tone became audible and at what pitch.

PortAudio reads PULSE_SERVER when it starts, so the earcon side runs in a child process with the private
server's environment.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from benchmarks.pulse import RATE, MonitorRecorder, missing_tools, private_pulseaudio, tone_onset

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(bool(missing_tools()), reason="needs PulseAudio (apt: pulseaudio, pulseaudio-utils, "
                                "libasound2-plugins, libportaudio2)")

# Child: builds the earcon sink from a config, records the sink's monitor, sends the planned events.
CHILD = r"""
import json, sys, time
import numpy as np
from benchmarks.pulse import MonitorRecorder
from edge.core.events import Event
from edge.publish.alerts import build_alert_sinks
from edge.service.config import parse_config

conf, plan, out = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
labels = ["smoke_alarm", "co_alarm", "glass_breaking", "baby_cry", "door_knock", "dog_bark", "cat_meow"]
groups = {"safety": ["smoke_alarm", "glass_breaking", "baby_cry", "co_alarm"], "alarms": ["smoke_alarm", "co_alarm"]}
rec = MonitorRecorder(dict(__import__("os").environ), "edge_null.monitor")
assert rec.wait_running()
(sink,) = build_alert_sinks(parse_config(conf).alerts, labels, groups, "<test>")
sink.start()
time.sleep(1.0)  # the output's first open (plugins load) is not what is measured
sent = []
t0 = time.monotonic()
for at, label, eid, state in plan:
    time.sleep(max(0.0, t0 + at - time.monotonic()))
    sent.append([label, eid, state, time.monotonic()])
    sink.event(Event(eid, label, state, 0.0, None if state == "on" else 1.0, time.time(), None, 0.9, 0.9, -20.0, "t"))
time.sleep(plan[-1][0] + 1.5 - (time.monotonic() - t0))
sink.close()
times, x = rec.stop()
np.savez(out, times=times, x=x)
print(json.dumps({"sent": sent, "stats": sink.stats()}))
"""


@pytest.fixture
def pulse(tmp_path: Path) -> Iterator[dict[str, str]]:
    with private_pulseaudio(tmp_path / "pa") as env:
        yield env


def play(pulse: dict[str, str], tmp_path: Path, conf: dict, plan: list) -> tuple[dict, np.ndarray, np.ndarray]:
    out = tmp_path / "rec.npz"
    env = dict(pulse, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-c", CHILD, json.dumps(conf), json.dumps(plan), str(out)], env=env,
                       capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "WARNING" not in r.stderr, r.stderr
    rec = np.load(out)
    return json.loads(r.stdout.strip().splitlines()[-1]), rec["times"], rec["x"]


def band_onset(times: np.ndarray, x: np.ndarray, hz: float, after: float, frame_s: float = 0.005) -> float | None:
    """Time of the first 5 ms frame after ``after`` whose energy near ``hz`` dominates (a tone of that pitch)."""
    n = int(frame_s * RATE)
    i0 = int(np.searchsorted(times, after))
    m = (x.shape[0] - i0) // n
    if m <= 0:
        return None
    frames = x[i0 : i0 + m * n].reshape(m, n).astype(np.float64)
    t = np.arange(n) / RATE
    c, s = np.cos(2 * np.pi * hz * t), np.sin(2 * np.pi * hz * t)
    at_hz = np.hypot(frames @ c, frames @ s) * 2 / n  # amplitude of the hz component
    rms = np.sqrt((frames**2).mean(axis=1)) * np.sqrt(2)
    hit = np.nonzero((at_hz > 0.02) & (at_hz > 0.6 * rms))[0]
    return float(times[i0 + hit[0] * n]) if hit.size else None


def test_an_earcon_is_heard_at_the_output_right_after_the_event_with_the_labels_own_pattern(pulse, tmp_path):
    conf = {"alerts": {"earcon": {"enabled": True, "volume": 0.5}}}
    plan = [[0.0, "door_knock", "k", "on"], [1.5, "smoke_alarm", "s", "on"], [2.2, "smoke_alarm", "s", "off"]]
    got, times, x = play(pulse, tmp_path, conf, plan)
    (_, _, _, t_knock), (_, _, _, t_smoke), _ = got["sent"]
    thr = 0.3 * float(np.max(np.abs(x)))
    assert thr > 0.02, "nothing audible was recorded"
    for t_ev, hz in ((t_knock, 880.0), (t_smoke, 1760.0)):
        i = tone_onset(times, x, t_ev, thr, t_ev + 1.0)
        assert i is not None
        latency = times[i] - t_ev
        assert 0.0 <= latency < 0.3, latency  # audible within 300 ms of the decision (the p95 bar)
        onset = band_onset(times, x, hz, t_ev)
        assert onset is not None and onset - times[i] < 0.02  # and the first thing heard is the label's pitch
    # the knock's rhythm, as recorded: 0.1 s tone, 0.12 s pause, 0.1 s tone (1 ms RMS envelope at 30 % of its peak)
    seg = x[(times >= t_knock) & (times < t_knock + 1.0)]
    ms = RATE // 1000
    env = np.sqrt((seg[: seg.size // ms * ms].reshape(-1, ms) ** 2).mean(axis=1))
    on = env > 0.3 * env.max()
    edges = np.diff(on.astype(int), prepend=0, append=0)
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    durations = (stops - starts) / 1000
    assert len(durations) == 2 and np.all(np.abs(durations - 0.1) < 0.01), durations
    assert abs((starts[1] - stops[0]) / 1000 - 0.12) < 0.01
    # the smoke alarm event lasted 0.7 s: shorter than its 3 s repeat, so it played once
    assert got["stats"]["played"] == 2 and got["stats"]["failures"] == 0


def test_an_earcon_can_be_the_users_own_wav(pulse, tmp_path, wav_writer):
    t = np.arange(int(0.3 * 22050)) / 22050
    wav = wav_writer("knock.wav", (0.4 * np.sin(2 * np.pi * 500.0 * t)).astype(np.float32), 22050)
    conf = {"alerts": {"earcon": {"enabled": True, "volume": 1.0}, "rules": {"door_knock": {"wav": str(wav)}}}}
    got, times, x = play(pulse, tmp_path, conf, [[0.0, "door_knock", "k", "on"]])
    t_ev = got["sent"][0][3]
    onset = band_onset(times, x, 500.0, t_ev)
    assert onset is not None and onset - t_ev < 0.3
    assert band_onset(times, x, 880.0, t_ev) is None  # not the built-in knock pattern
    seg = x[(times >= t_ev) & (times < t_ev + 1.0)]
    ms = RATE // 1000
    env = np.sqrt((seg[: seg.size // ms * ms].reshape(-1, ms) ** 2).mean(axis=1))
    assert abs(np.count_nonzero(env > 0.3 * env.max()) / 1000 - 0.3) < 0.02  # the WAV's 0.3 s, once


def test_a_smoke_alarm_is_not_delayed_by_a_queue_of_other_alerts(pulse, tmp_path):
    conf = {"alerts": {"earcon": {"enabled": True}, "rules": {"all": {"min_interval_s": 0}}}}
    plan = [[0.0, lab, f"e{i}", "on"] for i, lab in enumerate(["door_knock", "dog_bark", "cat_meow"] * 2)]
    plan.append([0.15, "smoke_alarm", "s", "on"])
    got, times, x = play(pulse, tmp_path, conf, plan)
    t_smoke = got["sent"][-1][3]
    onset = band_onset(times, x, 1760.0, t_smoke)
    assert onset is not None and onset - t_smoke < 0.15, onset and onset - t_smoke
    assert got["stats"]["interrupted"] >= 1  # the knock that was playing was cut short


def test_a_repeating_safety_alarm_is_heard_again_while_it_lasts(pulse, tmp_path):
    conf = {"alerts": {"earcon": {"enabled": True}, "rules": {"safety": {"repeat_s": 1.0}}}}
    plan = [[0.0, "co_alarm", "c", "on"], [2.5, "co_alarm", "c", "off"]]
    got, times, x = play(pulse, tmp_path, conf, plan)
    t_on, t_off = got["sent"][0][3], got["sent"][1][3]
    starts = []
    after = t_on
    while True:
        t = band_onset(times, x, 1320.0, after)
        if t is None or t > t_off + 0.5:
            break
        starts.append(t)
        after = t + 0.6  # past this pattern (0.43 s)
    assert len(starts) == 3, starts  # at 0, 1 and 2 s; none after the offset
    assert all(abs((b - a) - 1.0) < 0.1 for a, b in zip(starts, starts[1:], strict=False)), starts


def test_a_vanished_output_device_leaves_the_listener_listening(pulse, tmp_path, tiny_model, burst_wav):
    wav = burst_wav("r.wav", [(1000.0, 0.5, 1.2), (500.0, 3.0, 3.7), (2000.0, 5.0, 5.7)], 6.5)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("detector: {release_s: 0.1}\nalerts:\n  earcon: {enabled: true}\n"
                   "  rules: {all: {min_interval_s: 0}}\n")
    rec = MonitorRecorder(pulse, "edge_null.monitor")  # a steady consumer, like a sound card
    assert rec.wait_running()
    env = dict(pulse, PYTHONPATH=str(ROOT))
    p = subprocess.Popen([sys.executable, "-m", "edge", "run", "--config", str(cfg), "--source", str(wav), "--model",
                          str(tiny_model), "--realtime"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=env, cwd=ROOT)
    assert p.stdout is not None
    lines = [p.stdout.readline()]
    assert json.loads(lines[0])["state"] == "on"
    time.sleep(0.8)  # the first earcon has played; now the sound server dies (an earpiece unplugged)
    os.kill(int(pulse["EDGE_PULSE_PID"]), signal.SIGKILL)
    rest, err = p.communicate(timeout=60)
    rec.stop()
    lines += rest.splitlines()
    assert p.returncode == 0, err
    assert [(json.loads(x)["label"], json.loads(x)["state"]) for x in lines] == [
        ("mid_tone", "on"), ("mid_tone", "off"), ("low_tone", "on"), ("low_tone", "off"), ("high_tone", "on"),
        ("high_tone", "off")]
    warnings = [x for x in err.splitlines() if "WARNING" in x]
    assert len(warnings) == 1 and "alerts.earcon: " in warnings[0] and "listening goes on" in warnings[0], err
    assert "Traceback" not in err
    assert "alerts.earcon: 1 played" in err and "2 failed" in err

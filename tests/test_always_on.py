"""Always-on operation with real parts: NaN/silent input, clips opt-in, mic sensor, soak (RSS growth).

The microphone fault test (sound server killed and restarted) is in
test_mic_faults_pulseaudio.py; signals and ``edge doctor`` in test_lifecycle.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from broker import mosquitto  # noqa: F401  (fixture)
from conftest import bursts

from edge.capture.sources import FileSource
from edge.model.classifier import Classifier
from edge.publish.discovery import Topics, discovery_messages
from edge.publish.sinks import CollectSink
from edge.service.config import parse_config
from edge.service.listener import Listener

ROOT = Path(__file__).resolve().parent.parent
SR = 16000


class StatusSink(CollectSink):
    """Keeps every status report (the listener sends one at once on each microphone state change)."""

    def __init__(self) -> None:
        super().__init__()
        self.reports: list[dict] = []

    def status(self, health: dict) -> None:
        self.reports.append(health)


def test_nan_and_zero_input_is_reported_silent_and_never_reaches_the_model(tiny_model, wav_writer):
    # 1 s low tone, 2 s digital zeros, 2 s NaN, 1 s high tone (float WAV so NaN survives the file).
    x = np.concatenate([bursts([(500.0, 0.0, 1.0)], 1.0, SR), np.zeros(2 * SR, np.float32),
                        np.full(2 * SR, np.nan, np.float32), bursts([(2000.0, 0.0, 1.0)], 1.2, SR)])
    path = wav_writer("nan.wav", x, SR, "f32")
    cfg = parse_config({"health": {"silent_after_s": 1.5}, "detector": {"release_s": 0.1}})
    sink = StatusSink()
    scores_ok: list[bool] = []
    lis = Listener(cfg, Classifier(tiny_model), [sink], FileSource(path, block_s=0.1),
                   on_scores=lambda a, b, s: scores_ok.append(bool(np.all(np.isfinite(s)))))
    lis.run()
    states = [r["mic"] for r in sink.reports]
    assert "silent" in states, states
    first_silent = states.index("silent")
    assert "ok" in states[first_silent:], states  # back to ok when the tone arrives
    assert scores_ok and all(scores_ok)
    final = sink.reports[-1]
    assert final["nonfinite_samples"] == 2 * SR and final["mic"] == "ok"
    offs = [(e.label, round(e.onset, 1)) for e in sink.events if e.state == "off"]
    assert [lab for lab, _ in offs] == ["low_tone", "high_tone"], offs
    assert all(np.isfinite(e.level_dbfs) for e in sink.events)


def test_clips_are_written_only_when_capture_clips_is_on(tiny_model, wav_writer, tmp_path, monkeypatch):
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))
    path = wav_writer("t.wav", bursts([(1000.0, 1.0, 1.5)], 3.0, SR), SR)
    clf = Classifier(tiny_model)
    Listener(parse_config({}), clf, [CollectSink()], FileSource(path)).run()
    assert not (tmp_path / "state").exists()  # default: nothing on disk
    cfg = parse_config({"privacy": {"capture_clips": True, "clip_s": 1.0}})
    sink = CollectSink()
    Listener(cfg, clf, [sink], FileSource(path)).run()
    clips = list((tmp_path / "state" / "clips").glob("*.wav"))
    assert len(clips) == 1 and "mid_tone" in clips[0].name
    from edge.capture.audiofile import open_audio

    with open_audio(clips[0]) as r:
        y = np.concatenate(list(r.blocks(SR)))[:, 0]
    assert r.sample_rate == SR and abs(y.size - SR) <= 1
    assert np.abs(y[: SR // 4]).max() < 0.01 < np.abs(y[-SR // 4 :]).max()  # centred on the onset at 1.0 s


def test_mic_state_has_a_home_assistant_enum_sensor_on_the_status_topic():
    msgs = dict(discovery_messages("homeassistant", Topics("homesound", "k"), ["a"], "m", "0.1"))
    mic = msgs["homeassistant/sensor/k/mic/config"]
    assert mic["device_class"] == "enum" and mic["options"] == ["ok", "lost", "silent"]
    assert mic["state_topic"] == "homesound/k/status" and mic["value_template"] == "{{ value_json.mic }}"
    assert mic["availability_topic"] == "homesound/k/availability"


def test_soak_one_hour_of_audio_through_outbox_and_broker_keeps_rss_flat(mosquitto):  # noqa: F811
    """>= 1 h of audio as fast as possible; RSS every simulated minute; growth <= 1 MB after warm-up.

    benchmarks/soak.py --hours 6 is the long run (see README.md, "Always-on operation", for the figures).
    """
    env = dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1")
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "soak.py"), "--hours", "1", "--port",
                        str(mosquitto.port), "--warmup-min", "10"], capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.stdout.strip(), r.stderr[-2000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    print("soak:", res)
    assert res["audio_hours"] >= 1.0 and res["rss_samples"] >= 60
    assert res["events"] == 120  # two bursts per minute
    assert res["messages_produced"] == 240 and res["messages_delivered"] >= 240 and res["outbox_left"] == 0
    assert res["dropped_samples"] == 0
    assert res["max_growth_mb"] <= 1.0, res
    assert r.returncode == 0, r.stderr[-2000:]

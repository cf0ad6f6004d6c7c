"""The whole chain on real WAV files: file -> ring -> resample -> log-mel -> tiny ONNX model -> detector -> sinks."""

import math

import numpy as np
import pytest
from conftest import bursts

from edge.capture.sources import FileSource
from edge.features.level import level_dbfs
from edge.model.classifier import Classifier
from edge.publish.sinks import CollectSink
from edge.service.config import ConfigError, parse_config
from edge.service.listener import Listener, detect_file

# Tiny model: block 0.1 s, window 2 blocks (0.215 s): offsets trail the sound by up to one window.
SPEC = [(500.0, 1.0, 2.0), (2000.0, 3.0, 3.6)]


def _check_events(events, spec=SPEC, tol_on=0.1, tol_off=0.25):
    assert [e.label for e in events] == ["low_tone", "high_tone"]
    for e, (_, a, b) in zip(events, spec, strict=True):
        assert e.state == "off"
        assert a - tol_on <= e.onset <= a + 0.02, (e.onset, a)
        assert b - 0.02 <= e.offset <= b + tol_off, (e.offset, b)
        assert e.score > 0.9 and 0.5 < e.mean_score <= e.score


def test_detect_file_finds_tone_bursts_at_their_times(tiny_model, burst_wav):
    path = burst_wav("bursts.wav", SPEC, 5.0, noise=0.001)
    events = detect_file(path, model=tiny_model)
    _check_events(events)
    # Level of a 0.3-amplitude sine: 20*log10(0.3/sqrt(2)) = -13.5 dBFS.
    assert all(abs(e.level_dbfs - 20 * math.log10(0.3 / math.sqrt(2))) < 0.5 for e in events), events


def test_resampled_stereo_24bit_file_gives_the_same_events(tiny_model, burst_wav):
    path = burst_wav("b44.wav", SPEC, 5.0, sr=44100, channels=2, sample_format="s24")
    _check_events(detect_file(path, model=tiny_model))


def test_repeated_calls_with_a_loaded_classifier_are_identical(tiny_model, burst_wav):
    clf = Classifier(tiny_model)
    path = burst_wav("b.wav", SPEC, 5.0)
    first = [(e.label, e.onset, e.offset, e.score) for e in detect_file(path, model=clf)]
    second = [(e.label, e.onset, e.offset, e.score) for e in detect_file(path, model=clf)]
    assert first == second and len(first) == 2


def test_event_still_sounding_at_end_of_file_is_ended(tiny_model, burst_wav):
    path = burst_wav("tail.wav", [(1000.0, 1.0, 3.0)], 3.0)
    (ev,) = detect_file(path, model=tiny_model)
    assert ev.label == "mid_tone" and ev.offset == pytest.approx(3.0, abs=0.12)


def test_silence_gives_no_events(tiny_model, wav_writer):
    assert detect_file(wav_writer("s.wav", np.zeros(32000), 16000), model=tiny_model) == []


class RecordingSink(CollectSink):
    def __init__(self):
        super().__init__()
        self.levels, self.statuses, self.calls = [], [], []

    def start(self):
        self.calls.append("start")

    def level(self, dbfs, top, t):
        self.levels.append((dbfs, top, t))

    def status(self, health):
        self.statuses.append(health)

    def close(self):
        self.calls.append("close")


def test_sinks_get_levels_each_hop_status_and_events_in_order(tiny_model, burst_wav):
    path = burst_wav("lv.wav", [(1000.0, 1.0, 2.0)], 3.0)
    sink = RecordingSink()
    scores = []
    cfg = parse_config({"model": {"hop_s": 0.2}})
    clf = Classifier(tiny_model)
    Listener(cfg, clf, [sink], FileSource(path), on_scores=lambda a, b, s: scores.append((a, b, s))).run()
    assert sink.calls == ["start", "close"]
    # 3 s = 300 frames (last incomplete) -> 29 blocks; ready after 2; a hop every 2 blocks: blocks 2,4,..,28.
    assert len(sink.levels) == len(scores) == 14
    assert [round(b - a, 3) for a, b, _ in scores] == [0.115] * 14
    dbfs, top, t = sink.levels[7]  # block 16: 1.5 s into a 1 kHz tone
    assert top[0][0] == "mid_tone" and top[0][1] > 0.99 and len(top) == 3
    assert abs(dbfs - 20 * math.log10(0.3 / math.sqrt(2))) < 0.5
    assert sink.levels[0][0] == -120.0  # digital silence hits the floor
    last = sink.statuses[-1]
    assert last["inferences"] == 29 and last["dropped_samples"] == 0 and last["audio_s"] == pytest.approx(3.0)
    assert {"uptime_s", "rtf"} <= set(last)
    assert [e.state for e in sink.events] == ["on", "off"] and sink.events[0].id == sink.events[1].id


def test_hop_must_be_a_multiple_of_the_model_block(tiny_model, wav_writer):
    cfg = parse_config({"model": {"hop_s": 0.15}}, "my.yaml")
    with pytest.raises(ConfigError) as e:
        detect_file(wav_writer("x.wav", np.zeros(100), 16000), cfg, model=tiny_model)
    assert str(e.value) == "my.yaml: model.hop_s: expected a multiple of the model's block length (0.1 s), got 0.15"


def test_unknown_labels_in_config_name_the_key(tiny_model, wav_writer):
    path = wav_writer("x.wav", np.zeros(100), 16000)
    cfg = parse_config({"detector": {"labels": ["mid_tone", "cat"]}}, "my.yaml")
    with pytest.raises(ConfigError) as e:
        detect_file(path, cfg, model=tiny_model)
    assert str(e.value) == ("my.yaml: detector.labels[1]: unknown label 'cat' "
                            "(model labels: low_tone, mid_tone, high_tone)")
    cfg = parse_config({"detector": {"thresholds": {"dog": 0.3}}}, "my.yaml")
    with pytest.raises(ConfigError, match=r"^my.yaml: detector.thresholds.dog: unknown label"):
        detect_file(path, cfg, model=tiny_model)
    cfg = parse_config({"detector": {"releases": {"dog": 3.0}}}, "my.yaml")
    with pytest.raises(ConfigError, match=r"^my.yaml: detector.releases.dog: unknown label"):
        detect_file(path, cfg, model=tiny_model)


def test_lost_audio_keeps_event_times_on_the_stream_clock(tiny_model, tmp_path):
    """Samples lost to an overrun are a gap in time, not a shift of everything after it."""
    sr = 16000
    x = bursts([(500.0, 3.0, 4.0)], 5.0, sr)
    cfg = parse_config({})
    clf = Classifier(tiny_model)
    sink = CollectSink()

    class Dummy:  # feed() is driven directly; only the rate and counters are read
        kind, sample_rate, overflows, error, gaps = "test", sr, 0, None, ()

    lis = Listener(cfg, clf, [sink], Dummy())
    lis.feed(0, x[: sr])             # 0-1 s
    lis.feed(2 * sr, x[2 * sr :])    # 1-2 s were lost
    sink.events += lis.detector.flush()
    on = [e for e in sink.events if e.state == "off"][0]
    assert on.label == "low_tone" and abs(on.onset - 3.0) <= 0.12


def test_level_dbfs_of_known_signals():
    assert level_dbfs(1.0) == 0.0  # full-scale square wave
    assert level_dbfs(0.5) == pytest.approx(-3.0103)  # full-scale sine
    assert level_dbfs(0.0) == -120.0
    assert level_dbfs(1e-30) == -120.0


def test_alarm_confirmation_passes_a_t3_rhythm_and_holds_a_steady_beep(tmp_path, wav_writer):
    from tinymodel import build_tiny_model

    from edge.synth.alarms import AlarmVariant, synth_alarm

    model = build_tiny_model(tmp_path / "alarm.onnx", labels=("smoke_alarm", "mid_tone"), centres_hz=(3100.0, 1000.0))
    sr = 16000
    quiet = np.zeros(sr, np.float32)
    t3 = synth_alarm("T3", 8.0, sr, variant=AlarmVariant(f0=3100.0, harmonics=(1.0,), level_dbfs=-10.0))
    steady = 0.3 * np.sin(2 * np.pi * 3100.0 * np.arange(6 * sr) / sr).astype(np.float32)
    t3_wav = wav_writer("t3.wav", np.concatenate([quiet, t3, quiet]), sr)
    steady_wav = wav_writer("steady.wav", np.concatenate([quiet, steady, quiet]), sr)
    gate = {"detector": {"alarm_confirm": True, "alarm_fallback_s": 30.0, "release_s": 2.0}}
    no_gate = {"detector": {"release_s": 2.0}}

    def labels(path, tree):
        return [e.label for e in detect_file(path, parse_config(tree), model=model)]

    assert "smoke_alarm" in labels(t3_wav, gate)  # one full T3 cycle confirms
    assert "smoke_alarm" in labels(steady_wav, no_gate)  # the classifier alone fires on any 3.1 kHz beep
    assert "smoke_alarm" not in labels(steady_wav, gate)  # no T3 rhythm: held, then dropped


def test_reload_applies_detector_thresholds_but_keeps_the_running_alarm_gate(tiny_model, caplog):
    """SIGHUP path (Lifecycle.reload): the gate holds unconfirmed onsets, so it changes only on restart."""
    import logging

    from edge.service.lifecycle import Lifecycle

    clf = Classifier(tiny_model)

    class Dummy:
        kind, sample_rate, overflows, error = "test", 16000, 0, None

    lis = Listener(parse_config({"detector": {"alarm_confirm": False}}), clf, [CollectSink()], Dummy())
    new = parse_config({"detector": {"alarm_confirm": True, "alarm_fallback_s": 3.0,
                                     "thresholds": {"low_tone": 0.9}}})
    life = Lifecycle(lis, reload_config=lambda: new)
    with caplog.at_level(logging.INFO, logger="edge"):
        assert life.reload()
    assert lis.detector.threshold("low_tone") == 0.9  # applied
    assert lis.alarm_gate is None and lis.cfg.detector.alarm_confirm is False  # kept, and said so
    assert lis.cfg.detector.thresholds == {"low_tone": 0.9}
    msg = [r.getMessage() for r in caplog.records if "reloaded" in r.getMessage()]
    assert msg and "detector.alarm_confirm and detector.alarm_fallback_s need a restart" in msg[0], msg

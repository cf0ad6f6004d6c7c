"""eval-stream: runs the listener's own detection path over a generated scene set and scores it."""

from __future__ import annotations

import csv
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tinymodel import DEFAULT_CENTRES_HZ, DEFAULT_LABELS, build_tiny_model  # noqa: E402

from edge import cli  # noqa: E402
from edge.capture.audiofile import write_wav  # noqa: E402
from edge.cli import eval_stream as stream_command  # noqa: E402
from edge.evaluate import stream as st  # noqa: E402
from edge.evaluate.soundscape import SceneSettings, generate  # noqa: E402
from edge.evaluate.tune import Objective, apply_tuned, new_detector, replay, to_yaml, tune  # noqa: E402
from edge.model.classifier import Classifier  # noqa: E402
from edge.service.config import load_config, parse_config  # noqa: E402

SR = 16000


@pytest.fixture(scope="module")
def scene_set(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("evalstream")
    rng = np.random.default_rng(0)
    rows = []
    for lab, f in zip(DEFAULT_LABELS, DEFAULT_CENTRES_HZ, strict=True):
        for i in range(2):
            dur = 1.5 + i
            x = np.zeros(int((dur + 0.6) * SR), np.float32)
            t = np.arange(int(dur * SR)) / SR
            x[int(0.3 * SR) : int(0.3 * SR) + t.size] = 0.3 * np.sin(2 * np.pi * f * t)
            p = root / "data" / f"{lab}_{i}.wav"
            p.parent.mkdir(parents=True, exist_ok=True)
            write_wav(p, x, SR)
            rows.append((p.name, lab))
    for i in range(2):
        p = root / "data" / f"bg_{i}.wav"
        write_wav(p, (0.02 * rng.standard_normal(4 * SR)).astype(np.float32), SR)
        rows.append((p.name, "background"))
    m = root / "data" / "manifest.csv"
    with m.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "fold", "duration_s", "source", "license", "original_name"])
        w.writerows([(name, lab, 1, "2", "test", "CC0-1.0", name) for name, lab in rows])
    s = SceneSettings(folds=(1,), snrs=(12.0, 18.0), n_scenes=2, events_per_scene=(3, 4),
                      background_hours=40 / 3600, background_file_s=20.0, synthetic=(), seed=2,
                      max_background_uses=100)  # two 4 s clips: this test is about the metrics, not reuse
    generate(m, root / "scenes", s)
    model = build_tiny_model(root / "tiny.onnx")
    return root / "scenes", model


@pytest.fixture(scope="module")
def recorded(scene_set: tuple[Path, Path]) -> tuple[Classifier, list[st.SceneRun]]:
    scenes, model = scene_set
    clf = Classifier(model)
    _, runs = st.run_scene_set(scenes, load_config(None), clf, record_scores=True)
    return clf, runs


def test_eval_stream_reports_metrics_for_the_scene_set(scene_set: tuple[Path, Path], tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    scenes, model = scene_set
    out = tmp_path / "r.json"
    png = tmp_path / "t.png"
    rc = stream_command.main(["--scenes", str(scenes), "--model", str(model), "--json", "--out", str(out),
                              "--plot", str(png)])
    assert rc == 0
    m = json.loads(capsys.readouterr().out)
    assert m == json.loads(out.read_text())
    meta = json.loads((scenes / "scenes.json").read_text())
    n_ref = sum(len(x["events"]) for x in meta["scenes"])
    assert m["reference_events"] == n_ref and m["scenes"] == 2
    assert m["background_hours"] == pytest.approx(40 / 3600, abs=1e-4)
    assert m["false_alarms_per_hour"] == pytest.approx(m["false_alarms"] / m["background_hours"], rel=1e-3)
    # The tone model hears its tones: most events are found within the 500 ms collar.
    assert m["event_f1_500ms"] >= 0.5
    assert 0.0 <= m["event_f1_200ms"] <= m["event_f1_500ms"] + 1e-9
    assert set(m["per_class_500ms"]) == set(DEFAULT_LABELS)
    assert m["decision_latency_s"]["all"]["n"] > 0
    assert png.stat().st_size > 1000


def test_eval_stream_detections_equal_edge_detect_output(scene_set: tuple[Path, Path], recorded: tuple,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    scenes, model = scene_set
    _, runs = recorded
    for r in runs[:2]:
        assert cli.main(["detect", str(scenes / "scenes" / f"{r.name}.wav"), "--model", str(model)]) == 0
        lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.strip()]
        via_cli = [(d["label"], d["onset"], d["offset"]) for d in lines]
        assert via_cli == [(lab, round(a, 3), round(b, 3)) for a, b, lab in r.detected]
        assert r.detected, "the scene should produce detections"


def test_tuning_replay_reproduces_the_listener_and_tune_returns_valid_settings(recorded: tuple) -> None:
    cfg = load_config(None)
    clf, runs = recorded
    c = clf.contract
    for r in runs:
        ev, emitted = replay(r, c, cfg.detector)
        assert sorted(ev) == sorted(r.detected)
        assert sorted(emitted) == pytest.approx(sorted(r.emitted_at))
    res = tune(runs, c, cfg.detector, Objective(), rounds=1)
    d = res["detector"]
    assert set(d["thresholds"]) == set(c.labels)
    assert d["persistence_k"] <= d["persistence_n"]
    assert res["objective"] >= res["trace"][0]["objective"]
    # The YAML snippet is a valid config.yaml fragment.
    snippet = parse_config(yaml.safe_load(to_yaml(res)), "tuned.yaml")
    assert snippet.detector.thresholds == d["thresholds"]
    assert snippet.detector.releases == d["releases"] and snippet.detector.onset_lead_s == d["onset_lead_s"]
    assert set(d["releases"]) <= set(c.labels) - {"smoke_alarm", "co_alarm"}
    tuned = apply_tuned(cfg.detector, d)
    assert tuned.releases == d["releases"] and tuned.onset_lead_s == d["onset_lead_s"]


def test_bad_input_is_one_line_with_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert stream_command.main(["--scenes", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no scenes.json" in err
    assert stream_command.main(["--make", str(tmp_path / "o"), "--manifest", str(tmp_path / "m.csv"),
                                "--folds", "1"]) == 2
    assert "manifest not found" in capsys.readouterr().err


def test_make_passes_the_licence_filter_to_the_generator(scene_set: tuple[Path, Path], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    manifest = scene_set[0].parent / "data" / "manifest.csv"
    opts = ["--folds", "1", "--n-scenes", "1", "--background-hours", "0", "--synthetic", "", "--licence", "commercial"]
    assert stream_command.main(["--make", str(tmp_path / "c"), "--manifest", str(manifest), *opts]) == 0
    assert json.loads((tmp_path / "c" / "scenes.json").read_text())["settings"]["licence"] == "commercial"
    bare = tmp_path / "bare.csv"
    bare.write_text("path,label,fold\n" + "".join(f"{p},{lab},1\n" for p, lab in (
        (manifest.parent / "bg_0.wav", "background"), (manifest.parent / "bg_1.wav", "background"))))
    capsys.readouterr()
    assert stream_command.main(["--make", str(tmp_path / "b"), "--manifest", str(bare), *opts]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "lacks the column(s) license" in err


def test_alarm_gate_replay_passes_non_alarm_labels_unchanged(recorded: tuple) -> None:
    cfg = load_config(None)
    clf, runs = recorded
    c = clf.contract
    for r in runs:
        gated, _ = replay(r, c, cfg.detector, gate=(c.frontend, 10.0))
        assert sorted(gated) == sorted(r.detected)  # tiny model has no smoke/CO labels


def test_replay_with_a_longer_hop_reproduces_the_listener_at_that_hop(scene_set: tuple[Path, Path],
                                                                      recorded: tuple) -> None:
    scenes, model = scene_set
    clf, runs = recorded
    c = clf.contract
    cfg2 = parse_config({"model": {"hop_s": 2 * c.block_seconds}})
    _, runs2 = st.run_scene_set(scenes, cfg2, clf, record_scores=False)
    for r1, r2 in zip(runs, runs2, strict=True):
        ev, _ = replay(r1, c, cfg2.detector, hop_blocks=2)
        assert sorted(ev) == sorted(r2.detected)


def test_tuned_settings_written_into_a_model_become_the_listeners_defaults(
        scene_set: tuple[Path, Path], recorded: tuple, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("onnx", reason="writing a model's contract needs onnx (the 'train'/'test' extra)")
    scenes, model = scene_set
    tuned_json = tmp_path / "tuned.json"
    out_model = tmp_path / "tuned.onnx"
    assert stream_command.main(["--scenes", str(scenes), "--model", str(model), "--tune", str(tuned_json),
                                "--write-model", str(out_model)]) == 0
    capsys.readouterr()
    tuned = json.loads(tuned_json.read_text())["detector"]
    # Distinct from the fallbacks, so the check below can tell them apart.
    tuned = tuned | {"thresholds": {lab: 0.35 for lab in tuned["thresholds"]}, "onset_lead_s": 0.24,
                     "releases": {DEFAULT_LABELS[0]: 3.0}, "hysteresis": 0.2}
    from edge.evaluate.tune import write_tuned_model

    write_tuned_model(model, out_model, tuned)
    clf2 = Classifier(out_model)
    assert clf2.contract.detector == tuned
    assert clf2.contract.thresholds == Classifier(model).contract.thresholds  # clip thresholds kept
    _, runs = recorded
    cfg = load_config(None)
    for r in runs:
        via_defaults, _ = replay(r, clf2.contract, cfg.detector)
        via_config, _ = replay(r, Classifier(model).contract, apply_tuned(cfg.detector, tuned))
        assert via_defaults == via_config
    # A configured value still wins over the model's.
    det = new_detector(clf2.contract, dataclasses.replace(cfg.detector, thresholds={DEFAULT_LABELS[0]: 0.9}))
    assert det.threshold(DEFAULT_LABELS[0]) == 0.9 and det.threshold(DEFAULT_LABELS[1]) == 0.35
    assert stream_command.main(["--scenes", str(scenes), "--write-model", str(out_model)]) == 2
    assert "only go with --tune" in capsys.readouterr().err


@pytest.mark.parametrize(("flags", "message"), [
    (["--out", "{t}/no-folder/r.json"], "--out: {t}/no-folder/r.json: folder {t}/no-folder does not exist"),
    (["--plot", "{t}/timeline.txt"], "--plot: {t}/timeline.txt: expected a .png / .pdf / .svg file"),
    (["--tune", "{t}"], "--tune: {t} is a folder, expected a file path"),
    (["--tune", "{t}/t.json", "--hops", "1.5"], "--hops: expected whole numbers of blocks >= 1, got '1.5'"),
])
def test_unusable_outputs_and_options_are_refused_before_the_scenes_are_run(
        scene_set: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str],
        message: str) -> None:
    scenes, model = scene_set
    args = [f.format(t=tmp_path) for f in flags]
    assert stream_command.main(["--scenes", str(scenes), "--model", str(model), *args]) == 2
    cap = capsys.readouterr()
    assert cap.err.strip() == "edge eval-stream: " + message.format(t=tmp_path)
    assert "ran " not in cap.err  # nothing was run first


@pytest.mark.parametrize(("content", "message"), [
    ("[1, 2]", "no 'scenes' list (not written by 'edge eval-stream --make'?)"),
    ('{"scenes": []}', "no 'scenes' list (not written by 'edge eval-stream --make'?)"),
    ('{"scenes": [{"name": "s0", "wav": "s0.wav"}]}', "scenes[0] lacks annotation, duration_s, background_only"),
    ('{"scenes": [{"name": "s0", "wav": "s0.wav", "annotation": "s0.txt", "duration_s": 1, '
     '"background_only": false}]}', "scenes[0]: annotation {d}/s0.txt not found"),
])
def test_a_damaged_scenes_json_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str,
                                           message: str) -> None:
    (tmp_path / "scenes.json").write_text(content)
    assert stream_command.main(["--scenes", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == (f"edge eval-stream: {tmp_path / 'scenes.json'}: "
                                               + message.format(d=tmp_path))


def test_a_tuning_file_gets_the_same_validation_as_config_yaml(scene_set: tuple[Path, Path], tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    scenes, model = scene_set
    bad = tmp_path / "tuned.json"
    bad.write_text('{"detector": {"thresholds": {"low_tone": 5}, "hysteresis": 0.1}}')
    assert stream_command.main(["--scenes", str(scenes), "--model", str(model), "--tuned", str(bad)]) == 2
    assert capsys.readouterr().err.strip() == (f"edge eval-stream: {bad}: detector.thresholds.low_tone: "
                                               "expected a number in [0, 1], got 5")


def test_tune_only_searches_the_named_settings_and_keeps_the_rest(recorded: tuple) -> None:
    cfg = load_config(None)
    clf, runs = recorded
    c = clf.contract
    full = tune(runs, c, cfg.detector, Objective(), rounds=1)
    start = full["trace"][0]["objective"]
    res = tune(runs, c, cfg.detector, Objective(), rounds=1, only=["onset"])
    d, before = res["detector"], new_detector(c, cfg.detector)
    assert d["thresholds"] == {lab: round(before.threshold(lab), 3) for lab in c.labels}
    kept = ("hysteresis", "persistence_k", "persistence_n", "release_s", "offset_lag_s", "releases")
    assert {k: d[k] for k in kept} == {k: getattr(before.cfg, k) for k in kept}
    assert res["trace"][0]["objective"] == start and res["objective"] >= start
    steps = [t["step"].split("=")[0] for t in res["trace"][1:]]
    assert set(steps) <= {"onset"}
    with pytest.raises(ValueError, match="cannot tune colour"):
        tune(runs, c, cfg.detector, Objective(), only=["colour"])


def test_only_is_checked_before_listening(scene_set: tuple, capsys: pytest.CaptureFixture[str]) -> None:
    scenes, model = scene_set
    assert stream_command.main(["--scenes", str(scenes), "--model", str(model), "--tune", "t.json",
                                "--only", "thresholds,volume"]) == 2
    assert "--only: expected names among" in capsys.readouterr().err

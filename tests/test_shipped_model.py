"""The committed models honour the runtime contract: labels, front end, size, outputs, streaming equivalence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.features.frontend import FrontendParams, logmel
from edge.model.classifier import Classifier
from edge.model.contract import read_contract
from edge.synth.alarms import synth_alarm

MODELS = Path(__file__).resolve().parents[1] / "models"
SHIPPED = ["homesound-int8.onnx", "homesound-commercial-int8.onnx"]
ALL_LABELS = ("smoke_alarm", "co_alarm", "clock_alarm", "siren", "door_knock", "glass_breaking", "dog_bark",
              "cat_meow", "baby_cry", "speech", "coughing", "sneezing", "running_water", "toilet_flush",
              "vacuum_cleaner", "washing_machine", "footsteps", "keyboard_typing")


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_carries_the_streaming_contract(name: str) -> None:
    path = MODELS / name
    assert path.is_file(), f"{path} missing"
    assert path.stat().st_size <= 250_000
    c = read_contract(path)
    assert c.frontend == FrontendParams()
    assert (c.block_frames, c.window_blocks) == (24, 4)
    assert "background" not in c.labels and {"smoke_alarm", "co_alarm"} <= set(c.labels)
    assert set(c.thresholds) == set(c.labels) and all(0.0 < t < 1.0 for t in c.thresholds.values())
    assert c.model_version.startswith("homesound-") and "quick" not in c.model_version
    assert c.extra["macs_per_second"] <= 7_000_000
    assert c.license and c.training_data
    if "commercial" in name:
        assert "commercial use permitted" in c.license
        assert not {"cat_meow", "siren", "glass_breaking"} & set(c.labels)
    else:
        assert c.labels == ALL_LABELS
        assert "non-commercial" in c.license


def test_labels_txt_matches_the_main_model() -> None:
    c = read_contract(MODELS / "homesound-int8.onnx")
    assert tuple((MODELS / "labels.txt").read_text().split()) == c.labels


@pytest.mark.parametrize("name", SHIPPED)
def test_streaming_calls_equal_a_fresh_window_computation(name: str) -> None:
    """A window's streamed scores equal feeding just its 4 blocks into a fresh classifier.

    The encoder is block-local, so the cache carries nothing but the encodings of the previous blocks.
    """
    clf = Classifier(MODELS / name)
    c = clf.contract
    x = synth_alarm("T4", 3.0) + np.random.default_rng(0).normal(0, 0.01, 48000).astype(np.float32)
    mel = logmel(x, c.frontend)
    stream, emb = clf.score_frames(mel)
    assert stream.shape[1] == len(c.labels) and emb.shape[1] == c.embedding_dim
    bf = c.block_frames
    n_blocks = mel.shape[0] // bf
    for last in (c.window_blocks - 1, n_blocks - 1):
        clf.reset()
        for b in range(last - c.window_blocks + 1, last + 1):
            s, e = clf.push_block(mel[b * bf:(b + 1) * bf])
        np.testing.assert_allclose(s, stream[last - c.window_blocks + 1], atol=1e-6)
        np.testing.assert_allclose(e, emb[last - c.window_blocks + 1], atol=1e-6)
    assert np.all((stream >= 0) & (stream <= 1))


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_carries_stream_tuned_detector_defaults_the_listener_uses(name: str) -> None:
    from edge.evaluate.tune import new_detector
    from edge.service.config import load_config

    c = read_contract(MODELS / name)
    d = c.detector
    assert set(d["thresholds"]) == set(c.labels) and all(0.0 < t < 1.0 for t in d["thresholds"].values())
    releases = d.get("releases", {})
    assert set(releases) <= set(c.labels) and d["persistence_k"] <= d["persistence_n"]
    assert 0.0 <= d["onset_lead_s"] <= 1.0
    # Calibrated by false-alarm budgets: one operating point per sensitivity, each with the
    # false alarms per hour it was measured at; the default (medium) is the contract's thresholds.
    points, rates = d["operating_points"], d["false_alarms_per_hour"]
    assert set(points) == set(rates) == {"low", "medium", "high"}
    assert points["medium"]["thresholds"] == d["thresholds"]
    for s in points:
        assert set(points[s]["thresholds"]) == set(rates[s]) == set(c.labels)
    # The listener's detector takes them for every setting the configuration leaves null.
    det = new_detector(c, load_config(None).detector)
    assert {lab: det.threshold(lab) for lab in c.labels} == d["thresholds"]
    assert det.cfg.onset_lead_s == d["onset_lead_s"] and det.cfg.release_s == d["release_s"]
    assert det.cfg.releases == releases


def test_doctor_shows_the_bundled_models_tuned_detector_defaults() -> None:
    from edge.cli.doctor import PASS, check_model
    from edge.service.config import load_config

    status, _msg, details, _rate = check_model(load_config(None))
    assert status == PASS
    tuned = next(x for x in details if x.startswith("tuned detector defaults:"))
    c = read_contract(MODELS / "homesound-int8.onnx")
    assert f"onset_lead_s {c.detector['onset_lead_s']}" in tuned
    assert f"smoke_alarm {c.detector['thresholds']['smoke_alarm']:g}" in tuned


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_carries_familiarity_prototypes_except_for_safety_sounds(name: str) -> None:
    c = read_contract(MODELS / name)
    p = c.familiarity()
    assert p is not None and p.dim == c.embedding_dim == 128
    safety = {"smoke_alarm", "co_alarm", "glass_breaking", "baby_cry"}
    assert set(p.vectors) == set(c.labels) - safety
    assert 0.5 < p.min_similarity < 1.0
    assert all(1 <= v.shape[0] <= 32 and np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
               for v in p.vectors.values())


def test_shipped_model_keeps_the_demo_alarms_and_doctor_reports_the_familiarity_check() -> None:
    from edge.cli.doctor import check_model
    from edge.core.paths import demo_recording
    from edge.service.config import load_config
    from edge.service.listener import detect_file

    # Smoke and CO are never held back; nothing else fires on the demo room noise.
    assert [e.label for e in detect_file(demo_recording())] == ["smoke_alarm", "co_alarm"]
    _status, _msg, details, _rate = check_model(load_config(None))
    line = next(x for x in details if x.startswith("familiarity check:"))
    assert "min_similarity 0.9" in line and "glass_breaking" not in line and "dog_bark" in line


def test_doctor_reports_a_learnt_home_background_and_fails_on_a_missing_one(tmp_path) -> None:
    from edge import cli
    from edge.cli.doctor import FAIL, PASS, check_model
    from edge.core.paths import demo_recording
    from edge.service.config import parse_config

    out = tmp_path / "home.npz"
    assert cli.main(["learn-background", "--source", str(demo_recording()), "--seconds", "5", "--out", str(out)]) == 0
    status, _msg, details, _rate = check_model(parse_config({"detector": {"home_background": str(out)}}))
    line = next(x for x in details if x.startswith("home background:"))
    assert status == PASS and "learnt with this model" in line and "from 5 s of audio" in line, line
    status, msg, _details, _rate = check_model(parse_config({"detector": {"home_background": str(tmp_path / "x")}}))
    assert status == FAIL and "no such file" in msg

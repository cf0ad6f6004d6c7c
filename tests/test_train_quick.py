"""The quick training recipe runs end to end: data -> train -> ONNX -> int8 -> runtime Classifier."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="training needs the 'train' extra (torch)")

DATA = Path(os.environ.get("EDGE_HOMESOUNDS", Path(__file__).resolve().parents[1].parent / "shared/data/homesounds"))
pytestmark = [
    pytest.mark.needs_data,
    pytest.mark.slow,
    pytest.mark.skipif(not (DATA / "manifest.csv").is_file(),
                       reason=f"homesounds data not found at {DATA} (set EDGE_HOMESOUNDS)"),
]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from edge.train.recipe import train

    return train(DATA, tmp_path_factory.mktemp("quick"), folds=[1, 2, 3, 4], seed=3, quick=True, progress=False)


def test_quick_recipe_ships_an_int8_model_the_runtime_loads_and_runs(quick_run: dict) -> None:
    from edge.features.frontend import logmel
    from edge.model.classifier import Classifier
    from edge.synth.alarms import synth_alarm

    clf = Classifier(quick_run["int8_path"])
    c = clf.contract
    assert "co_alarm" in c.labels and "smoke_alarm" in c.labels and "background" not in c.labels
    assert (c.block_frames, c.window_blocks) == (24, 4)
    assert set(c.thresholds) == set(c.labels)
    assert c.extra["train_folds"] == [1, 2, 3, 4]
    mel = logmel(synth_alarm("T3", 3.0), c.frontend)
    scores, emb = clf.score_frames(mel)
    assert scores.shape == (mel.shape[0] // 24 - 3, len(c.labels)) and emb.shape[1] == c.embedding_dim
    assert np.all((scores >= 0) & (scores <= 1)) and np.all(np.isfinite(emb))
    assert quick_run["int8_bytes"] <= 250_000
    assert quick_run["macs_per_second"] <= 7e6
    assert quick_run["export_max_abs_err"] < 1e-4
    env = quick_run["environment"]  # a seed reproduces only on the same CPU type, libraries and threads
    assert env["torch"] and env["onnxruntime"] and env["cpu"] and env["threads"] >= 1
    assert isinstance(env["simd"], list)


def test_quick_model_carries_prototypes_for_the_familiarity_check_but_none_for_safety_sounds(quick_run: dict) -> None:
    from edge.detect.labels import NEVER_HELD
    from edge.model.classifier import Classifier

    c = Classifier(quick_run["int8_path"]).contract
    p = c.familiarity()
    assert p is not None and p.dim == c.embedding_dim
    assert set(p.vectors) and set(p.vectors) <= set(c.labels) - NEVER_HELD
    assert {"glass_breaking", "baby_cry", "smoke_alarm", "co_alarm"}.isdisjoint(p.vectors)
    assert 0.0 < p.min_similarity < 1.0
    assert quick_run["familiarity"]["labels"] == len(p.vectors)
    assert quick_run["familiarity"]["min_similarity"] == pytest.approx(p.min_similarity, abs=1e-4)
    assert all(v.shape[0] <= 32 for v in p.vectors.values())


def test_recipe_writes_the_held_out_clips_as_a_manifest_for_detector_tuning(quick_run: dict) -> None:
    from edge.evaluate.soundscape import read_manifest
    from edge.train import data as D
    from edge.train.recipe import quick_rows

    held = read_manifest(quick_run["inner_val_manifest"])
    assert len(held) == quick_run["n_inner_val"] > 0
    assert all(c.path.is_absolute() and c.path.is_file() for c in held)
    assert {c.fold for c in held} <= {1, 2, 3, 4}
    # Whole recording groups are held out: none of them also trained the model. The quick run
    # trains on its clips of folds 1-4, minus the held-out ones.
    quick = quick_rows(D.select_folds(D.read_manifest(DATA), [1, 2, 3, 4]))
    held_paths = {c.path for c in held}
    assert held_paths < {(DATA / r.path).resolve() for r in quick}
    group = {(DATA / r.path).resolve(): D.recording_group(DATA / r.path, r.group) for r in quick}
    held_groups = {group[p] for p in held_paths}
    assert not [p for p in group if p not in held_paths and group[p] in held_groups]


def test_quick_recipe_is_deterministic_for_a_seed(quick_run: dict, tmp_path: Path) -> None:
    from edge.train.recipe import train

    again = train(DATA, tmp_path, folds=[1, 2, 3, 4], seed=3, quick=True, progress=False)
    assert Path(again["fp32_path"]).read_bytes() == Path(quick_run["fp32_path"]).read_bytes()
    assert again["thresholds"] == quick_run["thresholds"]


def test_refit_ships_a_model_trained_on_the_held_out_clips_too_with_the_decision_they_tuned(
        quick_run: dict, tmp_path: Path) -> None:
    from dataclasses import replace

    from edge.model.classifier import Classifier
    from edge.train.recipe import QUICK, train

    refit = train(DATA, tmp_path, folds=[1, 2, 3, 4], seed=3, quick=True, progress=False,
                  schedule=replace(QUICK, refit=True))
    assert refit["refit"] is True and quick_run["refit"] is False
    # Same seed, same first pass: the decision is the one tuned on the held-out clips ...
    assert (refit["pooling"], refit["thresholds"]) == (quick_run["pooling"], quick_run["thresholds"])
    assert refit["inner_val_macro_f1"] == quick_run["inner_val_macro_f1"]
    # ... but the shipped weights come from a second pass that also saw those clips.
    assert refit["n_train_real"] == quick_run["n_train_real"] + quick_run["n_inner_val"]
    assert Path(refit["fp32_path"]).read_bytes() != Path(quick_run["fp32_path"]).read_bytes()
    c = Classifier(refit["int8_path"]).contract
    assert c.thresholds == pytest.approx(quick_run["thresholds"])
    assert c.extra["clip_pooling"] == quick_run["pooling"]


def test_edge_train_refit_flag_trains_the_second_pass(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    from edge.train import data as D
    from edge.train.recipe import quick_rows

    r = subprocess.run([sys.executable, "-m", "edge", "train", "--data", str(DATA), "--out", str(tmp_path),
                        "--quick", "--refit", "--threads", "1"], capture_output=True, text=True, timeout=600,
                       cwd=Path(__file__).resolve().parents[1])
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    report = json.loads((tmp_path / "homesound-train.json").read_text())
    assert out["refit"] is True and report["schedule"]["refit"] is True
    # The shipped pass trained on every (quick) clip of the manifest, held-out ones included.
    assert out["n_train_real"] == len(quick_rows(D.read_manifest(DATA))) > report["n_inner_val"] > 0


def test_commercial_licence_filter_drops_non_commercial_clips() -> None:
    from edge.train.data import licence_filter, read_manifest

    rows = read_manifest(DATA)
    kept = licence_filter(rows, "commercial")
    assert kept and all(not r.license.startswith(("CC-BY-NC", "CC-Sampling+")) for r in kept)
    assert len(kept) < len(rows)


def test_recipe_without_its_teacher_says_so_and_trains_without_distillation(tmp_path: Path) -> None:
    from dataclasses import replace

    from edge.train.recipe import QUICK, train

    rep = train(DATA, tmp_path, folds=[1], seed=0, quick=True, progress=False,
                schedule=replace(QUICK, epochs=1, distill_weight=3.0), teacher_model=tmp_path / "missing.tflite",
                teacher_cache=tmp_path / "empty-cache")
    assert rep["teacher"].startswith("none (YAMNet model not found at")
    assert rep["schedule"]["distill_weight"] == 0.0
    assert Path(rep["int8_path"]).is_file()


def test_recipe_with_the_yamnet_teacher_trains_an_auxiliary_head_it_does_not_export(tmp_path: Path) -> None:
    from dataclasses import replace

    from edge.train.recipe import QUICK, train
    from edge.yamnet.scorer import yamnet_available

    reason = yamnet_available()
    if reason:
        pytest.skip(reason)
    rep = train(DATA, tmp_path / "out", folds=[1], seed=0, quick=True, progress=False,
                schedule=replace(QUICK, epochs=1, steps_per_epoch=3, distill_weight=3.0),
                teacher_cache=tmp_path / "cache")
    assert rep["teacher"].endswith("yamnet.tflite") and rep["schedule"]["distill_weight"] == 3.0
    assert any((tmp_path / "cache").iterdir())
    import onnx

    outputs = [o.name for o in onnx.load(rep["int8_path"]).graph.output]
    assert outputs == ["scores", "embedding", "cache_out"]
    # With every training clip cached, YAMNet itself is no longer needed (e.g. on a training server).
    again = train(DATA, tmp_path / "again", folds=[1], seed=0, quick=True, progress=False,
                  schedule=replace(QUICK, epochs=1, steps_per_epoch=3, distill_weight=3.0),
                  teacher_cache=tmp_path / "cache", teacher_model=tmp_path / "missing.tflite")
    assert again["teacher"].startswith("cached YAMNet scores in") and again["schedule"]["distill_weight"] == 3.0


@pytest.mark.parametrize("argv, says", [
    (["--cv", "--folds", "9"], "edge: --folds: no fold 9 in the data (folds: 1, 2, 3, 4, 5)"),
    (["--folds", "1"], "edge: train: --folds: only with --cv"),
])
def test_edge_train_refuses_folds_the_data_does_not_have_in_one_line(tmp_path: Path, argv: list[str],
                                                                     says: str) -> None:
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "edge", "train", "--data", str(DATA), "--out", str(tmp_path / "o"),
                        "--quick", *argv], capture_output=True, text=True, timeout=120,
                       cwd=Path(__file__).resolve().parents[1])
    assert r.returncode == 2 and r.stderr.strip() == says, r.stderr

"""`edge eval-clips`: clip decisions, metrics and the output schema on a small manifest of real WAV files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import tone

from edge.capture.audiofile import write_wav
from edge.cli import eval_clips as clips_command
from edge.evaluate.clips import decide, metrics, pool_scores

SR = 16000


def _manifest(root: Path) -> Path:
    """Clips under root/audio, manifest with paths relative to root; one label the model does not know."""
    rows = []
    noise = np.random.default_rng(0).normal(0, 0.001, int(1.5 * SR)).astype(np.float32)
    specs = [("low_tone", 500.0, 2.0), ("low_tone", 500.0, 0.5), ("mid_tone", 1000.0, 1.5),
             ("high_tone", 2000.0, 1.2), ("background", None, 1.5), ("doorbell", 700.0, 1.0)]
    for k, (label, f, dur) in enumerate(specs):
        x = tone(f, dur, SR) if f else noise[: int(dur * SR)]
        rel = Path("audio") / label / f"clip{k}.wav"
        (root / rel.parent).mkdir(parents=True, exist_ok=True)
        write_wav(root / rel, x, SR)
        rows.append({"path": rel.as_posix(), "label": label, "fold": 1, "duration_s": dur, "source": "test",
                     "license": "CC0-1.0", "original_name": rel.name})
    path = root / "manifest.csv"
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def _run(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    clips_command.register(sub)
    args = parser.parse_args(argv)
    return args.func(args)


def test_eval_clips_json_has_the_documented_schema(tiny_model: Path, tmp_path: Path, capsys) -> None:
    manifest = _manifest(tmp_path / "set")
    png = tmp_path / "confusion.png"
    assert _run(["eval-clips", "--manifest", str(manifest), "--model", str(tiny_model), "--json",
                 "--plot", str(png)]) == 0
    res = json.loads(capsys.readouterr().out)
    for key in ("accuracy", "macro_f1", "per_class", "confusion", "skipped_labels", "n_clips", "pooling",
                "thresholds", "predictions"):
        assert key in res
    assert res["skipped_labels"] == {"doorbell": 1}
    assert res["n_clips"] == 5
    for m in res["per_class"].values():
        assert set(m) >= {"precision", "recall", "f1", "support"}
    labels = res["confusion"]["labels"]
    matrix = np.array(res["confusion"]["matrix"])
    assert matrix.shape == (len(labels), len(labels)) and matrix.sum() == 5
    # The tiny model recognises pure tones at its centre frequencies (short clips padded with the floor).
    assert res["accuracy"] == pytest.approx(1.0)
    assert png.is_file() and png.read_bytes()[:4] == b"\x89PNG"


def test_eval_clips_text_report_and_bad_manifest(tiny_model: Path, tmp_path: Path, capsys) -> None:
    manifest = _manifest(tmp_path / "set")
    assert _run(["eval-clips", "--manifest", str(manifest), "--model", str(tiny_model)]) == 0
    out = capsys.readouterr().out
    assert "macro-F1" in out and "skipped labels the model does not know: doorbell (1)" in out
    assert _run(["eval-clips", "--manifest", str(tmp_path / "nope.csv"), "--model", str(tiny_model)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("edge: ") and "manifest not found" in err and len(err.strip().splitlines()) == 1


def test_decision_is_top_label_above_threshold_else_background() -> None:
    pooled = np.array([[0.9, 0.2], [0.4, 0.3], [0.1, 0.7]])
    assert decide(pooled, ["a", "b"], np.array([0.5, 0.8])) == ["a", "background", "background"]
    assert pool_scores(np.array([[0.2, 0.0], [0.6, 0.4]]), "meanmax") == pytest.approx([0.5, 0.3])


def test_metrics_macro_f1_counts_only_classes_present_in_the_truth() -> None:
    m = metrics(["a", "a", "background"], ["a", "b", "background"])
    assert m["per_class"]["a"]["recall"] == pytest.approx(0.5)
    assert m["per_class"]["b"]["precision"] == 0.0
    assert m["macro_f1"] == pytest.approx((2 / 3 + 1.0) / 2)


def test_train_command_with_a_missing_data_folder_is_a_one_line_error(tmp_path: Path, capsys) -> None:
    import argparse

    from edge.cli import train as command

    parser = argparse.ArgumentParser()
    command.register(parser.add_subparsers())
    args = parser.parse_args(["train", "--data", str(tmp_path / "nowhere"), "--quick"])
    assert args.func(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("edge: ") and "manifest not found" in err and "\n" not in err


@pytest.mark.parametrize(("plot", "message"), [
    ("cm.json", "--plot: {p}: expected a .png / .pdf / .svg file"),
    ("missing-folder/cm.png", "--plot: {p}: folder {d} does not exist"),
])
def test_eval_clips_refuses_an_unwritable_plot_before_scoring(tiny_model: Path, tmp_path: Path, capsys,
                                                              plot: str, message: str) -> None:
    manifest = _manifest(tmp_path / "set")
    p = tmp_path / plot
    assert _run(["eval-clips", "--manifest", str(manifest), "--model", str(tiny_model), "--plot", str(p)]) == 2
    cap = capsys.readouterr()
    assert cap.err.strip() == "edge: " + message.format(p=p, d=p.parent) and cap.out == ""


def test_eval_clips_with_no_label_the_model_knows_exits_2(tiny_model: Path, tmp_path: Path, capsys) -> None:
    root = tmp_path / "set"
    root.mkdir()
    write_wav(root / "a.wav", tone(700.0, 1.0, SR), SR)
    (root / "manifest.csv").write_text("path,label\na.wav,doorbell\n")
    assert _run(["eval-clips", "--manifest", str(root / "manifest.csv"), "--model", str(tiny_model)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"edge: {root / 'manifest.csv'}: no clip has a label the model knows (skipped: doorbell)"


def test_train_command_refuses_a_bad_output_folder_or_seed_before_training(tmp_path: Path, capsys) -> None:
    import argparse

    from edge.cli import train as command

    data = _manifest(tmp_path / "set").parent
    (tmp_path / "file").write_text("x")
    parser = argparse.ArgumentParser()
    command.register(parser.add_subparsers())
    args = parser.parse_args(["train", "--data", str(data), "--quick", "--out", str(tmp_path / "file")])
    assert args.func(args) == 2
    assert capsys.readouterr().err.strip() == f"edge: --out: {tmp_path / 'file'} exists and is not a folder"
    with pytest.raises(SystemExit) as e:
        parser.parse_args(["train", "--seed", "-1"])
    assert e.value.code == 2 and "--seed: expected an integer >= 0, got '-1'" in capsys.readouterr().err

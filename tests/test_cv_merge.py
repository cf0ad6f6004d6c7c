"""Cross-validation folds run apart (processes, machines) merge into the table one sequential run gives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="training needs the 'train' extra (torch)")

from edge.evaluate.clips import metrics  # noqa: E402
from edge.evaluate.cv import format_cv, merge  # noqa: E402


def _fold(k: int, truth: list[str], pred: list[str]) -> dict:
    ev = metrics(truth, pred)
    return {"fold": k, "fp32": ev, "int8": ev}


def test_merged_folds_pool_every_held_out_clip(tmp_path: Path) -> None:
    folds = {
        1: (["dog_bark", "dog_bark", "speech", "background"], ["dog_bark", "speech", "speech", "background"]),
        2: (["speech", "glass_breaking", "background"], ["speech", "background", "dog_bark"]),
    }
    files = []
    for k, (t, p) in folds.items():
        f = tmp_path / f"fold{k}.json"
        f.write_text(json.dumps(_fold(k, t, p)))
        files.append(f)
    res = merge(files[::-1])
    all_t = folds[1][0] + folds[2][0]
    all_p = folds[1][1] + folds[2][1]
    want = metrics(all_t, all_p)
    assert list(res["folds"]) == ["1", "2"]
    assert res["pooled_int8"]["macro_f1"] == pytest.approx(want["macro_f1"])
    assert res["pooled_int8"]["per_class"] == want["per_class"]
    mean = (metrics(*folds[1])["macro_f1"] + metrics(*folds[2])["macro_f1"]) / 2
    assert res["mean_fold_macro_f1_fp32"] == pytest.approx(mean)
    table = format_cv(res)
    assert "| pooled (all held-out clips) |" in table and "| glass_breaking | 1 |" in table
    # A partial run's cv.json (folds inside) merges the same way.
    partial = tmp_path / "cv.json"
    partial.write_text(json.dumps({"folds": {"2": _fold(2, *folds[2])}}))
    again = merge([files[0], partial])
    assert again["pooled_int8"]["per_class"] == want["per_class"]

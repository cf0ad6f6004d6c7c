"""Clip metrics on known inputs, the reference decision rule, and the YAMNet wrapper.

The YAMNet tests need ../shared/models/yamnet/yamnet.tflite and ai-edge-litert;
they skip with the reason when either is missing.
"""

from __future__ import annotations

import numpy as np
import pytest

from edge.corpus.metrics import clip_metrics, confusion_matrix, macro_f1
from edge.evaluate.references import BACKGROUND, EVENT_LABELS, LABELS, decide, main, tune_thresholds
from edge.yamnet import scorer as ym

DATA = ym.REPO_ROOT.parent / "shared" / "data" / "homesounds"


def test_perfect_predictor_scores_one_everywhere():
    y = ["a", "b", "c", "a", "b"]
    m = clip_metrics(y, list(y), ["a", "b", "c"])
    assert m["accuracy"] == 1.0
    assert m["macro_f1"] == 1.0
    assert all(v["f1"] == 1.0 for v in m["per_class"].values())
    assert m["confusion"] == [[2, 0, 0], [0, 2, 0], [0, 0, 1]]


def test_known_mistakes_give_known_counts_and_scores():
    y_true = ["a", "a", "b", "b", "b", "c"]
    y_pred = ["a", "b", "b", "b", "a", "b"]
    m = clip_metrics(y_true, y_pred, ["a", "b", "c"])
    assert m["confusion"] == [[1, 1, 0], [1, 2, 0], [0, 1, 0]]
    a, b, c = (m["per_class"][k] for k in "abc")
    assert (a["precision"], a["recall"]) == (0.5, 0.5)
    assert b["precision"] == pytest.approx(2 / 4) and b["recall"] == pytest.approx(2 / 3)
    assert b["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert c == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1, "predicted": 0}
    assert m["accuracy"] == pytest.approx(3 / 6)
    assert m["macro_f1"] == pytest.approx((0.5 + b["f1"] + 0.0) / 3)


def test_macro_f1_counts_only_labels_present_in_truth():
    m = clip_metrics(["a", "a"], ["a", "b"], ["a", "b", "c"])
    assert m["macro_f1_labels"] == ["a"]
    assert m["macro_f1"] == pytest.approx(2 / 3)  # a: P = 1, R = 1/2; b predicted but absent; c absent
    assert macro_f1(m["per_class"], ["a", "b"]) == pytest.approx(1 / 3)


def test_always_background_predictor_recalls_all_background_and_nothing_else():
    y = ["dog_bark", "speech", BACKGROUND, BACKGROUND]
    m = clip_metrics(y, [BACKGROUND] * 4, LABELS)
    assert m["per_class"][BACKGROUND]["recall"] == 1.0
    assert m["per_class"]["dog_bark"]["f1"] == 0.0
    assert m["macro_f1"] == pytest.approx((2 * 0.5 / 1.5) / 3)


def test_label_outside_the_label_list_is_named_in_the_error():
    with pytest.raises(ValueError, match="'doorbell'"):
        confusion_matrix(["a"], ["doorbell"], ["a"])
    with pytest.raises(ValueError, match="2 true labels but 1"):
        confusion_matrix(["a", "a"], ["a"], ["a"])


def test_decision_falls_back_to_background_below_the_threshold():
    scores = np.zeros((2, len(EVENT_LABELS)))
    scores[0, EVENT_LABELS.index("siren")] = 0.9
    scores[1, EVENT_LABELS.index("dog_bark")] = 0.2
    assert decide(scores, np.full(len(EVENT_LABELS), 0.5)) == ["siren", BACKGROUND]


def test_threshold_tuning_separates_events_from_background():
    rng = np.random.default_rng(0)
    j = EVENT_LABELS.index("coughing")
    scores = rng.uniform(0, 0.3, (40, len(EVENT_LABELS)))
    scores[:20, j] = rng.uniform(0.6, 1.0, 20)
    y = ["coughing"] * 20 + [BACKGROUND] * 20
    for per_label in (False, True):
        thr = tune_thresholds(scores, y, per_label)
        assert decide(scores, thr) == y


def test_references_cli_rejects_a_folder_without_manifest(tmp_path, capsys):
    assert main(["--data", str(tmp_path), "--json", str(tmp_path / "r.json"), "--methods", "nmf"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"references: no manifest.csv in {tmp_path}"]


def test_mapped_scores_take_the_max_over_each_labels_classes():
    scores = np.zeros((2, ym.N_CLASSES), np.float32)
    scores[0, [3, 7]] = [0.2, 0.6]
    scores[1, 9] = 0.4
    out = ym.mapped_scores(scores, {"x": [3, 7], "y": [9], "z": []}, ["x", "y", "z", "background"])
    np.testing.assert_allclose(out, [[0.6, 0.0, 0.0, 0.0], [0.0, 0.4, 0.0, 0.0]], atol=1e-7)


def test_patch_starts_cover_the_clip_at_the_hop():
    assert ym.patch_starts(100, 7680).tolist() == [0]
    assert ym.patch_starts(80000, 7680).tolist() == [i * 7680 for i in range(10)]  # last starts 69120, ends 84720
    assert ym.macs_per_audio_second(0.48) == pytest.approx(144.17e6, rel=1e-3)


@pytest.fixture(scope="module")
def scorer():
    reason = ym.yamnet_available()
    if reason:
        pytest.skip(reason)
    return ym.YamnetScorer()


def test_label_map_names_are_all_real_yamnet_classes(scorer):
    imap = ym.label_index_map(scorer.class_names, EVENT_LABELS, broad=True)
    assert imap["washing_machine"] == [] and imap["speech"]
    assert scorer.class_names[imap["toilet_flush"][0]] == "Toilet flush"


def test_yamnet_scores_a_clip_patch_by_patch(scorer):
    t = np.arange(5 * ym.SAMPLE_RATE) / ym.SAMPLE_RATE
    wave = (0.3 * np.sin(2 * np.pi * 3100 * t) * ((t % 1.0) < 0.5)).astype(np.float32)
    s = scorer.score_clip(wave)
    assert s.shape == (10, ym.N_CLASSES)
    assert np.all((s >= 0) & (s <= 1))


def test_yamnet_hears_speech_in_a_real_speech_clip(scorer):
    manifest = DATA / "manifest.csv"
    if not manifest.is_file():
        pytest.skip(f"data not found at {DATA}")
    from edge.evaluate.references import load_audio, load_manifest

    clip = next(c for c in load_manifest(DATA) if c.label == "speech")
    labels = EVENT_LABELS
    mapped = ym.mapped_scores(scorer.score_clip(load_audio(clip.path)), ym.label_index_map(scorer.class_names, labels),
                              labels)  # fmt: skip
    assert labels[int(mapped.max(axis=0).argmax())] == "speech"

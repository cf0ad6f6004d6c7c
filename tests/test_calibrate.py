"""Operating points by a false-alarm budget (edge.evaluate.calibrate): the thresholds a hand computation gives."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from edge.detect.settings import DetectorConfig, for_model
from edge.evaluate.calibrate import CurvePoint, calibrate, pick_threshold, tail_line, tail_rate
from edge.evaluate.stream import SceneRun
from edge.features.frontend import FrontendParams
from edge.model.contract import ModelContract

#: False alarms at each threshold of a curve for one label: 8 up to 0.5, halving every 0.1 until none.
COUNTS = {0.2: 8, 0.3: 8, 0.4: 8, 0.5: 8, 0.6: 4, 0.65: 4, 0.7: 2, 0.75: 2, 0.8: 1, 0.85: 0, 0.88: 0, 0.9: 0,
          0.92: 0, 0.94: 0, 0.95: 0, 0.96: 0, 0.97: 0, 0.98: 0, 0.985: 0, 0.99: 0, 0.995: 0}
#: Scene events found (of 10) at each threshold: fewer the higher it is.
FOUND = {t: (10 if t <= 0.7 else 9 if t <= 0.8 else 8 if t <= 0.9 else 7 if t <= 0.92 else 6 if t <= 0.94 else
             5 if t <= 0.95 else 4 if t <= 0.96 else 3 if t <= 0.97 else 2 if t <= 0.98 else 1) for t in COUNTS}
PER_DAY = {"low": 0.1, "medium": 1.0, "high": 5.0}


def curve() -> list[CurvePoint]:
    return [CurvePoint(t, n, FOUND[t], 10, 10) for t, n in COUNTS.items()]


def test_the_tail_line_is_the_least_squares_line_through_the_last_four_counted_points():
    # By hand: the last four thresholds with a false alarm are 0.65, 0.7, 0.75, 0.8 with 4, 2, 2, 1 in 1 h:
    # x = logit = (0.619, 0.847, 1.099, 1.386), y = ln(4, 2, 2, 1); least squares: slope -1.627,
    # intercept 2.301; at 0.92 (logit 2.442): exp(-1.627 * 2.442 + 2.301) = 0.1875 per hour.
    slope, icpt = tail_line(curve(), hours=1.0)
    assert slope == pytest.approx(-1.6273, abs=1e-3) and icpt == pytest.approx(2.3007, abs=1e-3)
    assert tail_rate((slope, icpt), 0.92) == pytest.approx(0.1875, abs=1e-3)


def test_one_hour_of_background_cannot_count_a_budget_of_a_day_so_the_tail_decides():
    # From the line above: 0.90 -> 0.279/h, 0.92 -> 0.188/h, 0.96 -> 0.057/h, 0.97 -> 0.035/h, 0.99 -> 0.0056/h,
    # 0.995 -> 0.0018/h; of the thresholds within a budget, the lowest finds most events.
    assert pick_threshold(curve(), 1.0, PER_DAY["high"] / 24, False, 0.9) == (0.92, "tail")  # <= 0.208/h
    assert pick_threshold(curve(), 1.0, PER_DAY["medium"] / 24, False, 0.9) == (0.97, "tail")  # <= 0.0417/h
    assert pick_threshold(curve(), 1.0, PER_DAY["low"] / 24, False, 0.9) == (0.995, "tail")  # <= 0.00417/h


def test_ten_hours_count_the_high_budget_themselves():
    # 5 a day = 0.208/h = 2.08 false alarms in 10 h: 0.7 (2) is the lowest threshold with at most 2.
    assert pick_threshold(curve(), 10.0, PER_DAY["high"] / 24, False, 0.9) == (0.7, "budget")


def test_the_threshold_that_finds_most_events_within_budget_wins_not_the_lowest():
    # Events merge at low thresholds: here 0.5 finds fewer than 0.8, and both are within 10 h's budget of 8.
    pts = [CurvePoint(0.5, 8, 4, 10, 10), CurvePoint(0.8, 1, 9, 10, 10), CurvePoint(0.9, 0, 9, 10, 10)]
    assert pick_threshold(pts, 10.0, 1.0, False, 0.9) == (0.9, "tail")  # as many as 0.8, fewer alarms
    pts[2] = CurvePoint(0.9, 0, 8, 10, 10)
    assert pick_threshold(pts, 10.0, 1.0, False, 0.9) == (0.8, "budget")


def test_a_safety_label_keeps_its_recall_where_the_budget_would_cost_it():
    # Its budget is 5x larger (1.04/h at 1 h): 0.8 (1 false alarm) still finds 9 of 10 = the 0.9 asked,
    # where a label's own share of the budget (0.92) would find 7.
    assert pick_threshold(curve(), 1.0, PER_DAY["high"] / 24, True, 0.9) == (0.8, "safety recall")
    assert pick_threshold(curve(), 1.0, PER_DAY["high"] / 24, False, 0.9) == (0.92, "tail")


def test_a_safety_label_keeps_its_recall_over_budget_when_no_threshold_within_it_does():
    # Low budget, 1 h: within 5x 0.1/day (0.0208/h) only 0.98 and above are (tail 0.0177/h at 0.98, 0.035/h
    # at 0.97), which find at most 2 of 10; 9 of 10 are found up to 0.8 (1 false alarm; 0.75 and below: 2 or
    # more): the fewest false alarms that keep 0.9 is 0.8.
    assert pick_threshold(curve(), 1.0, PER_DAY["low"] / 24, True, 0.9) == (0.8, "safety recall over budget")
    # Where no threshold keeps the recall asked, the budget rule decides, as for any label.
    assert pick_threshold(curve(), 1.0, PER_DAY["low"] / 24, True, 1.1) == pick_threshold(
        curve(), 1.0, PER_DAY["low"] / 24 * 5, False, 0.9)


def _contract() -> ModelContract:
    return ModelContract(labels=("glass_breaking", "dog_bark"), frontend=FrontendParams(), block_frames=24,
                         window_blocks=4, cache_dim=8, embedding_dim=8)


def _run(name: str, peaks: dict[int, tuple[float, float]], n_hops: int, reference: list) -> SceneRun:
    """Scores of both labels at 0.05 but at the hops in ``peaks`` (hop i spans [i, i + 1) s)."""
    scores = np.full((n_hops, 2), 0.05, np.float32)
    for i, (a, b) in peaks.items():
        scores[i] = (a, b)
    hops = np.stack([np.arange(n_hops, dtype=np.float64), np.arange(n_hops, dtype=np.float64) + 1.0], axis=1)
    return SceneRun(name, float(n_hops), not reference, reference, [], [], hops, scores,
                    embeddings=np.zeros((n_hops, 8), np.float32))


def test_calibrate_replays_the_recorded_scores_through_the_chain_and_picks_those_thresholds():
    # One hour of background whose blips give both labels exactly the false-alarm curve above
    # (8 blips >= 0.5, 4 >= 0.6, 2 >= 0.7, 1 >= 0.8, each one hop, far apart), and a scene whose
    # events score 0.91 (glass breaking) and 0.975 (dog bark) for three hops.
    blips = [0.56] * 4 + [0.66] * 2 + [0.76] + [0.82]  # clear of the grid: scores are float32
    bg = _run("bg", {100 + 400 * k: (p, p) for k, p in enumerate(blips)}, 3600, [])
    ref = [(10.0, 13.0, "glass_breaking"), (30.0, 33.0, "dog_bark")]
    peaks = {i: (0.91, 0.05) for i in (10, 11, 12)} | {i: (0.05, 0.975) for i in (30, 31, 32)}
    scene = _run("scene", peaks, 40, ref)
    c = _contract()
    base = DetectorConfig(persistence_k=1, persistence_n=1, release_s=0.0)
    res = calibrate([scene, bg], c, base, search_timing=False)
    pts = res["operating_points"]
    assert res["background_hours"] == pytest.approx(1.0)
    # Glass breaking (safety: 5x the budget) keeps its event: 0.9 at high (1.04/h allowed: the tail says
    # 0.28/h there); at medium and low (0.21/h, 0.02/h allowed: only 0.92 and up, which miss it) 0.9 still,
    # over budget, since recall is its constraint. Dog bark: the highest recall within budget is 0.97 at high
    # and medium (0.035/h), 0.995 at low.
    assert pts["high"]["thresholds"] == {"glass_breaking": 0.9, "dog_bark": 0.97}
    assert pts["medium"]["thresholds"] == {"glass_breaking": 0.9, "dog_bark": 0.97}
    assert pts["low"]["thresholds"] == {"glass_breaking": 0.9, "dog_bark": 0.995}
    assert res["limited_by"]["high"] == {"glass_breaking": "safety recall", "dog_bark": "tail"}
    assert res["limited_by"]["medium"]["glass_breaking"] == "safety recall over budget"
    assert res["recall"]["high"] == {"glass_breaking": 1.0, "dog_bark": 1.0}
    # What the listener then runs with: the model's point for the configured sensitivity.
    from edge.evaluate.calibrate import write_calibrated_model  # noqa: F401  (the same dict shape)

    defaults = {"operating_points": pts}
    c2 = dataclasses.replace(c, detector=defaults)
    assert for_model(DetectorConfig(sensitivity="low"), c2).thresholds["dog_bark"] == 0.995
    assert for_model(DetectorConfig(), c2).thresholds["dog_bark"] == 0.97
    # With the timing search, every persistence/release option gets its own points; the best F1 wins.
    res2 = calibrate([scene, bg], c, base)
    assert len(res2["timing_trials"]) == 6
    assert res2["tuned"] in [{k: x[k] for k in ("persistence_k", "persistence_n", "release_s")}
                             for x in res2["timing_trials"] if x["event_f1_500ms"] == max(
                                 y["event_f1_500ms"] for y in res2["timing_trials"])]


def test_a_calibrated_model_carries_its_operating_points_and_the_listener_accepts_and_uses_them(tmp_path):
    from tinymodel import build_tiny_model

    from edge.evaluate.calibrate import write_calibrated_model
    from edge.model.classifier import Classifier

    model = build_tiny_model(tmp_path / "tiny.onnx")
    labels = Classifier(model).labels
    result = {"operating_points": {s: {"thresholds": {lab: t for lab in labels},
                                       "min_durations": {labels[0]: 0.5}}
                                   for s, t in (("low", 0.9), ("medium", 0.8), ("high", 0.7))},
              "estimated_false_alarms_per_hour": {s: {lab: 0.01 for lab in labels} for s in ("low", "medium", "high")},
              "background_hours": 1.5, "scene_hours": 0.5, "budgets_per_day": {"low": 0.1, "medium": 1, "high": 5},
              "tuned": {"onset_lead_s": 0.12, "thresholds": {labels[0]: 0.1}}}
    out = write_calibrated_model(model, tmp_path / "cal.onnx", result)
    c = Classifier(out).contract  # opening it validates the contract, the tuned detector section included
    assert c.detector["onset_lead_s"] == 0.12 and c.detector["thresholds"] == {lab: 0.8 for lab in labels}
    s = for_model(DetectorConfig(sensitivity="high"), c)
    assert s.thresholds == {lab: 0.7 for lab in labels} and s.min_duration_for(labels[0]) == 0.5
    assert s.onset_lead_s == 0.12

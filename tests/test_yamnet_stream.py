"""The YAMNet peer comparison goes through the listener's own detector replay and metrics."""

import numpy as np

from edge.evaluate import yamnet_stream as ys
from edge.evaluate.stream import SceneRun
from edge.service.config import DetectorConfig


def _run(scores, hop=0.48):
    ends = np.arange(len(scores)) * hop + ys.PATCH_S
    hops = np.stack([ends - hop, ends], axis=1)
    return SceneRun("s0", 10.0, False, [(1.0, 2.5, "dog_bark")], [], [], hops, np.array(scores, np.float32))


def test_yamnet_contract_describes_its_hop_and_window_to_the_detector():
    c = ys.yamnet_contract(["dog_bark", "speech"], 0.48)
    assert c.block_seconds == 0.48 and c.window_blocks == 2
    assert c.detector["offset_lag_s"] == ys.PATCH_S - 0.48


def test_replayed_yamnet_scores_give_events_and_metrics():
    labels = ["dog_bark", "speech"]
    scores = [[0, 0]] * 1 + [[0.9, 0]] * 4 + [[0, 0]] * 10
    run = _run(scores)
    m = ys.evaluate([run], ys.yamnet_contract(labels, 0.48), DetectorConfig(threshold=0.5, persistence_k=1,
                                                                             persistence_n=1), labels)
    assert m["event_f1_500ms"] > 0.99


def test_frigate_style_turns_every_block_above_threshold_into_an_event():
    run = _run([[0.9, 0.1], [0.2, 0.7], [0.1, 0.1]], hop=ys.PATCH_S)
    det, emi = ys.frigate_style([run], ["dog_bark", "speech"], 0.5)
    assert det["s0"] == [(0.0, ys.PATCH_S, "dog_bark"), (ys.PATCH_S, 2 * ys.PATCH_S, "speech")]
    assert emi["s0"] == [ys.PATCH_S, 2 * ys.PATCH_S]


def test_references_yamnet_cannot_name_still_count_against_it_in_the_segment_metrics():
    labels = ["dog_bark", "speech"]  # YAMNet's mapped labels; the scene also holds a CO alarm
    scores = [[0, 0]] * 1 + [[0.9, 0]] * 4 + [[0, 0]] * 10
    run = _run(scores)
    run.reference.append((4.0, 8.0, "co_alarm"))
    scored = ys.scored_labels(labels, [run])
    assert scored == ["dog_bark", "speech", "co_alarm"]
    cfg = DetectorConfig(threshold=0.5, persistence_k=1, persistence_n=1)
    only_mapped = ys.evaluate([run], ys.yamnet_contract(labels, 0.48), cfg, labels)
    fair = ys.evaluate([run], ys.yamnet_contract(labels, 0.48), cfg, scored)
    assert fair["segment_f1_1s"] < only_mapped["segment_f1_1s"]  # the missed CO alarm segments count
    assert fair["event_f1_500ms"] == only_mapped["event_f1_500ms"]


def test_class_average_f1_counts_labels_that_only_raised_false_alarms():
    from edge.evaluate.stream import compute_metrics

    run = SceneRun("s0", 10.0, False, [(1.0, 2.5, "speech")], [(1.0, 2.5, "speech"), (5.0, 6.0, "dog_bark")], [])
    m = compute_metrics([run], ["speech", "dog_bark"])
    assert m["class_average_f1_500ms"] == 0.5  # speech 1.0, dog_bark 0.0 (as sed_eval averages)
    assert m["event_based_500ms"]["class_wise_average_f"] == 0.5

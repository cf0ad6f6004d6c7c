import numpy as np
import pytest

from edge.detect.detector import Detector
from edge.service.config import DetectorConfig

LABELS = ("dog", "alarm", "water")
BLOCK = 0.1  # seconds per hop in these tests


def run(det, series, level=-20.0):
    """Feed ``series`` (list of per-hop score tuples); hop i covers [i*0.1, (i+1)*0.1 + 0.015)."""
    events = []
    for i, s in enumerate(series):
        events += det.update(np.array(s, np.float32), i * BLOCK, i * BLOCK + 0.115, level)
    return events


def cfg(**kw):
    base = dict(persistence_k=1, persistence_n=1, release_s=0.0, hysteresis=0.1)
    base.update(kw)
    return DetectorConfig(**base)


def test_onset_and_offset_share_an_id_and_carry_times_scores_and_wall_clock():
    det = Detector(LABELS, cfg(), model_version="m1", start_wall=1000.0)
    series = [(0, 0, 0)] * 3 + [(0.9, 0, 0), (0.7, 0, 0), (0.8, 0, 0)] + [(0, 0, 0)] * 2
    evs = run(det, series, level=-12.5)
    assert [(e.label, e.state) for e in evs] == [("dog", "on"), ("dog", "off")]
    on, off = evs
    assert on.id == off.id and len(on.id) == 32
    assert on.onset == pytest.approx(0.3) and on.offset is None
    assert off.onset == pytest.approx(0.3) and off.offset == pytest.approx(0.5 + 0.115)
    assert off.onset_time == pytest.approx(1000.3) and off.offset_time == pytest.approx(1000.615)
    assert off.score == pytest.approx(0.9) and off.mean_score == pytest.approx(0.8)
    assert off.level_dbfs == -12.5 and off.model_version == "m1"


def test_hysteresis_keeps_event_alive_above_off_threshold():
    det = Detector(LABELS, cfg(threshold=0.6, hysteresis=0.2))
    # 0.45 is below on (0.6) but above off (0.4): the event continues; 0.3 ends it.
    evs = run(det, [(0.7, 0, 0), (0.45, 0, 0), (0.45, 0, 0), (0.3, 0, 0)])
    assert [e.state for e in evs] == ["on", "off"]
    assert evs[1].offset == pytest.approx(0.2 + 0.115)


def test_k_of_n_persistence_and_onset_at_first_above_threshold_hop():
    det = Detector(LABELS, cfg(persistence_k=2, persistence_n=3))
    # A single spike is ignored; hop 5 and 7 (2 of 3) start an event whose onset is hop 5.
    evs = run(det, [(0, 0, 0), (0.9, 0, 0), (0, 0, 0), (0, 0, 0), (0, 0, 0), (0.9, 0, 0), (0, 0, 0), (0.9, 0, 0)])
    assert [(e.state, round(e.onset, 3)) for e in evs] == [("on", 0.5)]


def test_release_time_bridges_short_gaps():
    det = Detector(LABELS, cfg(release_s=0.3))
    on = [(0.9, 0, 0)] * 3
    gap = [(0, 0, 0)] * 2  # 0.2 s below the off-threshold: shorter than release_s
    evs = run(det, on + gap + on + [(0, 0, 0)] * 5)
    assert [e.state for e in evs] == ["on", "off"]
    assert evs[1].offset == pytest.approx(0.7 + 0.115)


def test_min_duration_delays_onset_and_drops_short_events():
    det = Detector(LABELS, cfg(min_duration_s=0.35))
    short = [(0.9, 0, 0)] * 2 + [(0, 0, 0)]  # lasts 0.215 s: dropped without any event
    long = [(0.9, 0, 0)] * 5 + [(0, 0, 0)]
    events = []
    for i, s in enumerate(short + long):
        new = det.update(np.array(s, np.float32), i * BLOCK, i * BLOCK + 0.115, -30.0)
        events += [(i, e.state) for e in new]
    # Long run starts at hop 3; lasts >= 0.35 s once hop 5 ends (0.5 + 0.115 - 0.3 = 0.315 < 0.35; hop 6: 0.415).
    assert events == [(6, "on"), (8, "off")]


def test_flush_ends_open_events_at_end_of_stream():
    det = Detector(LABELS, cfg())
    evs = run(det, [(0, 0.9, 0.9)] * 4)
    assert [(e.label, e.state) for e in evs] == [("alarm", "on"), ("water", "on")]
    ends = det.flush()
    assert [(e.label, e.state, round(e.offset, 3)) for e in ends] == [("alarm", "off", 0.415), ("water", "off", 0.415)]
    assert det.flush() == []


def test_threshold_precedence_per_label_then_global_then_model_then_default():
    model = {"dog": 0.2, "alarm": 0.2}
    det = Detector(LABELS, cfg(), model_thresholds=model)
    assert [det.threshold(x) for x in LABELS] == [0.2, 0.2, 0.5]
    det.reconfigure(cfg(threshold=0.7))
    assert [det.threshold(x) for x in LABELS] == [0.7, 0.7, 0.7]
    det.reconfigure(cfg(threshold=0.7, thresholds={"water": 0.3}))
    assert [det.threshold(x) for x in LABELS] == [0.7, 0.7, 0.3]


def test_only_enabled_labels_produce_events():
    det = Detector(LABELS, cfg(labels=["water"]))
    evs = run(det, [(0.9, 0.9, 0.9)] * 2 + [(0, 0, 0)])
    assert {e.label for e in evs} == {"water"}


def test_reconfigure_disabling_a_label_ends_its_open_event():
    det = Detector(LABELS, cfg())
    run(det, [(0.9, 0, 0)])
    ends = det.reconfigure(cfg(labels=["alarm"]))
    assert [(e.label, e.state) for e in ends] == [("dog", "off")]
    assert det.flush() == []


def test_unknown_label_in_config_is_rejected():
    with pytest.raises(ValueError, match="unknown label 'cat'"):
        Detector(LABELS, cfg(labels=["cat"]))


def test_each_event_gets_a_new_id():
    det = Detector(LABELS, cfg())
    evs = run(det, [(0.9, 0, 0), (0, 0, 0), (0.9, 0, 0), (0, 0, 0)])
    assert len({e.id for e in evs}) == 2 and len(evs) == 4


def test_offset_is_moved_back_by_the_models_look_back_once_the_score_falls():
    det = Detector(LABELS, cfg(offset_lag_s=0.2))
    series = [(0, 0, 0)] * 2 + [(0.9, 0, 0)] * 5 + [(0, 0, 0)] * 2
    on, off = run(det, series)
    # last active hop ends at 0.6 + 0.115; the score stayed up 0.2 s after the sound
    assert off.offset == pytest.approx(0.6 + 0.115 - 0.2)


def test_offset_lag_never_places_the_offset_before_the_end_of_the_first_block():
    det = Detector(LABELS, cfg(offset_lag_s=5.0))
    on, off = run(det, [(0.9, 0, 0), (0, 0, 0), (0, 0, 0)])
    assert off.offset == pytest.approx(on.onset + 0.115)


def test_sound_still_scoring_at_end_of_stream_ends_at_the_last_hop_without_lag():
    det = Detector(LABELS, cfg(offset_lag_s=0.2))
    run(det, [(0, 0, 0), (0.9, 0, 0), (0.9, 0, 0)])
    (off,) = det.flush()
    assert off.offset == pytest.approx(0.2 + 0.115)


def test_unset_settings_come_from_the_model_then_fallbacks_and_config_wins():
    model = {"hysteresis": 0.3, "persistence_k": 3, "persistence_n": 4}
    det = Detector(LABELS, DetectorConfig(persistence_k=1), model_defaults=model)
    assert det.cfg.hysteresis == 0.3  # model
    assert det.cfg.persistence_k == 1 and det.cfg.persistence_n == 4  # config wins, model fills n
    assert det.cfg.release_s == 0.5 and det.cfg.offset_lag_s == 0.0  # fallbacks


def test_config_and_model_defaults_that_conflict_are_rejected():
    with pytest.raises(ValueError, match="persistence_k: expected at most persistence_n \\(2\\), got 3"):
        Detector(LABELS, DetectorConfig(persistence_k=3), model_defaults={"persistence_n": 2})


def test_a_co_alarm_with_t4_pauses_is_one_event_while_other_labels_end_in_the_pause():
    labels = ("co_alarm", "dog")
    burst = [(0.95, 0.95)] * 8  # 0.8 s of beeps, then a 5 s pause: the T4 CO rhythm
    pause = [(0.0, 0.0)] * 50
    series = burst + pause + burst + pause + pause
    evs = run(Detector(labels, cfg(release_s=0.5)), series)
    assert [(e.label, e.state) for e in evs if e.label == "co_alarm"] == [("co_alarm", "on"), ("co_alarm", "off")]
    assert [e.state for e in evs if e.label == "dog"] == ["on", "off", "on", "off"]
    co_off = next(e for e in evs if e.label == "co_alarm" and e.state == "off")
    assert co_off.offset == pytest.approx(6.5 + 0.115)  # the end of the second burst, not of the hold
    split = run(Detector(labels, cfg(release_s=0.5, alarm_release_s=0.0)), series)
    assert [e.state for e in split if e.label == "co_alarm"] == ["on", "off", "on", "off"]


def test_per_label_release_keeps_one_episode_as_one_event_for_that_label_only():
    barks = [(0.9, 0, 0.9)] * 3 + [(0, 0, 0)] * 15  # a bark, then 1.5 s of pause
    series = barks * 3 + [(0, 0, 0)] * 30
    evs = run(Detector(LABELS, cfg(release_s=0.5, releases={"dog": 2.0})), series)
    assert [e.state for e in evs if e.label == "dog"] == ["on", "off"]
    assert [e.state for e in evs if e.label == "water"] == ["on", "off"] * 3
    dog_off = next(e for e in evs if e.label == "dog" and e.state == "off")
    assert dog_off.offset == pytest.approx(3.8 + 0.115)  # end of the last bark


def test_model_releases_apply_unless_the_config_overrides_them():
    series = ([(0.9, 0, 0)] * 3 + [(0, 0, 0)] * 15) * 2 + [(0, 0, 0)] * 30
    model = {"releases": {"dog": 2.0}}
    merged = run(Detector(LABELS, cfg(release_s=0.5), model_defaults=model), series)
    assert [e.state for e in merged] == ["on", "off"]
    split = run(Detector(LABELS, cfg(release_s=0.5, releases={"dog": 0.5}), model_defaults=model), series)
    assert [e.state for e in split] == ["on", "off", "on", "off"]


def test_unknown_label_in_releases_is_rejected():
    with pytest.raises(ValueError, match="unknown label 'cat'"):
        Detector(LABELS, cfg(releases={"cat": 1.0}))


def test_onset_lead_moves_the_reported_onset_earlier_but_not_the_emission_or_offset():
    series = [(0, 0, 0)] * 5 + [(0.9, 0, 0)] * 4 + [(0, 0, 0)] * 3
    plain = run(Detector(LABELS, cfg()), series)
    led = run(Detector(LABELS, cfg(onset_lead_s=0.24)), series)
    assert [(e.state, e.offset) for e in led] == [(e.state, e.offset) for e in plain]
    assert plain[0].onset == pytest.approx(0.5) and led[0].onset == pytest.approx(0.26)
    assert led[1].duration == pytest.approx(plain[1].duration + 0.24)
    early = run(Detector(LABELS, cfg(onset_lead_s=2.0)), series)
    assert early[0].onset == 0.0  # never before the stream started


def test_off_threshold_never_falls_below_half_the_on_threshold_so_events_can_end():
    # on 0.2 with hysteresis 0.2 would give an off-threshold of 0: no score could end the event.
    det = Detector(LABELS, cfg(threshold=0.2, hysteresis=0.2))
    evs = run(det, [(0.5, 0, 0)] * 3 + [(0.12, 0, 0)] * 3 + [(0.05, 0, 0)] * 3)
    assert [e.state for e in evs] == ["on", "off"]
    assert evs[1].offset == pytest.approx(0.5 + 0.115)  # 0.12 >= 0.1 kept it alive; 0.05 ended it


def test_onset_backtrack_reports_where_the_score_began_to_rise_not_where_it_passed_the_threshold():
    # Silence, a sound whose score rises 0.2 -> 0.4 -> 0.7 (threshold 0.6), then falls.
    series = [(0, 0, 0)] * 10 + [(0.2, 0, 0), (0.4, 0, 0), (0.7, 0, 0), (0.8, 0, 0)] + [(0, 0, 0)] * 5
    plain = run(Detector(LABELS, cfg(threshold=0.6)), series)
    assert plain[0].onset == pytest.approx(1.2)
    back = run(Detector(LABELS, cfg(threshold=0.6, onset_backtrack_s=2.0, backtrack_floor=0.3)), series)
    assert back[0].onset == pytest.approx(1.0)  # 0.2 >= 0.3 x 0.6: the rise started at hop 10
    assert [(e.state, e.offset) for e in back] == [(e.state, e.offset) for e in plain]  # sent at the same hop
    high = run(Detector(LABELS, cfg(threshold=0.6, onset_backtrack_s=2.0, backtrack_floor=0.5)), series)
    assert high[0].onset == pytest.approx(1.1)  # 0.2 < 0.5 x 0.6 stops it at hop 11
    short = run(Detector(LABELS, cfg(threshold=0.6, onset_backtrack_s=0.1, backtrack_floor=0.3)), series)
    assert short[0].onset == pytest.approx(1.1)  # at most 0.1 s back



def test_sensitivity_moves_thresholds_by_offsets_when_the_model_has_no_operating_points():
    from edge.detect.settings import resolve

    clip = {"dog": 0.5, "alarm": 0.95}
    low = resolve(DetectorConfig(sensitivity="low"), LABELS, clip)
    high = resolve(DetectorConfig(sensitivity="high"), LABELS, clip)
    medium = resolve(DetectorConfig(), LABELS, clip)
    assert medium.thresholds["dog"] == 0.5 and low.thresholds["dog"] == pytest.approx(0.6)
    assert high.thresholds["dog"] == pytest.approx(0.4)
    assert low.thresholds["alarm"] == 0.99  # bounded: a label can always fire
    # an explicit threshold is a person's choice: the knob does not move it
    assert resolve(DetectorConfig(sensitivity="low", thresholds={"dog": 0.3}), LABELS, clip).thresholds["dog"] == 0.3


def test_sensitivity_picks_the_models_operating_point_per_label():
    from edge.detect.settings import resolve

    defaults = {"thresholds": {"dog": 0.5}, "operating_points": {"low": {"thresholds": {"dog": 0.8},
                                                                          "min_durations": {"dog": 1.0}},
                                                                  "high": {"thresholds": {"dog": 0.3}}}}
    low = resolve(DetectorConfig(sensitivity="low"), LABELS, None, defaults)
    assert low.thresholds["dog"] == 0.8 and low.min_duration_for("dog") == 1.0 and low.min_duration_for("alarm") == 0
    assert resolve(DetectorConfig(sensitivity="low", min_durations={"dog": 0.2}), LABELS, None,
                   defaults).min_duration_for("dog") == 0.2  # the config's own value wins
    assert resolve(DetectorConfig(sensitivity="high"), LABELS, None, defaults).thresholds["dog"] == 0.3
    assert resolve(DetectorConfig(), LABELS, None, defaults).thresholds["dog"] == 0.5  # no medium point: tuned


def test_an_unknown_sensitivity_is_a_one_line_config_error():
    from edge.service.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match=r"^c.yaml: detector.sensitivity: expected one of low, medium, high, "
                                          r"got 'paranoid'$"):
        parse_config({"detector": {"sensitivity": "paranoid"}}, "c.yaml")


def test_a_per_label_minimum_duration_holds_back_only_that_labels_short_events():
    det = Detector(LABELS, cfg(persistence_k=1, persistence_n=1, min_durations={"dog": 0.5}))
    short = run(det, [(0.9, 0.9, 0.0)] * 2 + [(0.0, 0.0, 0.0)] * 8)  # 0.2 s of both
    assert [e.label for e in short if e.state == "on"] == ["alarm"]

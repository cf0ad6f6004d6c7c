"""Event- and segment-based metrics: exact counts on hand-made cases, and agreement with sed_eval."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from edge.evaluate import sed_metrics as sm

REF = {
    "a": [(1.0, 3.0, "dog_bark"), (5.0, 6.0, "speech"), (8.0, 12.0, "baby_cry")],
    "b": [(0.5, 1.5, "glass_breaking"), (4.0, 9.0, "baby_cry")],
}


def test_perfect_detector_scores_f1_one_and_error_rate_zero() -> None:
    for collar in (0.2, 0.5):
        r = sm.event_based(REF, REF, t_collar=collar)
        assert r.f_measure == pytest.approx(1.0)
        assert r.error_rate == pytest.approx(0.0)
        assert (r.overall.Ntp, r.overall.Nfp, r.overall.Nfn) == (5, 0, 0)
        assert all(c.f_measure == pytest.approx(1.0) for c in r.class_wise.values())
    s = sm.segment_based(REF, REF, lengths={"a": 13.0, "b": 10.0})
    assert s.f_measure == pytest.approx(1.0)
    assert s.error_rate == pytest.approx(0.0)


def test_known_bad_detector_gives_exact_counts() -> None:
    est = {
        "a": [
            (1.15, 3.1, "dog_bark"),   # hit at 200 ms
            (5.3, 6.0, "speech"),      # onset 300 ms late: miss at 200 ms, hit at 500 ms
            (8.0, 12.0, "dog_bark"),   # right time, wrong label: substitution
            (20.0, 21.0, "siren"),     # insertion
        ],
        "b": [(4.0, 5.0, "baby_cry")],  # offset 4 s early (> 50 % of 5 s): miss
    }
    r2 = sm.event_based(REF, est, t_collar=0.2)
    # 200 ms: only dog_bark matches; dog_bark-for-baby_cry is a substitution; the late speech onset,
    # the early baby_cry offset and the siren are errors.
    assert (r2.overall.Nref, r2.overall.Nsys, r2.overall.Ntp, r2.overall.Nsubs) == (5, 5, 1, 1)
    assert (r2.overall.Nfp, r2.overall.Nfn) == (3, 3)
    r5 = sm.event_based(REF, est, t_collar=0.5)
    assert (r5.overall.Ntp, r5.overall.Nsubs, r5.overall.Nfp, r5.overall.Nfn) == (2, 1, 2, 2)
    assert r5.f_measure == pytest.approx(2 * 2 / (5 + 5))
    assert r5.class_wise["speech"].Ntp == 1 and r5.class_wise["baby_cry"].Nfn == 2
    assert r5.error_rate == pytest.approx((1 + 2 + 2) / 5)
    # Segments (1 s): file a is 13 s, b is 10 s.
    s = sm.segment_based(REF, est, labels=["dog_bark", "speech", "baby_cry", "glass_breaking", "siren"],
                         lengths={"a": 13.0, "b": 10.0})
    # a: dog_bark ref segs 1-2, est 1-3 and 8-11 -> tp 2, fp 5; speech seg 5 both -> tp 1;
    # baby_cry ref 8-11 missed (fn 4); siren 20-21 lies beyond the 13 s length: cut.
    # b: glass 0.5-1.5 covers segs 0-1 (fn 2); baby_cry ref segs 4-8, est seg 4 -> tp 1, fn 4.
    assert (s.overall.Ntp, s.overall.Nfp, s.overall.Nfn) == (4, 5, 10)
    assert s.overall.Nref == 2 + 1 + 4 + 2 + 5


def test_onset_latencies_come_from_matched_pairs() -> None:
    est = {"a": [(1.25, 3.0, "dog_bark"), (4.9, 6.0, "speech")]}
    r = sm.event_based({"a": REF["a"]}, est, t_collar=0.5)
    lat = sm.onset_latencies(r)
    assert lat["dog_bark"] == [pytest.approx(0.25)]
    assert lat["speech"] == [pytest.approx(-0.1)]
    assert sm.latency_summary([0.1, 0.2, 0.3])["median_s"] == pytest.approx(0.2)


def test_annotation_files_round_trip_and_bad_lines_are_named(tmp_path) -> None:
    p = tmp_path / "x.txt"
    sm.write_annotations(p, REF["a"])
    assert sm.read_annotations(p) == REF["a"]
    p.write_text("1.0\tx\tdog\n")
    with pytest.raises(ValueError, match=r"x.txt:1: onset/offset are not numbers"):
        sm.read_annotations(p)


def _random_case(rng: np.random.Generator, labels: list[str]) -> tuple[dict, dict]:
    def rand(n: int) -> list[tuple[float, float, str]]:
        out = []
        for _ in range(n):
            on = round(float(rng.uniform(0, 30)), 3)
            out.append((on, round(on + float(rng.uniform(0.1, 4)), 3), str(rng.choice(labels))))
        return out

    ref = {f"f{i}": rand(int(rng.integers(0, 8))) for i in range(3)}
    est = {}
    for f, evs in ref.items():
        e = [(max(0.0, a + rng.normal(0, 0.3)), b + rng.normal(0, 0.5), lab if rng.random() < 0.8
              else str(rng.choice(labels))) for a, b, lab in evs if rng.random() < 0.8]
        e = [(a, max(a + 0.01, b), lab) for a, b, lab in e] + rand(int(rng.integers(0, 3)))
        est[f] = e
    return ref, est


def test_agrees_with_sed_eval_on_random_cases() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import dcase_util
            import sed_eval
        except Exception as e:  # sed_eval 0.2.1 -> dcase_util needs pkg_resources (setuptools<81)
            pytest.skip(f"sed_eval not importable ({type(e).__name__}: {e}); "
                        "install 'sed_eval' and 'setuptools<81' to run this comparison")
    labels = ["a", "b", "c"]
    rng = np.random.default_rng(0)
    for _ in range(60):
        ref, est = _random_case(rng, labels)
        for collar in (0.2, 0.5):
            E = sed_eval.sound_event.EventBasedMetrics(event_label_list=labels, t_collar=collar,
                                                       percentage_of_length=0.5)
            S = sed_eval.sound_event.SegmentBasedMetrics(event_label_list=labels, time_resolution=1.0)
            for f in ref:
                R = dcase_util.containers.MetaDataContainer(
                    [{"filename": f, "onset": a, "offset": b, "event_label": x} for a, b, x in ref[f]])
                Es = dcase_util.containers.MetaDataContainer(
                    [{"filename": f, "onset": a, "offset": b, "event_label": x} for a, b, x in est[f]])
                E.evaluate(R, Es)
                S.evaluate(R, Es, evaluated_length_seconds=40.0)
            mine = sm.event_based(ref, est, labels, t_collar=collar)
            seg = sm.segment_based(ref, est, labels, lengths={f: 40.0 for f in ref})
            o = E.overall
            assert (o["Ntp"], o["Nsubs"], o["Nfp"], o["Nfn"]) == (
                mine.overall.Ntp, mine.overall.Nsubs, mine.overall.Nfp, mine.overall.Nfn)
            assert E.overall_f_measure()["f_measure"] == pytest.approx(mine.f_measure, abs=1e-12)
            assert E.overall_error_rate()["error_rate"] == pytest.approx(mine.error_rate, abs=1e-12)
            for lab in labels:
                assert E.class_wise[lab]["Ntp"] == mine.class_wise[lab].Ntp
                theirs = E.class_wise_f_measure(lab)["f_measure"]
                if np.isnan(theirs):  # sed_eval: NaN when the class has no reference or no output
                    assert mine.class_wise[lab].Ntp == 0 and mine.class_wise[lab].f_measure == 0.0
                else:
                    assert theirs == pytest.approx(mine.class_wise[lab].f_measure, abs=1e-12)
            assert S.overall_f_measure()["f_measure"] == pytest.approx(seg.f_measure, abs=1e-12)
            assert S.overall_error_rate()["error_rate"] == pytest.approx(seg.error_rate, abs=1e-12)

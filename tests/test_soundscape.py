"""Soundscape generator: the annotations describe exactly what was mixed."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from edge.capture.audiofile import read_audio, write_wav
from edge.evaluate.sed_metrics import read_annotations
from edge.evaluate.soundscape import (
    SAMPLE_RATE,
    SceneSettings,
    SoundscapeError,
    UseLimitedDraw,
    _BalancedDraw,
    _event_pool,
    active_region,
    generate,
    load_mono,
    make_scene,
    read_manifest,
    trim_digital_silence,
)

SR = SAMPLE_RATE


def _write_set(root: Path) -> Path:
    """A tiny homesounds-style manifest: padded tone events and noise backgrounds, folds 1 and 2."""
    rng = np.random.default_rng(0)
    rows = []
    for fold in (1, 2):
        for i in range(3):
            # 0.7 s of silence, a 1.0 s burst, 0.8 s of silence: activity must be the burst only.
            x = np.zeros(int(2.5 * SR), np.float32)
            t = np.arange(SR) / SR
            x[int(0.7 * SR) : int(1.7 * SR)] = 0.5 * np.sin(2 * np.pi * (400 + 300 * i) * t)
            p = root / "audio" / f"tone{fold}_{i}.wav"
            p.parent.mkdir(parents=True, exist_ok=True)
            write_wav(p, x, SR)
            rows.append((p.relative_to(root), f"tone{i}", fold))
            b = (0.05 * rng.standard_normal(3 * SR)).astype(np.float32)
            pb = root / "audio" / f"bg{fold}_{i}.wav"
            write_wav(pb, b, SR)
            rows.append((pb.relative_to(root), "background", fold))
    m = root / "manifest.csv"
    with m.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "fold", "duration_s", "source", "license", "original_name"])
        for p, lab, fold in rows:
            w.writerow([str(p), lab, fold, "2.5", "test", "CC0-1.0", p.name])
    return m


def test_active_region_excludes_padding() -> None:
    x = np.zeros(3 * SR, np.float32)
    x[SR : 2 * SR] = 0.3 * np.sin(2 * np.pi * 1000 * np.arange(SR) / SR)
    a, b = active_region(x, SR)
    assert abs(a - SR) <= 0.02 * SR and abs(b - 2 * SR) <= 0.02 * SR
    assert active_region(np.zeros(SR, np.float32), SR) == (0, 0)


def test_mix_minus_bed_is_the_placed_events_at_the_annotated_times(tmp_path: Path) -> None:
    m = _write_set(tmp_path)
    clips = read_manifest(m, [1])
    s = SceneSettings(folds=(1,), events_per_scene=(3, 3), synthetic=(), seed=1)
    rng = np.random.default_rng(1)
    bg = [c for c in clips if c.label == "background"]
    mix, bed, events = make_scene("x", 6.0, _BalancedDraw(_event_pool(clips, ()), rng), bg, s, rng, {})
    diff = mix.astype(np.float64) - bed
    assert len(events) == 3
    mask = np.zeros(mix.shape[0], bool)
    for e in events:
        i, j = int(round(e.onset * SR)), int(round(e.offset * SR))
        mask[i:j] = True
        seg = diff[i:j]
        # The placed audio is the 1.0 s burst (padding trimmed), at the requested SNR.
        assert e.offset - e.onset == pytest.approx(1.0, abs=0.025)
        assert e.trim_s[0] == pytest.approx(0.7, abs=0.025)
        nz = np.flatnonzero(np.abs(seg) > 1e-6)
        assert nz[0] <= 0.02 * SR and nz[-1] >= seg.shape[0] - 1 - 0.02 * SR  # annotation = burst +- 20 ms
        snr = 10 * np.log10(np.mean(seg**2) / np.mean(bed[i:j].astype(np.float64) ** 2))
        assert snr == pytest.approx(6.0, abs=0.05)
    # Nothing was added outside the annotated events.
    assert np.abs(diff[~mask]).max() < 1e-6
    # Events do not overlap and keep at least the minimum gap.
    on = sorted((e.onset, e.offset) for e in events)
    assert all(b2[0] - a2[1] >= s.gap_s[0] - 1e-6 for a2, b2 in zip(on, on[1:], strict=False))


def test_generate_writes_wavs_annotations_and_background_only_files(tmp_path: Path) -> None:
    m = _write_set(tmp_path / "data")
    # Two short background clips: reusing each many times is what this check needs (see the next test).
    s = SceneSettings(folds=(2,), n_scenes=4, snrs=(0.0, 12.0), background_hours=60 / 3600,
                      background_file_s=25.0, synthetic=("co_alarm",), seed=3, max_background_uses=100)
    infos = generate(m, tmp_path / "out", s)
    meta = json.loads((tmp_path / "out" / "scenes.json").read_text())
    scenes = [x for x in meta["scenes"] if not x["background_only"]]
    bgs = [x for x in meta["scenes"] if x["background_only"]]
    assert len(scenes) == 4 and [x["snr_db"] for x in scenes] == [0.0, 12.0, 0.0, 12.0]
    assert sum(x["duration_s"] for x in bgs) == pytest.approx(60.0, abs=0.01)
    assert {e["label"] for x in scenes for e in x["events"]} >= {"tone0", "tone1", "tone2", "co_alarm"}
    synth = [e for x in scenes for e in x["events"] if e["label"] == "co_alarm"]
    assert synth and all(e["synthetic"] and e["source"] == "synthetic:T4" for e in synth)
    # Only fold-2 clips were used.
    used = {Path(e["source"]).name for x in scenes for e in x["events"] if not e["synthetic"]}
    assert used and all(n.startswith("tone2_") for n in used)
    for info, x in zip(infos, meta["scenes"], strict=True):
        data, rate = read_audio(tmp_path / "out" / x["wav"])
        assert rate == SR and data.shape[0] == pytest.approx(x["duration_s"] * SR, abs=1)
        ann = read_annotations(tmp_path / "out" / x["annotation"])
        assert [(round(a, 3), round(b, 3), lab) for a, b, lab in ann] == [
            (round(e.onset, 3), round(e.offset, 3), e.label) for e in info.events]
    # T4: two cycles of four 0.1 s beeps, annotated from the first beep to the end of the last
    # (plus the audible part of a room-reverb tail, at most ~0.9 s).
    assert all(5.7 + 0.7 - 0.05 <= e["offset"] - e["onset"] <= 5.7 + 0.7 + 0.95 for e in synth)


def test_missing_folds_and_manifests_are_one_line_errors(tmp_path: Path) -> None:
    m = _write_set(tmp_path)
    with pytest.raises(SoundscapeError, match="no 'background' clips in folds"):
        generate(m, tmp_path / "o", SceneSettings(folds=(9,), n_scenes=1))
    with pytest.raises(SoundscapeError, match="manifest not found"):
        read_manifest(tmp_path / "nope.csv")


def _relicense(manifest: Path, licences: dict[str, str]) -> None:
    """Rewrite the ``license`` of the manifest rows whose file name is a key of ``licences``."""
    with manifest.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        r["license"] = licences.get(Path(r["path"]).name, r["license"])
    with manifest.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def test_commercial_scene_sets_draw_only_clips_whose_licence_allows_commercial_use(tmp_path: Path) -> None:
    m = _write_set(tmp_path / "data")
    _relicense(m, {"tone2_0.wav": "CC-BY-NC-3.0", "tone2_1.wav": "CC-Sampling+-1.0", "bg2_0.wav": "CC-BY-NC-4.0"})
    names = {c.path.name for c in read_manifest(m, (2,), licence="commercial")}
    assert names == {"tone2_2.wav", "bg2_1.wav", "bg2_2.wav"}
    assert len(read_manifest(m, (2,))) == 6
    s = SceneSettings(folds=(2,), n_scenes=6, background_hours=0.0, synthetic=(), seed=5, licence="commercial")
    generate(m, tmp_path / "out", s)
    meta = json.loads((tmp_path / "out" / "scenes.json").read_text())
    assert meta["settings"]["licence"] == "commercial"
    used = {Path(e["source"]).name for x in meta["scenes"] for e in x["events"]}
    assert used == {"tone2_2.wav"}


def test_licence_filter_errors_are_one_line(tmp_path: Path) -> None:
    m = _write_set(tmp_path)
    with pytest.raises(SoundscapeError, match="licence filter must be 'all' or 'commercial', got 'free'"):
        read_manifest(m, licence="free")
    no_licence = tmp_path / "no-licence.csv"
    no_licence.write_text("path,label,fold\naudio/bg1_0.wav,background,1\n")
    with pytest.raises(SoundscapeError, match="lacks the column\\(s\\) license"):
        read_manifest(no_licence, licence="commercial")
    assert len(read_manifest(no_licence)) == 1


@pytest.mark.parametrize(("licence", "ok"), [
    ("CC0-1.0", True), ("CC-BY-4.0", True), ("CC BY-SA 4.0", True), ("cc0", True),
    ("ODbL-1.0 (database) / DbCL-1.0 (contents)", True), ("GPL-2.0-only", True),
    ("CC-BY-NC-3.0 (ESC-50 compilation; clip itself CC0-1.0)", False),  # the compilation's licence wins
    ("cc-by-nc-4.0", False), ("CC BY-NC 4.0", False), ("CC-BY-NC-ND-4.0", False), ("CC-Sampling+-1.0", False),
    ("", False), ("Proprietary", False), ("unknown", False),  # fails closed
])
def test_commercial_licence_rule_fails_closed_and_ignores_case_and_spacing(licence: str, ok: bool) -> None:
    from edge.corpus.licences import commercial_ok

    assert commercial_ok(licence) is ok


def test_background_only_recordings_use_each_clip_at_most_max_uses_times_with_its_own_gain(tmp_path: Path) -> None:
    """One misclassified clip repeated 16 times is 16 false alarms: background streams reuse a clip <= 4 times."""
    m = _write_set(tmp_path / "data")
    s = SceneSettings(folds=(2,), n_scenes=0, background_hours=1.0, background_file_s=30.0, seed=4)
    generate(m, tmp_path / "out", s)
    meta = json.loads((tmp_path / "out" / "scenes.json").read_text())
    clips = read_manifest(m, [2])
    bg = [c for c in clips if c.label == "background"]
    # Each clip is trimmed of digital silence and used at most 4 times; no more audio than that is made.
    most = sum(trim_digital_silence(load_mono(c.path)).shape[0] for c in bg) * 4 / SR
    made = sum(x["duration_s"] for x in meta["scenes"] if x["background_only"])
    assert 0 < made <= most + 1e-6 and meta["background"]["passes"] == 4
    assert meta["background"]["hours_made"] == pytest.approx(made / 3600, abs=1e-4)
    draw = UseLimitedDraw(bg, np.random.default_rng(0), 4)
    seen = [draw.next() for _ in range(4 * len(bg) + 3)]
    assert seen[-3:] == [None] * 3 and all(seen.count(c) == 4 for c in bg)

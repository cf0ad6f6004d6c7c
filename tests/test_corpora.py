"""Training on several corpora: aligned folds, one licence filter for all, corpora with only some labels."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from edge.capture.audiofile import write_wav
from edge.train import data as D
from edge.train.teacher import _key

SR = 16000


def _corpus(root: Path, rows: list[tuple[str, str, int, str]]) -> Path:
    """A corpus folder: ``(relative path, label, fold, licence)`` rows, each a short noise clip."""
    rng = np.random.default_rng(len(rows))
    for rel, *_ in rows:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        write_wav(root / rel, (0.05 * rng.standard_normal(SR // 2)).astype(np.float32), SR)
    with (root / "manifest.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "fold", "duration_s", "source", "license", "original_name", "category"])
        w.writerows([(rel, lab, fold, "0.5", "test", lic, rel, "x") for rel, lab, fold, lic in rows])
    return root


@pytest.fixture()
def corpora(tmp_path: Path) -> tuple[Path, Path]:
    home = _corpus(tmp_path / "homesounds", [
        ("audio/dog/a.wav", "dog_bark", 1, "CC0-1.0"), ("audio/dog/b.wav", "dog_bark", 2, "CC-BY-NC-3.0 (ESC-50)"),
        ("audio/background/x.wav", "background", 1, "CC0-1.0"), ("audio/background/y.wav", "background", 2,
                                                                  "CC0-1.0")])
    # Only negatives, and one of them under the same relative path as a homesounds clip.
    neg = _corpus(tmp_path / "esc-negatives", [
        ("audio/background/x.wav", "background", 1, "CC-BY-NC-3.0 (ESC-50 compilation; clip itself CC0-1.0)"),
        ("audio/background/z.wav", "background", 2, "CC0-1.0")])
    return home, neg


def test_rows_of_several_corpora_know_their_corpus_and_file(corpora: tuple[Path, Path]) -> None:
    home, neg = corpora
    rows = D.read_corpora([home, neg])
    assert [r.corpus for r in rows] == ["homesounds"] * 4 + ["esc-negatives"] * 2
    assert rows[4].file() == (neg / "audio/background/x.wav").resolve() != rows[2].file()
    # a fold-k model holds out fold k of every corpus at once
    assert {(r.corpus, r.path) for r in D.select_folds(rows, [2])} == {
        ("homesounds", "audio/dog/b.wav"), ("homesounds", "audio/background/y.wav"),
        ("esc-negatives", "audio/background/z.wav")}
    # a corpus without a label is fine: the labels are the union
    assert {r.label for r in rows if r.corpus == "esc-negatives"} == {"background"}


def test_the_licence_filter_applies_to_every_corpus(corpora: tuple[Path, Path]) -> None:
    rows = D.licence_filter(D.read_corpora(list(corpora)), "commercial")
    assert {(r.corpus, r.path) for r in rows} == {
        ("homesounds", "audio/dog/a.wav"), ("homesounds", "audio/background/x.wav"),
        ("homesounds", "audio/background/y.wav"), ("esc-negatives", "audio/background/z.wav")}


def test_corpora_whose_folds_do_not_align_are_refused_naming_the_corpus_and_fold(corpora: tuple[Path, Path],
                                                                                   tmp_path: Path) -> None:
    home, _ = corpora
    odd = _corpus(tmp_path / "other", [("a.wav", "background", 7, "CC0-1.0")])
    with pytest.raises(D.DataError, match=r"other: fold 7 is not a fold of .*homesounds \(folds \[1, 2\]\)"):
        D.read_corpora([home, odd])
    with pytest.raises(D.DataError, match="given twice"):
        D.read_corpora([home, home])


def test_clips_of_two_corpora_with_the_same_relative_path_stay_apart(corpora: tuple[Path, Path]) -> None:
    rows = D.read_corpora(list(corpora))
    clips = D.load_clips(rows, None, SR)
    a, b = 2, 4  # homesounds and esc-negatives audio/background/x.wav
    assert clips.rows[a].path == clips.rows[b].path
    assert not np.array_equal(clips.audio[a], clips.audio[b])
    assert _key(clips, a) != _key(clips, b)  # the YAMNet teacher cache keeps both
    assert clips.groups[a] != clips.groups[b]  # and so does the inner split

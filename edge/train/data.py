"""Training data: manifest reading (one or several corpora), licence filter, fold selection, audio in memory.

Each corpus is a folder with a ``manifest.csv`` of
``path,label,fold,duration_s,source,license,original_name`` (more columns are
ignored); ``path`` is relative to that folder. Several corpora train one model
(:func:`read_corpora`): their folds are the same folds (ESC-based corpora keep
the ESC folds), so a fold-k model holds out fold k of every corpus; a corpus
may hold only some labels (``esc-negatives`` only ``background``). Audio is
float32 mono at the front end's sample rate, loaded once.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np

from edge.core.errors import EdgeError
from edge.corpus.licences import check_filter, licence_allows

BACKGROUND = "background"
#: Share of the training clips (by recording group) held out to tune the clip decision and the prototypes.
INNER_VAL_FRAC = 0.2
COLUMNS = ("path", "label", "fold", "duration_s", "source", "license", "original_name")


class DataError(EdgeError, ValueError):
    """A manifest or audio file problem; the message is one line for the user."""


@dataclass(frozen=True)
class Row:
    path: str
    label: str
    fold: int
    duration_s: float
    source: str
    license: str
    original_name: str
    #: the corpus folder ``path`` is relative to ("" = the caller's data folder)
    root: str = ""

    @property
    def corpus(self) -> str:
        """Name of the corpus folder (``homesounds``, ``esc-negatives``, ...); "" when unknown."""
        return Path(self.root).name if self.root else ""

    def file(self, root: Path | None = None) -> Path:
        """The audio file: ``root`` (the row's own corpus folder by default) / ``path``."""
        base = Path(self.root) if self.root else root
        return Path(self.path) if base is None else base / self.path

    @property
    def group(self) -> str:
        """Recording group from the manifest (used when the FLAC has no ``album`` tag): see :func:`recording_id`."""
        return recording_id(self.original_name) if self.original_name else self.path


def recording_id(original_name: str) -> str:
    """``original_name`` less what differs between pieces of one recording.

    A cut offset (``"... @10.0s"``) and an ESC take letter (``3-144827-A.ogg``,
    ``1-100038-B-14.wav``: takes A, B of one freesound recording) are dropped, so
    the pieces land on the same side of the inner split.
    """
    name = re.sub(r"\s*@\s*\d+(?:\.\d+)?\s*s$", "", original_name)
    return re.sub(r"(\d+-\d+)-[A-Z](?=[-.])", r"\1", name)


def default_data_dir() -> Path:
    """``../shared/data/homesounds`` relative to the repository root."""
    return Path(__file__).resolve().parents[2].parent / "shared" / "data" / "homesounds"


def read_manifest(path: str | Path) -> list[Row]:
    """Read ``manifest.csv`` (or a folder holding one); a missing column or bad fold is a one-line
    :class:`DataError`. Every row remembers its corpus folder (:attr:`Row.root`)."""
    from edge.corpus.manifest import ManifestError, read_rows

    try:
        p, raw = read_rows(path)
    except ManifestError as e:
        raise DataError(str(e)) from None
    root = str(p.parent.resolve())
    rows: list[Row] = []
    for i, r in raw:
        try:
            fold = int(r.get("fold") or 0)
            dur = float(r.get("duration_s") or 0.0)
        except ValueError:
            raise DataError(f"{p}:{i}: fold/duration_s is not a number") from None
        rows.append(Row(r["path"], r["label"], fold, dur, r.get("source") or "", r.get("license") or "",
                        r.get("original_name") or "", root))
    return rows


def read_corpora(dirs: Sequence[str | Path]) -> list[Row]:
    """The rows of several corpora, in the order given.

    Their folds must be aligned: every corpus's folds are among the first
    corpus's (the reference, e.g. ``homesounds``), else :class:`DataError`
    names the corpus and the fold; a corpus given twice is refused.
    """
    if not dirs:
        raise DataError("no data folder given")
    out: list[Row] = []
    ref_folds: set[int] = set()
    seen: set[str] = set()
    for k, d in enumerate(dirs):
        rows = read_manifest(d)
        root = rows[0].root if rows else str(Path(d).resolve())
        if root in seen:
            raise DataError(f"{d}: this corpus is given twice")
        seen.add(root)
        folds = {r.fold for r in rows}
        if k == 0:
            ref_folds = folds
        elif not folds <= ref_folds:
            extra = sorted(folds - ref_folds)
            raise DataError(f"{d}: fold {extra[0]} is not a fold of {dirs[0]} (folds {sorted(ref_folds)}): "
                            "the corpora's folds must be aligned")
        out.extend(rows)
    return out


def licence_filter(rows: list[Row], which: str) -> list[Row]:
    """``which``: ``all`` keeps everything, ``commercial`` only what
    :func:`edge.corpus.licences.commercial_ok` allows."""
    try:
        check_filter(which)
    except ValueError as e:
        raise DataError(str(e)) from None
    return [r for r in rows if licence_allows(r.license, which)]


def select_folds(rows: list[Row], folds: list[int] | tuple[int, ...] | None) -> list[Row]:
    if folds is None:
        return list(rows)
    s = set(folds)
    return [r for r in rows if r.fold in s]


def load_audio(path: Path, sr: int) -> np.ndarray:
    """Mono float32 audio at ``sr`` Hz (see :func:`edge.capture.audiofile.read_mono`)."""
    from edge.capture.audiofile import AudioFileError, read_mono

    try:
        return read_mono(path, sr)
    except AudioFileError as e:
        raise DataError(str(e)) from None


@dataclass
class ClipSet:
    """Clips in memory: ``audio[i]`` float32 ``(n_samples,)``, ``labels[i]`` a label name."""

    audio: list[np.ndarray]
    labels: list[str]
    groups: list[str]
    rows: list[Row | None] = field(default_factory=list)
    mels: list[np.ndarray] = field(default_factory=list)  # log-mel (n_frames, n_mels) per clip, if computed
    #: Per clip, a bool ``(n_frames,)`` mask of the frames holding the labelled sound (synthetic clips,
    #: whose beeps are known), or None (real clips: labelled as a whole). Empty = all None.
    active: list[np.ndarray | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.audio)

    def activity(self) -> list[np.ndarray | None]:
        """``active`` padded with None to one entry per clip."""
        return self.active if self.active else [None] * len(self)

    def subset(self, idx: list[int] | np.ndarray) -> ClipSet:
        act = self.activity()
        return ClipSet([self.audio[i] for i in idx], [self.labels[i] for i in idx],
                       [self.groups[i] for i in idx], [self.rows[i] for i in idx],
                       [self.mels[i] for i in idx] if self.mels else [], [act[i] for i in idx])

    def extend(self, other: ClipSet) -> ClipSet:
        mels = self.mels + other.mels if (self.mels and other.mels) else []
        return ClipSet(self.audio + other.audio, self.labels + other.labels, self.groups + other.groups,
                       self.rows + other.rows, mels, self.activity() + other.activity())

    def with_mels(self, fp) -> ClipSet:  # noqa: ANN001 - FrontendParams, imported lazily
        """Same clips with their log-mel computed by the runtime front end (once)."""
        from edge.features.frontend import logmel

        return ClipSet(self.audio, self.labels, self.groups, self.rows, [logmel(x, fp) for x in self.audio],
                       self.active)


def recording_group(path: Path, fallback: str) -> str:
    """The FLAC ``album`` tag (recording group id) if present, else ``fallback``."""
    import soundfile as sf

    try:
        with sf.SoundFile(str(path)) as f:
            return f.album or fallback
    except Exception:  # a file without tags still trains; group by its name
        return fallback


_CACHE: dict[tuple[str, int], tuple[np.ndarray, str, np.ndarray | None]] = {}


def load_clips(rows: list[Row], root: Path | None, sr: int, fp=None) -> ClipSet:  # noqa: ANN001
    """Load clips (and their log-mel when ``fp`` is given), memoised per process (CV reuses them).

    A row's file is its own corpus folder / path; ``root`` serves rows that do not know their folder.
    Recording groups are prefixed with the corpus, so no two corpora share one.
    """
    from edge.features.frontend import logmel

    audio, groups, mels = [], [], []
    for r in rows:
        f = r.file(root)
        key = (str(f.resolve()), sr)
        if key not in _CACHE:
            x = load_audio(f, sr)
            g = recording_group(f, r.group)
            _CACHE[key] = (x, f"{r.corpus}:{g}" if r.corpus else g, None)
        x, g, m = _CACHE[key]
        if fp is not None and m is None:
            m = logmel(x, fp)
            _CACHE[key] = (x, g, m)
        audio.append(x)
        groups.append(g)
        mels.append(m)
    return ClipSet(audio, [r.label for r in rows], groups, list(rows),
                   cast(list[np.ndarray], mels) if fp is not None else [])  # fp set: every mel computed


def inner_split(clips: ClipSet, frac: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split by recording group, per label, into (train_idx, val_idx).

    About ``frac`` of each label's groups go to validation (at least one when a
    label has >= 3 groups), so no recording is on both sides.
    """
    rng = np.random.default_rng(seed)
    val: list[int] = []
    labels = sorted(set(clips.labels))
    for lab in labels:
        idx = [i for i, x in enumerate(clips.labels) if x == lab]
        groups = sorted({clips.groups[i] for i in idx})
        if len(groups) < 3:
            continue
        rng.shuffle(groups)
        n_val_clips = max(1, int(round(frac * len(idx))))
        chosen: set[str] = set()
        count = 0
        for g in groups[:-1]:  # always leave one group for training
            if count >= n_val_clips:
                break
            chosen.add(g)
            count += sum(1 for i in idx if clips.groups[i] == g)
        val += [i for i in idx if clips.groups[i] in chosen]
    val_arr = np.array(sorted(val), dtype=np.int64)
    train_arr = np.setdiff1d(np.arange(len(clips)), val_arr)
    return train_arr, val_arr


def write_manifest(path: str | Path, rows: list[Row], root: Path | None) -> Path:
    """Write ``rows`` as a manifest CSV with absolute paths (:meth:`Row.file`), readable from anywhere,
    with a ``corpus`` column naming each row's corpus."""
    p = Path(path)
    with p.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow((*COLUMNS, "corpus"))
        for r in rows:
            w.writerow([str(r.file(root).resolve()), r.label, r.fold, f"{r.duration_s:.3f}", r.source,
                        r.license, r.original_name, r.corpus])
    return p


def training_data_summary(rows: list[Row]) -> str:
    """One line: clip counts per corpus, per-licence-family counts, for the contract."""
    fam: dict[str, int] = {}
    per_corpus: dict[str, int] = {}
    for r in rows:
        key = r.license.split(" ")[0] if r.license else "unknown"
        fam[key] = fam.get(key, 0) + 1
        per_corpus[r.corpus or "homesounds"] = per_corpus.get(r.corpus or "homesounds", 0) + 1
    parts = ", ".join(f"{k} {v}" for k, v in sorted(fam.items(), key=lambda kv: -kv[1]))
    corpora = " + ".join(f"{k} {v}" for k, v in per_corpus.items())
    return f"{corpora} real clips (licences: {parts}) + synthetic T3/T4 alarms (edge.synth.alarms)"

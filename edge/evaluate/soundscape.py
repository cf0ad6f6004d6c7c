"""Soundscape generator: event clips mixed over background beds, with DCASE-style ground truth.

Reads one or several homesounds-style manifests (``path,label,fold,...``;
paths relative to each manifest's folder; e.g. ``homesounds``, ``esc-negatives``
and ``home-media``, whose folds are aligned), takes clips of the chosen folds
only, and writes:

* ``scenes/scene_NNN_snrXX.wav`` + ``.txt``: a bed made of ``background`` clips
  (concatenated with crossfades) with event clips placed one after another at
  random gaps, every event of one scene at the scene's SNR. The ``.txt`` has
  one ``onset<TAB>offset<TAB>label`` line per event (seconds).
* ``background/bg_NNN.wav`` (+ empty ``.txt``): background-only recordings,
  ``background_hours`` in total, for false alarms per hour. They are made of
  passes over the background clips in fresh random orders, each clip at most
  ``max_background_uses`` times in all, with its own random gain each time, so
  one misclassified clip counts a few times, not dozens (fewer hours are made,
  and ``scenes.json`` says so, when the clips run out).
* ``scenes.json``: everything needed to audit a scene (source clip of every
  event, gain, SNR, trimmed region, which events are synthetic).

Definitions:

* **Event activity** is the *active part* of a clip: its leading and trailing
  near-silence (frames more than ``trim_db`` below the clip's loudest 20 ms
  frame) is cut before mixing, so the annotation covers exactly the audio that
  was added to the bed, never padding.
* **SNR** (dB) = 10 log10(mean square of the placed event / mean square of the
  bed under the same samples).
* Synthetic alarms (``co_alarm``: T4, optionally ``smoke_alarm``: T3) come from
  :mod:`edge.synth.alarms` and are marked ``"synthetic": true`` in
  ``scenes.json``; there are no real CO-alarm recordings.

Everything is deterministic for a given seed. Audio is float32 mono at the
manifest's rate (16 kHz), written as 16-bit WAV.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.capture.audiofile import read_mono, write_wav
from edge.core.errors import EdgeError
from edge.corpus.licences import check_filter, licence_allows
from edge.corpus.manifest import ManifestError, read_rows
from edge.evaluate.sed_metrics import write_annotations

SAMPLE_RATE = 16000
BACKGROUND = "background"
SYNTH_PATTERN = {"co_alarm": "T4", "smoke_alarm": "T3"}


class SoundscapeError(EdgeError, ValueError):
    """A problem with the manifest or the generation settings (one-line message)."""


@dataclass(frozen=True)
class Clip:
    path: Path
    label: str
    fold: int


@dataclass
class PlacedEvent:
    """One event of a scene. Times in seconds from the scene start."""

    onset: float
    offset: float
    label: str
    source: str
    synthetic: bool
    gain_db: float
    snr_db: float
    trim_s: tuple[float, float]


@dataclass
class SceneInfo:
    name: str
    wav: str
    annotation: str
    duration_s: float
    snr_db: float | None
    background_only: bool
    events: list[PlacedEvent] = field(default_factory=list)


def read_manifest(path: str | Path, folds: Sequence[int] | None = None, licence: str = "all") -> list[Clip]:
    """Clips of ``folds`` (all when None) from a manifest; paths resolved against its folder.

    ``licence``: ``all``, or ``commercial`` to keep only clips whose ``license``
    column allows commercial use (see :mod:`edge.corpus.licences`).
    """
    p = Path(path)
    try:
        check_filter(licence)
    except ValueError as e:
        raise SoundscapeError(str(e)) from None
    required = ["fold", "label", "path"] + (["license"] if licence != "all" else [])
    try:
        p, raw = read_rows(p, sorted(required))
    except ManifestError as e:
        raise SoundscapeError(str(e)) from None
    clips: list[Clip] = []
    for n, row in raw:
        try:
            fold = int(row["fold"])
        except (TypeError, ValueError):
            raise SoundscapeError(f"{p}:{n}: fold is not an integer: {row['fold']!r}") from None
        if (folds is None or fold in folds) and licence_allows(row.get("license") or "", licence):
            clips.append(Clip(p.parent / row["path"], row["label"], fold))
    return clips


def load_mono(path: Path, sr: int = SAMPLE_RATE) -> np.ndarray:
    """A clip as float32 mono at ``sr`` Hz."""
    return read_mono(path, sr)


def active_region(x: np.ndarray, sr: int = SAMPLE_RATE, trim_db: float = 35.0,
                  frame_s: float = 0.02, floor_dbfs: float = -75.0) -> tuple[int, int]:
    """``(start, end)`` sample indices of the active part of ``x``.

    Frames of ``frame_s`` seconds (hop = half a frame) whose RMS is within
    ``trim_db`` of the loudest frame (and above ``floor_dbfs``) are active; the
    region runs from the first sample of the first active frame to the last
    sample of the last one. ``(0, 0)`` for a silent clip.
    """
    n = int(round(frame_s * sr))
    hop = max(1, n // 2)
    if x.shape[0] < n:
        ms = np.array([np.mean(x.astype(np.float64) ** 2)]) if x.size else np.zeros(1)
        starts = np.zeros(1, dtype=np.int64)
        n = x.shape[0]
    else:
        starts = np.arange(0, x.shape[0] - n + 1, hop)
        frames = np.lib.stride_tricks.sliding_window_view(x.astype(np.float64), n)[::hop]
        ms = np.mean(frames * frames, axis=1)
    db = 10.0 * np.log10(ms + 1e-20)
    peak = db.max()
    if peak < floor_dbfs:
        return 0, 0
    on = np.flatnonzero(db >= max(peak - trim_db, floor_dbfs))
    return int(starts[on[0]]), int(min(starts[on[-1]] + n, x.shape[0]))


def _rms_db(x: np.ndarray) -> float:
    return 10.0 * math.log10(float(np.mean(x.astype(np.float64) ** 2)) + 1e-20)


class UseLimitedDraw:
    """Background clips for background-only recordings: passes over ``clips`` in fresh random orders,
    each clip at most ``max_uses`` times in all; :meth:`next` returns None when they are used up."""

    def __init__(self, clips: Sequence[Clip], rng: np.random.Generator, max_uses: int) -> None:
        self.clips, self.rng, self.max_uses = list(clips), rng, int(max_uses)
        self.passes = 0
        self._order: list[int] = []

    def next(self) -> Clip | None:
        if not self._order:
            if self.passes >= self.max_uses or not self.clips:
                return None
            self.passes += 1
            self._order = [int(i) for i in self.rng.permutation(len(self.clips))]
        return self.clips[self._order.pop()]


def trim_digital_silence(x: np.ndarray) -> np.ndarray:
    """``x`` without the exact zeros at its ends (ESC-50 pads its clips to 5 s with them; no microphone
    delivers digital silence, so a bed must not hold seconds of it)."""
    nz = np.flatnonzero(x)
    return x[nz[0] : nz[-1] + 1] if nz.size else x[:0]


def build_bed(clips: Sequence[Clip] | UseLimitedDraw, n_samples: int, rng: np.random.Generator,
              sr: int = SAMPLE_RATE, level_dbfs: float = -35.0, spread_db: float = 6.0, crossfade_s: float = 0.25,
              cache: dict[Path, np.ndarray] | None = None) -> np.ndarray:
    """A background bed of up to ``n_samples``: background clips (trimmed of digital silence), each at
    ``level_dbfs`` +- ``spread_db`` RMS, joined with linear crossfades of ``crossfade_s`` seconds.

    ``clips``: drawn at random with replacement, or from a :class:`UseLimitedDraw` (the bed ends
    early, shorter than ``n_samples``, when it runs out).
    """
    if not isinstance(clips, UseLimitedDraw) and not clips:
        raise SoundscapeError("no background clips in the chosen folds")
    cache = {} if cache is None else cache
    xf = int(crossfade_s * sr)
    bed = np.zeros(n_samples + xf, dtype=np.float32)
    pos = 0
    ramp = np.linspace(0.0, 1.0, xf, dtype=np.float32) if xf else np.zeros(0, np.float32)
    while pos < n_samples:
        if isinstance(clips, UseLimitedDraw):
            drawn = clips.next()
            if drawn is None:
                return bed[:pos]
            c = drawn
        else:
            c = clips[int(rng.integers(len(clips)))]
        if c.path not in cache:
            cache[c.path] = load_mono(c.path, sr)
        x = trim_digital_silence(cache[c.path])
        if x.shape[0] < 2 * xf + sr // 10 or _rms_db(x) < -90.0:
            if isinstance(clips, UseLimitedDraw):
                continue
            if all(v.shape[0] < 2 * xf + sr // 10 for v in cache.values()) and len(cache) >= len(clips):
                raise SoundscapeError("background clips are all too short or silent to build a bed")
            continue
        # Random gain per clip so the bed level varies like a real room.
        g = 10 ** ((level_dbfs + rng.uniform(-spread_db, spread_db) - _rms_db(x)) / 20)
        seg = x * np.float32(g)
        if xf:
            seg = seg.copy()
            seg[:xf] *= ramp
            seg[-xf:] *= ramp[::-1]
        end = min(pos + seg.shape[0], bed.shape[0])
        bed[pos:end] += seg[: end - pos]
        pos = end - xf if end - xf > pos else end
    return bed[:n_samples]


def synth_event(label: str, cycles: int, rng: np.random.Generator, sr: int = SAMPLE_RATE) -> np.ndarray:
    """``cycles`` full repetitions of the T3/T4 pattern of ``label`` (starts with a beep)."""
    from edge.synth import alarms as sa

    kind = SYNTH_PATTERN[label]
    v = sa.random_variant(rng)
    dur = cycles * sa.pattern_period(kind)
    return sa.synth_alarm(kind, dur, sr, rng, v, start_s=0.0)


@dataclass(frozen=True)
class SceneSettings:
    """Generation settings. Times in seconds, levels in dB."""

    folds: tuple[int, ...]
    snrs: tuple[float, ...] = (0.0, 6.0, 12.0, 18.0)
    n_scenes: int = 40
    events_per_scene: tuple[int, int] = (6, 10)
    gap_s: tuple[float, float] = (1.0, 6.0)
    lead_s: float = 3.0
    tail_s: float = 3.0
    background_hours: float = 1.0
    background_file_s: float = 600.0
    #: each background clip appears at most this often in all background-only recordings together
    max_background_uses: int = 4
    bed_level_dbfs: float = -35.0
    synthetic: tuple[str, ...] = ("co_alarm",)
    synthetic_cycles: int = 2
    trim_db: float = 35.0
    seed: int = 0
    licence: str = "all"  # "commercial": only clips whose licence allows commercial use


def _event_pool(clips: Sequence[Clip], synthetic: Sequence[str]) -> dict[str, list[Clip | None]]:
    pool: dict[str, list[Clip | None]] = {}
    for c in clips:
        if c.label != BACKGROUND:
            pool.setdefault(c.label, []).append(c)
    for lab in synthetic:
        if lab not in SYNTH_PATTERN:
            raise SoundscapeError(f"synthetic: unknown synthetic label {lab!r} (known: {', '.join(SYNTH_PATTERN)})")
        pool.setdefault(lab, []).append(None)  # None = synthesise a fresh one each time
    return pool


class _BalancedDraw:
    """Draws labels round-robin in random order, clips of a label without replacement until used up."""

    def __init__(self, pool: dict[str, list[Clip | None]], rng: np.random.Generator) -> None:
        self.pool, self.rng = pool, rng
        self.labels = sorted(pool)
        self._order: list[str] = []
        self._left: dict[str, list[int]] = {}

    def next(self) -> tuple[str, Clip | None]:
        if not self._order:
            self._order = [self.labels[i] for i in self.rng.permutation(len(self.labels))]
        lab = self._order.pop()
        if not self._left.get(lab):
            self._left[lab] = list(self.rng.permutation(len(self.pool[lab])))
        return lab, self.pool[lab][self._left[lab].pop()]


def make_scene(name: str, snr_db: float, drawer: _BalancedDraw, bg: Sequence[Clip], s: SceneSettings,
               rng: np.random.Generator, cache: dict[Path, np.ndarray], sr: int = SAMPLE_RATE,
               ) -> tuple[np.ndarray, np.ndarray, list[PlacedEvent]]:
    """One scene: ``(mix, bed, events)``; ``mix - bed`` is exactly the placed events."""
    n_ev = int(rng.integers(s.events_per_scene[0], s.events_per_scene[1] + 1))
    sources: list[tuple[str, np.ndarray, str, bool, tuple[float, float]]] = []
    for _ in range(n_ev):
        lab, clip = drawer.next()
        if clip is None:
            x = synth_event(lab, s.synthetic_cycles, rng, sr)
            src, synth = f"synthetic:{SYNTH_PATTERN[lab]}", True
        else:
            if clip.path not in cache:
                cache[clip.path] = load_mono(clip.path, sr)
            x = cache[clip.path]
            src, synth = str(clip.path), False
        a, b = active_region(x, sr, s.trim_db)
        if b - a < int(0.05 * sr):
            continue  # silent clip: nothing to annotate
        sources.append((lab, x[a:b], src, synth, (a / sr, (x.shape[0] - b) / sr)))
    starts = []
    t = s.lead_s
    for i, (_lab, seg, *_rest) in enumerate(sources):
        if i:
            t += float(rng.uniform(*s.gap_s))
        starts.append(int(round(t * sr)))
        t = (starts[-1] + seg.shape[0]) / sr
    total = int(round((t + s.tail_s) * sr))
    bed = build_bed(bg, total, rng, sr, s.bed_level_dbfs, cache=cache)
    mix = bed.copy()
    events: list[PlacedEvent] = []
    for (lab, seg, src, synth, trim), st in zip(sources, starts, strict=True):
        under = bed[st : st + seg.shape[0]]
        bed_db = _rms_db(under)
        if bed_db < -80.0:
            bed_db = _rms_db(bed)  # a silent stretch of bed: refer to the whole bed instead
        gain_db = snr_db + bed_db - _rms_db(seg)
        mix[st : st + seg.shape[0]] += seg * np.float32(10 ** (gain_db / 20))
        events.append(PlacedEvent(st / sr, (st + seg.shape[0]) / sr, lab, src, synth, round(gain_db, 3),
                                  snr_db, (round(trim[0], 4), round(trim[1], 4))))
    peak = float(np.max(np.abs(mix))) if mix.size else 0.0
    if peak > 0.98:
        # Scale the whole scene (events and bed alike): SNRs are unchanged.
        k = np.float32(0.98 / peak)
        mix *= k
        bed *= k
        for e in events:
            e.gain_db = round(e.gain_db + 20 * math.log10(float(k)), 3)
    return mix, bed, events


def generate(manifest: str | Path | Sequence[str | Path], out_dir: str | Path, settings: SceneSettings,
             progress: Any = None) -> list[SceneInfo]:
    """Write scenes, background-only recordings and ``scenes.json`` under ``out_dir``.

    ``manifest``: one manifest (or corpus folder) or several, whose folds are aligned.
    Returns the list of scenes written (background-only ones last).
    """
    s = settings
    manifests = [manifest] if isinstance(manifest, (str, Path)) else list(manifest)
    if not manifests:
        raise SoundscapeError("no manifest given")
    clips = [c for m in manifests for c in read_manifest(m, s.folds, s.licence)]
    manifest = ", ".join(str(m) for m in manifests)
    bg = [c for c in clips if c.label == BACKGROUND]
    pool = _event_pool(clips, s.synthetic)
    if not bg:
        raise SoundscapeError(f"{manifest}: no '{BACKGROUND}' clips in folds {list(s.folds)}")
    if not pool:
        raise SoundscapeError(f"{manifest}: no event clips in folds {list(s.folds)}")
    out = Path(out_dir)
    (out / "scenes").mkdir(parents=True, exist_ok=True)
    (out / "background").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(s.seed)
    cache: dict[Path, np.ndarray] = {}
    drawer = _BalancedDraw(pool, rng)
    infos: list[SceneInfo] = []
    for i in range(s.n_scenes):
        snr = float(s.snrs[i % len(s.snrs)])
        name = f"scene_{i:03d}_snr{int(round(snr)):02d}"
        mix, _bed, events = make_scene(name, snr, drawer, bg, s, rng, cache)
        wav = out / "scenes" / f"{name}.wav"
        ann = out / "scenes" / f"{name}.txt"
        write_wav(wav, mix, SAMPLE_RATE)
        write_annotations(ann, [(e.onset, e.offset, e.label) for e in events])
        infos.append(SceneInfo(name, str(wav.relative_to(out)), str(ann.relative_to(out)),
                               mix.shape[0] / SAMPLE_RATE, snr, False, events))
        if progress:
            progress(name)
    total_s = s.background_hours * 3600.0
    n_files = max(1, math.ceil(total_s / s.background_file_s - 1e-9)) if total_s > 0 else 0
    bg_draw = UseLimitedDraw(bg, rng, s.max_background_uses)
    made_s = 0.0
    for i in range(n_files):
        dur = min(s.background_file_s, total_s - i * s.background_file_s)
        bed = build_bed(bg_draw, int(round(dur * SAMPLE_RATE)), rng, SAMPLE_RATE, s.bed_level_dbfs, cache=cache)
        if bed.shape[0] < SAMPLE_RATE:
            break  # the clips are used up
        made_s += bed.shape[0] / SAMPLE_RATE
        name = f"bg_{i:03d}"
        wav = out / "background" / f"{name}.wav"
        ann = out / "background" / f"{name}.txt"
        write_wav(wav, bed, SAMPLE_RATE)
        write_annotations(ann, [])
        infos.append(SceneInfo(name, str(wav.relative_to(out)), str(ann.relative_to(out)),
                               bed.shape[0] / SAMPLE_RATE, None, True, []))
        if progress:
            progress(name)
    meta = {
        "generator": "edge.evaluate.soundscape",
        "manifest": [str(Path(m).resolve()) for m in manifests],
        "settings": asdict(s),
        "background": {"hours_asked": s.background_hours, "hours_made": round(made_s / 3600.0, 4),
                       "clips": len(bg), "max_uses": s.max_background_uses, "passes": bg_draw.passes},
        "sample_rate": SAMPLE_RATE,
        "labels": sorted(pool),
        "synthetic_labels": list(s.synthetic),
        "scenes": [asdict(x) for x in infos],
    }
    (out / "scenes.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return infos


#: what every entry of ``scenes.json``'s ``scenes`` list holds (see :func:`generate`)
SCENE_KEYS = ("name", "wav", "annotation", "duration_s", "background_only")


def load_scene_set(scene_dir: str | Path) -> dict[str, Any]:
    """Read ``scenes.json`` of a generated set (paths made absolute)."""
    from edge.core.files import FileProblem, read_text, regular_file

    d = Path(scene_dir)
    meta_path = d / "scenes.json"
    try:
        text = read_text(meta_path, 64 << 20)  # a regular file, bounded
    except FileProblem as e:
        if e.missing:
            raise SoundscapeError(f"{d}: no scenes.json (make a scene set with 'edge eval-stream --make DIR')") \
                from None
        raise SoundscapeError(str(e)) from None
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as e:
        raise SoundscapeError(f"{meta_path}: not valid JSON ({e.msg})") from None
    except RecursionError:
        raise SoundscapeError(f"{meta_path}: not valid JSON (nested too deeply)") from None
    scenes = meta.get("scenes") if isinstance(meta, dict) else None
    if not isinstance(scenes, list) or not scenes:
        raise SoundscapeError(f"{meta_path}: no 'scenes' list (not written by 'edge eval-stream --make'?)")
    for i, sc in enumerate(scenes):
        lacks = [k for k in SCENE_KEYS if not isinstance(sc, dict) or k not in sc]
        if lacks:
            raise SoundscapeError(f"{meta_path}: scenes[{i}] lacks {', '.join(lacks)}")
        sc["wav"] = str(d / sc["wav"])
        sc["annotation"] = str(d / sc["annotation"])
        try:
            regular_file(sc["annotation"])
        except FileProblem as e:
            if e.missing:
                raise SoundscapeError(f"{meta_path}: scenes[{i}]: annotation {sc['annotation']} not found") \
                    from None
            raise SoundscapeError(f"{meta_path}: scenes[{i}]: annotation {e}") from None
    return meta

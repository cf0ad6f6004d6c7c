"""Teaching the listener a sound of this home from a few examples (``edge enroll``), on the device.

For each example (a recording, or a few seconds of microphone audio) the
sound is found by level: the loudest run of blocks that stands above the
clip's noise floor (the 10th percentile of its block levels). The model's
window embeddings of the windows that hold enough of that run are kept
(at most :data:`PER_EXAMPLE` per example, evenly over the sound): they are
the name's prototypes. No audio is kept.

Threshold (cosine similarity; the hop's score is the similarity clipped to
[0, 1]), from the examples alone and the model's negative bank
(:mod:`edge.model.negatives`), so no server is needed:

* leave-one-out: each example's windows are compared with the prototypes of
  the *other* examples; its ``persistence_k``-th best window is what the
  detector would need (k of n hops above the threshold). ``pos`` is the
  lowest over the examples;
* ``neg``: the highest similarity of any negative-bank window to the
  prototypes (ordinary sounds: speech, music, television, kitchen, traffic);
* threshold = ``neg + NEG_FRACTION * (pos - neg)`` when ``pos > neg``, else
  just above ``neg`` (a taught sound must not fire on ordinary sounds; the
  person is warned that it will be missed at times). Without a bank:
  ``pos - NO_BANK_MARGIN``, at least :data:`NO_BANK_FLOOR`.

Warnings: fewer than :data:`MIN_EXAMPLES` examples, examples nearly identical
(copies of one recording), a sound barely above its noise floor.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.core.errors import EdgeError
from edge.detect.home_background import fingerprint
from edge.detect.taught import MAX_PROTOTYPES, TaughtSound, TaughtSounds, centred
from edge.features.frontend import logmel
from edge.model.classifier import Classifier
from edge.model.negatives import NegativeBank, find_bank
from edge.model.prototypes import unit_rows

#: windows kept per example
PER_EXAMPLE = 6
#: a window is kept when it holds at least this fraction of the sound's blocks (at most a window's worth)
MIN_OVERLAP = 0.5
#: dB a block must stand above the clip's noise floor to belong to the sound
ABOVE_FLOOR_DB = 6.0
#: blocks more than this below the loudest are not part of the sound
BELOW_PEAK_DB = 20.0
#: a sound whose peak is below this (dBFS) is not a sound
QUIET_DBFS = -60.0
#: warn when the sound stands less than this (dB) above its clip's noise floor
WARN_ABOVE_FLOOR_DB = 12.0
MIN_EXAMPLES = 3
#: warn when two examples' mean embeddings are this alike (cosine)
ALIKE_COSINE = 0.995
NEG_FRACTION = 0.35
NO_BANK_MARGIN = 0.05
NO_BANK_FLOOR = 0.6


class EnrolError(EdgeError, ValueError):
    """An example or a request that cannot be used (one line naming the file)."""


@dataclass
class Example:
    """What one example gave: the sound's window embeddings ``(m, dim)`` and how it was found."""

    name: str  # the file, or "microphone example N"
    windows: np.ndarray  # (m, dim) unit rows
    region_s: tuple[float, float]  # where the sound is, seconds from the start
    peak_dbfs: float
    floor_dbfs: float


@dataclass
class Enrolment:
    """The result of teaching one name: what to store, and what to tell the person."""

    name: str
    sound: TaughtSound
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    center: np.ndarray | None = None  # what the prototypes were compared without (see edge.detect.taught)


def block_levels(x: np.ndarray, block_samples: int) -> np.ndarray:
    """``(n_blocks,)`` dBFS of each whole block of ``x`` ``(n,)``."""
    n = x.shape[0] // block_samples
    seg = x[: n * block_samples].reshape(n, block_samples).astype(np.float64)
    return 10.0 * np.log10(np.mean(seg * seg, axis=1) + 1e-12)


def find_sound(levels: np.ndarray, where: str) -> tuple[int, int, float, float]:
    """``(first, last, peak, floor)``: the block run of the sound in a clip's block ``levels`` (dBFS).

    The run around the loudest block whose blocks are at least ``ABOVE_FLOOR_DB`` above the noise floor
    and within ``BELOW_PEAK_DB`` of the peak (gaps of one block are bridged). EnrolError if none.
    """
    if levels.size == 0:
        raise EnrolError(f"{where}: too short to hold a sound")
    peak_i = int(np.argmax(levels))
    peak = float(levels[peak_i])
    floor = float(np.percentile(levels, 10))
    if peak < QUIET_DBFS:
        raise EnrolError(f"{where}: no sound found (loudest {peak:.0f} dBFS: too quiet; record it closer)")
    if peak - floor < ABOVE_FLOOR_DB:
        raise EnrolError(f"{where}: no sound found above the clip's noise floor ({floor:.0f} dBFS, loudest "
                         f"{peak:.0f} dBFS); record the sound with some quiet before and after it")
    on = levels >= max(floor + ABOVE_FLOOR_DB, peak - BELOW_PEAK_DB)
    a = b = peak_i
    while a > 0 and (on[a - 1] or (a > 1 and on[a - 2])):
        a -= 1
    while b < levels.size - 1 and (on[b + 1] or (b < levels.size - 2 and on[b + 2])):
        b += 1
    return a, b, peak, floor


def windows_over(ends: np.ndarray, window: int, a: int, b: int, where: str) -> np.ndarray:
    """Indices of the windows (each ``window`` blocks, ending at blocks ``ends``) that hold at least
    :data:`MIN_OVERLAP` of the sound's blocks ``a..b`` (or of the window), at most :data:`PER_EXAMPLE` of
    them, spread evenly; EnrolError if none does."""
    overlap = np.minimum(ends, b) - np.maximum(ends - window + 1, a) + 1
    need = max(1, math.ceil(MIN_OVERLAP * min(window, b - a + 1) - 1e-9))
    keep = np.flatnonzero(overlap >= need)
    if keep.size == 0:
        raise EnrolError(f"{where}: no sound found (no window of the model holds it)")
    if keep.size > PER_EXAMPLE:
        keep = keep[np.linspace(0, keep.size - 1, PER_EXAMPLE).round().astype(int)]
    return keep


def example_from_audio(clf: Classifier, x: np.ndarray, where: str) -> Example:
    """The sound in one example ``x`` ``(n,)`` float32 at the model's rate, as window embeddings."""
    c = clf.contract
    W = c.window_blocks
    if x.shape[0] < c.block_samples:
        raise EnrolError(f"{where}: too short to hold a sound ({x.shape[0] / c.frontend.sample_rate:.2f} s)")
    levels = block_levels(x, c.block_samples)
    a, b, peak, floor = find_sound(levels, where)
    # The stream meets the sound while it enters the window: pad short clips with their own quietest
    # audio so that every window over the sound exists (the windows end at blocks W-1 .. n-1).
    quiet = int(np.argmin(levels))
    q = x[quiet * c.block_samples : (quiet + 1) * c.block_samples]
    lead = max(0, W - 1 - a)
    tail = max(0, W - 1 - (levels.size - 1 - b))
    xx = np.concatenate([np.tile(q, lead), x[: levels.size * c.block_samples], np.tile(q, tail)])
    a, b = a + lead, b + lead
    _, emb = clf.score_frames(logmel(xx.astype(np.float32), c.frontend), pad_to_window=True)
    keep = windows_over(np.arange(emb.shape[0]) + W - 1, W, a, b, where)  # a window ends at its newest block
    bs = c.block_seconds
    return Example(where, unit_rows(emb[keep].astype(np.float32)), ((a - lead) * bs, (b - lead + 1) * bs),
                   peak, floor)


def example_from_hops(embeddings: np.ndarray, levels: np.ndarray, window_hops: int, hop_s: float,
                      where: str) -> Example:
    """The sound in a run of a listener's hops: their window embeddings ``(n, dim)`` and levels ``(n,)`` dBFS
    (each hop's own audio), a window spanning ``window_hops`` hops of ``hop_s`` s (teaching from Home Assistant,
    while the listener keeps listening: no audio is kept, only what the hops gave)."""
    a, b, peak, floor = find_sound(np.asarray(levels, np.float64), where)
    W = max(1, int(window_hops))
    keep = windows_over(np.arange(embeddings.shape[0]), W, a, b, where)  # hop i's window ends with its own audio
    return Example(where, unit_rows(np.asarray(embeddings, np.float32)[keep]), (a * hop_s, (b + 1) * hop_s),
                   peak, floor)


def example_from_file(clf: Classifier, path: str | Path) -> Example:
    from edge.capture.audiofile import read_mono

    x = read_mono(path, clf.contract.frontend.sample_rate)  # AudioFileError: one line naming the file
    if not np.all(np.isfinite(x)):
        raise EnrolError(f"{path}: samples that are not numbers (NaN/inf)")
    return example_from_audio(clf, x, str(path))


def first_examples(paths: Iterable[Path], make: Callable[[Path], Example], n: int) -> list[Example]:
    """At most ``n`` examples, ``make(path)`` of the first ``paths`` that hold one (an evaluation's pick).

    A path ``make`` refuses (:class:`EnrolError`: no clear sound, too short, ...) is passed over.
    """
    out: list[Example] = []
    for p in paths:
        try:
            out.append(make(p))
        except EnrolError:
            continue
        if len(out) == n:
            break
    return out


def centre_of(bank: NegativeBank | None, contract: Any) -> np.ndarray | None:
    """The common direction taught sounds are compared without: the bank's mean window, else the mean of the
    model's label prototypes, else None."""
    if bank is not None:
        return np.asarray(bank.mean, np.float32)
    protos = contract.familiarity()
    if protos is None or not protos.vectors:
        return None
    return np.concatenate(list(protos.vectors.values())).mean(axis=0).astype(np.float32)


def calibrate(examples: list[Example], bank: NegativeBank | None, k: int = 2,
              center: np.ndarray | None = None) -> tuple[float, dict[str, Any]]:
    """``(threshold, figures)`` for the prototypes of ``examples`` (see the module docstring); the windows
    and the bank are compared without ``center``."""
    examples = [dataclasses.replace(e, windows=centred(e.windows, center)) for e in examples]
    P = np.concatenate([e.windows for e in examples])
    owner = np.concatenate([np.full(e.windows.shape[0], i) for i, e in enumerate(examples)])
    loo = []
    for i, e in enumerate(examples):
        others = P[owner != i]
        if others.shape[0] == 0:
            break
        best = np.sort(np.max(e.windows @ others.T, axis=1))[::-1]
        loo.append(float(best[min(k, best.size) - 1]))
    pos = min(loo) if loo else 1.0
    figures: dict[str, Any] = {"loo_min": round(pos, 4), "loo_median": round(float(np.median(loo)), 4) if loo
                               else None}
    if bank is not None:
        neg_all = np.max(centred(bank.vectors, center) @ P.T, axis=1)
        neg = float(neg_all.max())
        figures.update(neg_max=round(neg, 4), neg_p99=round(float(np.percentile(neg_all, 99)), 4),
                       neg_p999=round(float(np.percentile(neg_all, 99.9)), 4),
                       bank_windows=int(bank.vectors.shape[0]))
        thr = neg + NEG_FRACTION * (pos - neg) if pos > neg else neg + 0.01
        figures["method"] = "leave-one-out and negative bank"
    else:
        thr = max(pos - NO_BANK_MARGIN, NO_BANK_FLOOR)
        figures["method"] = "leave-one-out only (no negative bank)"
    return float(min(max(thr, 0.0), 0.999)), figures


def enrol(name: str, examples: list[Example], clf: Classifier, k: int = 2,
          taught: TaughtSounds | None = None) -> Enrolment:
    """Prototypes and threshold of ``name`` from its examples, with warnings for the person.

    ``taught``: the sounds already taught with this model; their file's centre is kept (one per file).
    """
    if not examples:
        raise EnrolError(f"{name}: no examples")
    c = clf.contract
    bank, bank_note = find_bank(clf.path, fingerprint(c))
    keep_center = taught is not None and taught.model == fingerprint(c) and bool(taught.sounds)
    center = taught.center if keep_center and taught is not None else centre_of(bank, c)
    thr, figures = calibrate(examples, bank, k, center)
    P = centred(np.concatenate([e.windows for e in examples]), center)
    if P.shape[0] > MAX_PROTOTYPES:
        per = max(1, MAX_PROTOTYPES // len(examples))
        P = np.concatenate([e.windows[np.linspace(0, e.windows.shape[0] - 1, min(per, e.windows.shape[0]))
                                      .round().astype(int)] for e in examples])[:MAX_PROTOTYPES]
    warnings = []
    if len(examples) < MIN_EXAMPLES:
        warnings.append(f"only {len(examples)} example(s): {MIN_EXAMPLES}-5 recorded at different times make "
                        "it more reliable")
    means = unit_rows(np.stack([e.windows.mean(axis=0) for e in examples]))
    if len(examples) > 1:
        sim = means @ means.T
        iu = np.triu_indices(len(examples), 1)
        if float(sim[iu].min()) > ALIKE_COSINE:
            warnings.append("the examples are nearly identical (copies of one recording?): record the sound a few "
                            "separate times, so that it is recognised when it sounds a little different")
    for e in examples:
        if e.peak_dbfs - e.floor_dbfs < WARN_ABOVE_FLOOR_DB:
            warnings.append(f"{e.name}: the sound is only {e.peak_dbfs - e.floor_dbfs:.0f} dB above the noise: "
                            "closer, or in a quieter moment, is better")
    if bank is not None and figures["loo_min"] <= figures["neg_max"]:
        warnings.append(f"{name} sounds like ordinary sounds to this model (an example matches the others at "
                        f"{figures['loo_min']:.2f}, ordinary sounds reach {figures['neg_max']:.2f}): the threshold "
                        "favours fewer false alarms, so it will be missed at times")
    figures["examples_regions_s"] = [[round(e.region_s[0], 2), round(e.region_s[1], 2)] for e in examples]
    sound = TaughtSound(P, len(examples), thr, figures)
    return Enrolment(name, sound, warnings, [bank_note], center)


def add_to_file(sounds: TaughtSounds | None, result: Enrolment, model_fp: str) -> TaughtSounds:
    """``sounds`` (or a new set for this model) with ``result`` added or replaced."""
    from edge.detect.taught import MAX_SOUNDS

    if sounds is None or sounds.model != model_fp:
        removed = [*(sounds.removed if sounds else []), *(sounds.names if sounds else [])]
        sounds = TaughtSounds(model_fp, {}, result.center, removed[-2 * MAX_SOUNDS:])
    elif not sounds.sounds:
        sounds.center = result.center
    if result.name not in sounds.sounds and len(sounds.sounds) >= MAX_SOUNDS:
        raise EnrolError(f"{result.name}: at most {MAX_SOUNDS} taught sounds (edge sounds remove NAME frees one)")
    sounds.add(result.name, result.sound)
    return sounds

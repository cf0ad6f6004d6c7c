"""Evaluation of on-device enrolment (``edge enroll``): leave-categories-out on real recordings.

    python -m edge.evaluate.enrol --model MODEL.onnx --data ../shared/data --out DIR [--yamnet]

Protocol (issue 24):

* kinds of sound the model was never trained on (default: six ``category`` values of
  ``esc-negatives``; the shipped recipe trains on ``homesounds`` only);
* each kind is taught from 5 clips of the training folds (the first 5 of the manifest
  in which a sound is found), with the model's negative bank (``MODEL.negatives.json``,
  built from training-fold clips *without* these kinds: ``python -m edge.train.negative_bank
  ... --folds 1 2 3 4 --exclude-category ...``); all kinds are taught into one file, as
  one home would;
* scenes: the held-out fold's clips of each kind over beds of the held-out fold's
  ``background`` clips (of all three corpora, the taught kinds left out) at 0-18 dB SNR
  (:func:`edge.evaluate.soundscape.make_scene`); background-only streams of at least
  ``--background-hours`` of the same clips for false alarms per hour;
* every stream runs through the real listener (:func:`edge.service.listener.detect_file`)
  once; its hops (scores, window embeddings, times) are replayed through the same
  :class:`~edge.detect.chain.EventChain` for each operating point: ``bank`` (the
  threshold ``edge enroll`` stores) and ``examples`` (the threshold without a bank);
* per taught sound: event recall and precision at a 500 ms collar (sed_eval definitions,
  :func:`edge.evaluate.sed_metrics.event_based`), false alarms per hour on the background.

``--yamnet`` adds the baseline: YAMNet's 521 class scores per 0.48 s patch (the
embedding the public tflite file exposes) + nearest prototype, same clips, same
threshold rules and bank construction, replayed through the same detector. YAMNet was
trained on AudioSet, which has these kinds: it is a reference, not a model without them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edge.capture.audiofile import write_wav
from edge.evaluate.sed_metrics import event_based, write_annotations
from edge.evaluate.soundscape import (
    BACKGROUND,
    Clip,
    SceneSettings,
    UseLimitedDraw,
    _BalancedDraw,
    build_bed,
    make_scene,
)

KINDS = ("door-wood-creaks", "can-opening", "church-bells", "clapping", "mouse-click", "water-drops")
CORPORA = ("homesounds", "home-media", "esc-negatives")
SR = 16000


def _rows(data: Path, corpus: str) -> list[dict[str, str]]:
    from edge.corpus.manifest import read_rows

    _, rows = read_rows(data / corpus, ("path", "label", "fold"))
    return [dict(r, _root=str(data / corpus)) for _, r in rows]


def gather(data: Path, kinds: Sequence[str], train_folds: Sequence[int], test_fold: int
           ) -> tuple[dict[str, list[Path]], dict[str, list[Clip]], list[Clip]]:
    """``(train paths per kind, test clips per kind, test-fold background clips without the kinds)``."""
    train: dict[str, list[Path]] = {k: [] for k in kinds}
    test: dict[str, list[Clip]] = {k: [] for k in kinds}
    bg: list[Clip] = []
    for corpus in CORPORA:
        for r in _rows(data, corpus):
            cat, fold, path = r.get("category") or "", int(r["fold"]), Path(r["_root"]) / r["path"]
            if corpus == "esc-negatives" and cat in kinds:
                if fold in train_folds:
                    train[cat].append(path)
                elif fold == test_fold:
                    test[cat].append(Clip(path, cat.replace("-", "_"), fold))
            elif r["label"] == BACKGROUND and fold == test_fold:
                bg.append(Clip(path, BACKGROUND, fold))
    return train, test, bg


def make_streams(out: Path, test: dict[str, list[Clip]], bg: list[Clip], scenes_per_kind: int, hours: float,
                 seed: int = 0) -> tuple[list[Path], list[Path]]:
    """Write the scenes (with ``.txt`` annotations) and the background-only streams; their paths."""
    rng = np.random.default_rng(seed)
    cache: dict[Path, np.ndarray] = {}
    s = SceneSettings(folds=(0,), events_per_scene=(3, 5), seed=seed)
    scenes, backs = [], []
    (out / "scenes").mkdir(parents=True, exist_ok=True)
    (out / "background").mkdir(parents=True, exist_ok=True)
    for clips in test.values():
        drawer = _BalancedDraw({clips[0].label: list(clips)}, rng)
        for i in range(scenes_per_kind):
            snr = float(s.snrs[i % len(s.snrs)])
            name = f"{clips[0].label}_{i:02d}_snr{int(snr):02d}"
            mix, _bed, events = make_scene(name, snr, drawer, bg, s, rng, cache)
            wav = out / "scenes" / f"{name}.wav"
            write_wav(wav, mix, SR)
            write_annotations(wav.with_suffix(".txt"), [(e.onset, e.offset, e.label) for e in events])
            scenes.append(wav)
    draw = UseLimitedDraw(bg, rng, 6)
    n = int(np.ceil(hours * 3600 / 600 - 1e-9))
    for i in range(n):
        bed = build_bed(draw, 600 * SR, rng, SR, s.bed_level_dbfs, cache=cache)
        if bed.shape[0] < SR:
            break
        wav = out / "background" / f"bg_{i:02d}.wav"
        write_wav(wav, bed, SR)
        backs.append(wav)
    return scenes, backs


def _ref(wav: Path) -> list[tuple[float, float, str]]:
    from edge.evaluate.sed_metrics import read_annotations

    return [(float(a), float(b), str(c)) for a, b, c in read_annotations(wav.with_suffix(".txt"))]


@dataclasses.dataclass
class Hops:
    """What one stream's hops gave: times ``(n, 2)`` s, model scores ``(n, n_labels)``, embeddings ``(n, dim)``."""

    times: np.ndarray
    scores: np.ndarray
    embeddings: np.ndarray


def record(clf: Any, cfg: Any, wav: Path) -> Hops:
    """Run ``wav`` through the real listener once, keeping every hop's scores and window embedding."""
    from edge.service.listener import detect_file

    t: list[tuple[float, float]] = []
    sc: list[np.ndarray] = []
    em: list[np.ndarray] = []

    def on_scores(a: float, b: float, s: np.ndarray) -> None:
        t.append((a, b))
        sc.append(s.copy())

    detect_file(wav, cfg, model=clf, on_scores=on_scores, on_embedding=lambda e: em.append(e.copy()))
    return Hops(np.array(t), np.array(sc), np.array(em))


def replay(contract: Any, settings: Any, sounds: Any, hops: Hops) -> list[tuple[float, float, str]]:
    """The taught sounds' events of one stream, through the listener's event chain."""
    from edge.detect.chain import EventChain

    chain = EventChain(contract, settings, None, familiarity=False, taught=sounds)
    names = set(sounds.names)
    evs = []
    for (a, b), s, e in zip(hops.times, hops.scores, hops.embeddings, strict=True):
        evs += chain.push_hop(s, e, float(a), float(b), -120.0)
    evs += chain.flush(float(hops.times[-1, 1]) if len(hops.times) else 0.0)
    return [(e.onset, float(e.offset or e.onset), e.label) for e in evs if e.state == "off" and e.label in names]


def score(names: Sequence[str], ref: dict[str, list], est: dict[str, list], bg_est: dict[str, list],
          bg_hours: float) -> dict[str, dict[str, float]]:
    res = event_based(ref, est, labels=list(names), t_collar=0.5)
    onset = event_based(ref, est, labels=list(names), t_collar=0.5, evaluate_offset=False)
    out = {}
    for n in names:
        c, o = res.class_wise[n], onset.class_wise[n]
        fa = sum(1 for evs in bg_est.values() for e in evs if e[2] == n)
        out[n] = {"recall": round(c.recall, 3), "precision": round(c.precision, 3), "n_ref": int(c.Nref),
                  "n_sys": int(c.Nsys), "recall_onset": round(o.recall, 3), "precision_onset": round(o.precision, 3),
                  "false_alarms": fa, "fa_per_hour": round(fa / max(bg_hours, 1e-9), 2)}
    return out


def teach_all(clf: Any, train: dict[str, list[Path]], n_examples: int, use_bank: bool = True
              ) -> tuple[Any, Any, dict[str, list[str]]]:
    """Teach every kind into one set: ``(with the bank's thresholds, with the examples-only thresholds, files)``."""
    from edge.detect.home_background import fingerprint
    from edge.detect.taught import TaughtSound, TaughtSounds
    from edge.service.enrolment import calibrate, enrol, example_from_file, first_examples

    fp = fingerprint(clf.contract)
    with_bank = TaughtSounds(fp, {})
    no_bank = TaughtSounds(fp, {})
    used: dict[str, list[str]] = {}
    for kind, paths in train.items():
        ex = first_examples(paths, lambda p: example_from_file(clf, p), n_examples)
        name = kind.replace("-", "_")
        r = enrol(name, ex, clf, k=2, taught=with_bank if with_bank.sounds else None)
        if not with_bank.sounds:
            with_bank.center = no_bank.center = r.center
        with_bank.add(name, r.sound)
        thr, fig = calibrate(ex, None, 2, with_bank.center)
        no_bank.add(name, TaughtSound(r.sound.prototypes, r.sound.examples, thr, fig))
        used[name] = [str(e.name) for e in ex]
        print(f"  {name}: {len(ex)} examples, threshold {r.sound.threshold:.3f} with the bank "
              f"({r.sound.calibration.get('method')}), {thr:.3f} without; {'; '.join(r.warnings) or 'no warnings'}",
              file=sys.stderr)
    return with_bank, no_bank, used


#: other thresholds from the same calibration figures, to show the trade-off (not how `edge enroll` sets it)
SWEEP = ("neg_p999", "neg_p99")


def sweep(sounds: Any) -> list[tuple[str, Any]]:
    """Copies of ``sounds`` whose thresholds are another of their calibration figures (:data:`SWEEP`)."""
    from edge.detect.taught import TaughtSound, TaughtSounds

    out = []
    for key in SWEEP:
        s = TaughtSounds(sounds.model, {n: TaughtSound(t.prototypes, t.examples, float(t.calibration[key]),
                                                       t.calibration) for n, t in sounds.sounds.items()},
                         sounds.center)
        out.append((f"bank@{key.removeprefix('neg_')}", s))
    return out


def hop_cost(clf: Any, sounds: Any, n: int = 2000, seed: int = 0) -> dict[str, float]:
    """Microseconds per hop of scoring the taught sounds, beside one model inference, measured together."""
    from edge.detect.taught import TaughtScorer

    c = clf.contract
    rng = np.random.default_rng(seed)
    blocks = rng.normal(-6.0, 2.0, (64, c.block_frames, c.frontend.n_mels)).astype(np.float32)
    embs = rng.normal(0.0, 1.0, (64, c.embedding_dim)).astype(np.float32)
    scorer = TaughtScorer(sounds)
    t0 = time.perf_counter()
    for i in range(n):
        clf.push_block(blocks[i % 64])
    t1 = time.perf_counter()
    for i in range(n):
        scorer.scores(embs[i % 64])
    t2 = time.perf_counter()
    return {"model_block_us": round(1e6 * (t1 - t0) / n, 1), "taught_scores_us": round(1e6 * (t2 - t1) / n, 1),
            "prototypes": int(scorer.P.shape[0]), "sounds": len(scorer.names)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m edge.evaluate.enrol", description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="a model trained without the kinds (its bank next to it)")
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2].parent / "shared" / "data"))
    ap.add_argument("--out", required=True, help="folder for the generated streams and results.json")
    ap.add_argument("--kinds", nargs="+", default=list(KINDS))
    ap.add_argument("--train-folds", type=int, nargs="+", default=[1, 2, 3, 4])
    ap.add_argument("--test-fold", type=int, default=5)
    ap.add_argument("--examples", type=int, default=5)
    ap.add_argument("--scenes-per-kind", type=int, default=8)
    ap.add_argument("--background-hours", type=float, default=1.0)
    ap.add_argument("--yamnet", action="store_true", help="also the YAMNet + nearest-prototype baseline")
    ap.add_argument("--min-overlap", type=float, help="experiment: edge.service.enrolment.MIN_OVERLAP")
    ap.add_argument("--cost-only", action="store_true", help="teach, then print the per-hop cost only")
    a = ap.parse_args(argv)
    from edge.detect.settings import for_model
    from edge.model.classifier import Classifier
    from edge.service.config import load_config

    t0 = time.time()
    if a.min_overlap is not None:
        from edge.service import enrolment

        enrolment.MIN_OVERLAP = a.min_overlap
    data, out = Path(a.data), Path(a.out)
    train, test, bg = gather(data, a.kinds, a.train_folds, a.test_fold)
    print(f"kinds {', '.join(a.kinds)}; held-out clips per kind: {', '.join(str(len(v)) for v in test.values())}; "
          f"background clips {len(bg)}", file=sys.stderr)
    clf = Classifier(a.model)
    with_bank, no_bank, used = teach_all(clf, train, a.examples)
    out.mkdir(parents=True, exist_ok=True)
    with_bank.save(out / "taught-with-bank.json")
    no_bank.save(out / "taught-examples-only.json")
    cost = hop_cost(clf, with_bank)
    print(f"per hop: one model block {cost['model_block_us']:.1f} us, scoring {cost['sounds']} taught sounds "
          f"({cost['prototypes']} prototypes) {cost['taught_scores_us']:.1f} us (same run)")
    if a.cost_only:
        return 0
    scenes, backs = make_streams(out, test, bg, a.scenes_per_kind, a.background_hours)
    plain = load_config(None, {"model.path": a.model})
    settings = for_model(plain.detector, clf.contract)
    base = dataclasses.replace(plain, detector=dataclasses.replace(plain.detector, taught_sounds=None))
    import os

    os.environ["STATE_DIRECTORY"] = str(out / "state")  # no taught file of the person running this
    hops = {w: record(clf, base, w) for w in [*scenes, *backs]}
    bg_hours = sum(float(h.times[-1, 1]) for w, h in hops.items() if w in backs) / 3600.0
    ref = {str(w): _ref(w) for w in scenes}
    results: dict[str, Any] = {"model": str(a.model), "kinds": a.kinds, "example_files": used,
                               "background_hours": round(bg_hours, 3), "scenes": len(scenes), "hop_cost": cost,
                               "events": sum(len(v) for v in ref.values())}
    for point, sounds in (("bank", with_bank), ("examples", no_bank), *sweep(with_bank)):
        est = {str(w): replay(clf.contract, settings, sounds, hops[w]) for w in scenes}
        bg_est = {str(w): replay(clf.contract, settings, sounds, hops[w]) for w in backs}
        results.setdefault("points", {})[point] = score(sounds.names, ref, est, bg_est, bg_hours)
    if a.yamnet:
        from edge.evaluate.enrol_yamnet import run_yamnet

        negatives = [Path(r["_root"]) / r["path"] for c in CORPORA for r in _rows(data, c)
                     if int(r["fold"]) in a.train_folds and (r.get("category") or "") not in a.kinds]
        results["points"].update(run_yamnet(negatives, train, scenes, backs, a.examples,
                                  lambda names, est, bg, hours: score(names, ref, est, bg, hours), sweep))
    results["seconds"] = round(time.time() - t0, 1)
    (out / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    print_table(results)
    return 0


def print_table(results: dict[str, Any]) -> None:
    pts = results["points"]
    names = list(pts["bank"])
    print(f"leave-categories-out enrolment, {results['scenes']} scenes ({results['events']} events), "
          f"{results['background_hours']:.2f} h of background; 500 ms collar (R / P: onset and offset; "
          "onset only in results.json)")
    print("operating point".ljust(22) + "".join(f"{n[:16]:>22}" for n in names))
    print(" " * 22 + "".join(f"{'R / P / FA/h':>22}" for _ in names))
    for p, per in pts.items():
        row = p.ljust(22)
        for n in names:
            r = per.get(n)
            row += f"{r['recall']:>9.2f} / {r['precision']:.2f} / {r['fa_per_hour']:>5.1f}" if r else " " * 22
        print(row)

if __name__ == "__main__":
    raise SystemExit(main())

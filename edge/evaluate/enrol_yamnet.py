"""The YAMNet baseline of :mod:`edge.evaluate.enrol`: YAMNet's 1024-d embedding + nearest prototype.

The same protocol as our model's: the sound found by level in each of the same 5
examples, prototypes = the embeddings of the patches that hold at least half of it,
centred on the mean of a negative bank built the same way (1536 farthest points of
the training folds' clips without the taught kinds), the same threshold rule
(:func:`edge.service.enrolment.calibrate`), the same detector settings
(:func:`edge.detect.chain.taught_settings`) with YAMNet's 0.48 s hop as the block.
The embedding is the ``global_average_pooling2d`` tensor of the public
``yamnet.tflite`` (read with ``experimental_preserve_all_tensors``).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from edge.capture.audiofile import read_mono
from edge.model.prototypes import unit_rows
from edge.yamnet.scorer import DEFAULT_YAMNET_PATH, PATCH_SAMPLES, SAMPLE_RATE

HOP_S = 0.48
HOP = int(HOP_S * SAMPLE_RATE)


class YamnetEmbedder:
    """``embed(wave)`` -> ``(n_patches, 1024)`` at a 0.48 s hop (zero-padded tail)."""

    def __init__(self, path: str | Path = DEFAULT_YAMNET_PATH) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.it = Interpreter(model_path=str(path), num_threads=1, experimental_preserve_all_tensors=True)
        self.it.allocate_tensors()
        inp = self.it.get_input_details()[0]
        self.inp, self.shape = inp["index"], tuple(int(v) for v in inp["shape"])
        self.emb = next(d["index"] for d in self.it.get_tensor_details()
                        if "global_average_pooling2d" in d["name"] and int(np.prod(d["shape"])) == 1024)

    def embed(self, x: np.ndarray) -> np.ndarray:
        n = max(1, 1 + (x.shape[0] - PATCH_SAMPLES) // HOP) if x.shape[0] >= PATCH_SAMPLES else 1
        pad = np.zeros((n - 1) * HOP + PATCH_SAMPLES, np.float32)
        pad[: min(x.shape[0], pad.shape[0])] = x[: pad.shape[0]]
        out = np.zeros((n, 1024), np.float32)
        for i in range(n):
            self.it.set_tensor(self.inp, pad[i * HOP : i * HOP + PATCH_SAMPLES].reshape(self.shape))
            self.it.invoke()
            out[i] = self.it.get_tensor(self.emb).reshape(-1)
        return out


def example(y: YamnetEmbedder, path: Path) -> Any:
    """The sound of one example file as YAMNet patch embeddings (an :class:`~edge.service.enrolment.Example`)."""
    from edge.service.enrolment import Example, block_levels, find_sound

    x = read_mono(path, SAMPLE_RATE)
    lv = block_levels(x, HOP)
    a, b, peak, floor = find_sound(lv, str(path))
    e = y.embed(x)
    starts = np.arange(e.shape[0])  # patch i spans blocks i, i+1 (0.975 s ~ 2 hops)
    overlap = np.minimum(starts + 1, b) - np.maximum(starts, a) + 1
    keep = np.flatnonzero(overlap >= math.ceil(0.5 * min(2, b - a + 1)))
    if keep.size == 0:
        keep = np.array([min(a, e.shape[0] - 1)])
    return Example(str(path), unit_rows(e[keep]), (a * HOP_S, (b + 1) * HOP_S), peak, floor)


def run_yamnet(negatives: Sequence[Path], train: dict[str, list[Path]], scenes: Sequence[Path],
               backs: Sequence[Path], n_examples: int, score: Callable[..., dict[str, dict[str, float]]],
               sweep: Callable[[Any], list[tuple[str, Any]]]) -> dict[str, dict[str, dict[str, float]]]:
    """The baseline's results ``{operating point: {taught sound: figures}}``, scored by
    ``score(names, est, bg_est, hours)``; ``negatives``: the clips its bank is built from; ``sweep``: the other
    operating points."""
    from edge.detect.chain import taught_settings
    from edge.detect.detector import Detector
    from edge.detect.settings import DetectorConfig, resolve
    from edge.detect.taught import TaughtScorer, TaughtSound, TaughtSounds, centred
    from edge.model.negatives import NegativeBank
    from edge.service.enrolment import calibrate, first_examples
    from edge.train.negative_bank import farthest_points

    y = YamnetEmbedder()
    neg = []
    for path in negatives:
        e = y.embed(read_mono(path, SAMPLE_RATE))
        neg.append(unit_rows(e[np.linspace(0, e.shape[0] - 1, min(8, e.shape[0])).round().astype(int)]))
    x = np.concatenate(neg)
    mean = x.mean(axis=0)
    bank = NegativeBank(x[farthest_points(centred(x, mean), 1536)], "yamnet", {}, mean)
    sounds = TaughtSounds("yamnet", {}, mean)
    for kind, paths in train.items():
        ex = first_examples(paths, lambda p: example(y, p), n_examples)
        thr, fig = calibrate(ex, bank, 2, mean)
        P = centred(np.concatenate([e.windows for e in ex]), mean)[:32]
        sounds.add(kind.replace("-", "_"), TaughtSound(P, len(ex), thr, fig))
        print(f"  yamnet {kind}: threshold {thr:.3f} ({fig})", file=sys.stderr)
    contract = SimpleNamespace(window_blocks=2, block_seconds=HOP_S)
    base = resolve(DetectorConfig(), ("x",))
    embedded = {w: y.embed(read_mono(w, SAMPLE_RATE)) for w in [*scenes, *backs]}

    def stream(point: Any, wav: Path) -> list[tuple[float, float, str]]:
        scorer = TaughtScorer(point)
        e = embedded[wav]
        det = Detector(point.names, taught_settings(base, point, contract))  # type: ignore[arg-type]
        evs = []
        for i in range(e.shape[0]):
            s0 = i * HOP_S + HOP_S  # the patch's newest 0.48 s
            evs += det.update(scorer.scores(e[i]), s0, s0 + HOP_S, -120.0)
        evs += det.flush()
        return [(v.onset, float(v.offset or v.onset), v.label) for v in evs if v.state == "off"]

    hours = sum(embedded[w].shape[0] for w in backs) * HOP_S / 3600.0
    out = {}
    for name, point in (("yamnet", sounds), *((f"yamnet {n}", p) for n, p in sweep(sounds))):
        est = {str(w): stream(point, w) for w in scenes}
        bg_est = {str(w): stream(point, w) for w in backs}
        out[name] = score(point.names, est, bg_est, hours)
    return out

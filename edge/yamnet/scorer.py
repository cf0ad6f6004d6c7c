"""YAMNet (AudioSet, 521 classes) as a reference model and its map onto our labels.

YAMNet is never shipped: it is read from ``../shared/models/yamnet/`` (relative
to the repository root; configurable) and run with ``ai-edge-litert``.  Every
entry point that needs it calls :func:`yamnet_available` first and skips with
the reason it returns.  ``ai_edge_litert`` is imported inside functions only.

Model I/O (TF Hub ``lite-model/yamnet/classification/tflite/1``): input float32
waveform ``(15600,)`` = 0.975 s at 16 kHz in [-1, 1]; output ``(521,)`` sigmoid
scores.  We slide it over a clip at its own 0.48 s hop.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_YAMNET_DIR = REPO_ROOT.parent / "shared" / "models" / "yamnet"
DEFAULT_YAMNET_PATH = DEFAULT_YAMNET_DIR / "yamnet.tflite"

SAMPLE_RATE = 16000  # Hz
PATCH_SAMPLES = 15600  # samples per YAMNet input (0.975 s)
DEFAULT_HOP_S = 0.48  # YAMNet's own patch hop, seconds
PUBLISHED_MACS_PER_PATCH = 69.2e6  # multiply-adds per 0.96 s patch (YAMNet README)
N_CLASSES = 521

# Our label -> AudioSet display names (yamnet_class_map.csv) whose max score is
# that label's score.  Chosen for precision: generic parent classes that fire
# on our `background` negatives are left out here (see YAMNET_BROAD_EXTRA):
#   "Alarm"    also fires on clock alarms, sirens, car horns, music;
#   "Door"     fires on door creaks (a background sub-class);
#   "Water"    fires on rain and sea waves (background sub-classes);
#   "Breaking" covers wood/branch breaking, not only glass;
#   "Dog"/"Cat" are kept: the parent class is what YAMNet tends to score highest.
# YAMNet's 521 classes have no "Male speech"/"Female speech" (AudioSet has,
# YAMNet dropped them) and no "Washing machine"; `washing_machine` and
# `co_alarm` therefore have no YAMNet class and YAMNet can never predict them.
YAMNET_LABEL_MAP: dict[str, tuple[str, ...]] = {
    "smoke_alarm": ("Smoke detector, smoke alarm", "Fire alarm"),
    "co_alarm": (),
    "clock_alarm": ("Alarm clock",),
    "siren": (
        "Siren",
        "Civil defense siren",
        "Police car (siren)",
        "Ambulance (siren)",
        "Fire engine, fire truck (siren)",
    ),
    "door_knock": ("Knock",),
    "glass_breaking": ("Glass", "Shatter"),
    "dog_bark": ("Bark", "Dog", "Bow-wow", "Yip"),
    "cat_meow": ("Meow", "Cat", "Caterwaul"),
    "baby_cry": ("Baby cry, infant cry", "Crying, sobbing"),
    "speech": ("Speech", "Conversation", "Narration, monologue"),
    "coughing": ("Cough",),
    "sneezing": ("Sneeze",),
    "running_water": ("Water tap, faucet", "Sink (filling or washing)", "Pour", "Fill (with liquid)"),
    "toilet_flush": ("Toilet flush",),
    "vacuum_cleaner": ("Vacuum cleaner",),
    "washing_machine": (),
    "footsteps": ("Walk, footsteps",),
    "keyboard_typing": ("Typing", "Computer keyboard"),
}

# Ambiguous parent classes added in the "broad" variant of the map, reported
# side by side so the effect of the choice above is measured, not argued.
YAMNET_BROAD_EXTRA: dict[str, tuple[str, ...]] = {
    "smoke_alarm": ("Alarm", "Beep, bleep"),
    "door_knock": ("Door",),
    "glass_breaking": ("Breaking", "Chink, clink"),
    "running_water": ("Water",),
}


def yamnet_available(path: str | Path = DEFAULT_YAMNET_PATH) -> str | None:
    """None when YAMNet can run here, else a one-line reason (for skips)."""
    path = Path(path)
    if not path.is_file():
        return f"YAMNet model not found at {path}"
    if not (path.parent / "yamnet_class_map.csv").is_file():
        return f"yamnet_class_map.csv not found beside {path}"
    try:
        import ai_edge_litert.interpreter  # noqa: F401
    except ImportError as exc:
        return f"ai-edge-litert is not installed ({exc})"
    return None


def load_class_names(path: str | Path = DEFAULT_YAMNET_DIR / "yamnet_class_map.csv") -> list[str]:
    """The 521 AudioSet display names in output order."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    names = [r["display_name"] for r in sorted(rows, key=lambda r: int(r["index"]))]
    if len(names) != N_CLASSES:
        raise ValueError(f"yamnet: {path} has {len(names)} classes, expected {N_CLASSES}")
    return names


def label_index_map(
    class_names: list[str], labels: list[str], broad: bool = False
) -> dict[str, list[int]]:
    """Our label -> YAMNet output indices (empty list = unmapped).

    Raises ValueError naming a display name missing from ``class_names``.
    """
    pos = {n: i for i, n in enumerate(class_names)}
    out: dict[str, list[int]] = {}
    for lab in labels:
        names = YAMNET_LABEL_MAP.get(lab, ()) + (YAMNET_BROAD_EXTRA.get(lab, ()) if broad else ())
        missing = [n for n in names if n not in pos]
        if missing:
            raise ValueError(f"yamnet: label map for {lab!r} names unknown YAMNet class {missing[0]!r}")
        out[lab] = [pos[n] for n in names]
    return out


def mapped_scores(scores: np.ndarray, index_map: dict[str, list[int]], labels: list[str]) -> np.ndarray:
    """YAMNet scores ``(n_patches, 521)`` -> ``(n_patches, len(labels))``: max over each label's classes.

    Unmapped labels (and labels absent from ``index_map``, e.g. ``background``) score 0.
    """
    scores = np.asarray(scores, dtype=np.float32)
    out = np.zeros((scores.shape[0], len(labels)), dtype=np.float32)
    for j, lab in enumerate(labels):
        idx = index_map.get(lab, [])
        if idx:
            out[:, j] = scores[:, idx].max(axis=1)
    return out


def patch_starts(n_samples: int, hop_samples: int) -> np.ndarray:
    """Start samples of the patches covering a clip; the last one may run past the end (zero-padded)."""
    if n_samples <= PATCH_SAMPLES:
        return np.zeros(1, dtype=np.int64)
    n = 1 + int(np.ceil((n_samples - PATCH_SAMPLES) / hop_samples))
    return np.arange(n, dtype=np.int64) * hop_samples


class YamnetScorer:
    """Runs yamnet.tflite on single patches with one interpreter thread."""

    def __init__(self, path: str | Path = DEFAULT_YAMNET_PATH, hop_s: float = DEFAULT_HOP_S, threads: int = 1) -> None:
        reason = yamnet_available(path)
        if reason:
            raise FileNotFoundError(reason)
        from ai_edge_litert.interpreter import Interpreter

        if hop_s <= 0:
            raise ValueError(f"yamnet: hop_s must be > 0 seconds, got {hop_s}")
        self.path = Path(path)
        self.hop_s = float(hop_s)
        self.hop_samples = max(1, int(round(hop_s * SAMPLE_RATE)))
        self.class_names = load_class_names(self.path.parent / "yamnet_class_map.csv")
        self._interp = Interpreter(model_path=str(self.path), num_threads=threads)
        self._interp.allocate_tensors()
        inp = self._interp.get_input_details()[0]
        self._in_index = inp["index"]
        self._in_shape = tuple(int(s) for s in inp["shape"])
        if int(np.prod(self._in_shape)) != PATCH_SAMPLES:
            raise ValueError(f"yamnet: {self.path} expects input {self._in_shape}, not {PATCH_SAMPLES} samples")
        outs = self._interp.get_output_details()
        self._out_index = next(o["index"] for o in outs if int(np.prod(o["shape"])) == N_CLASSES)

    def score_patch(self, patch: np.ndarray) -> np.ndarray:
        """One waveform patch ``(15600,)`` float32 at 16 kHz -> scores ``(521,)``."""
        self._interp.set_tensor(self._in_index, np.ascontiguousarray(patch, dtype=np.float32).reshape(self._in_shape))
        self._interp.invoke()
        return self._interp.get_tensor(self._out_index).reshape(N_CLASSES).copy()

    def score_clip(self, wave_16k: np.ndarray) -> np.ndarray:
        """Mono float32 clip at 16 kHz ``(n_samples,)`` -> scores ``(n_patches, 521)`` at ``hop_s``.

        Clips shorter than one patch, and the tail of the last patch, are zero-padded.
        """
        x = np.asarray(wave_16k, dtype=np.float32).reshape(-1)
        starts = patch_starts(x.shape[0], self.hop_samples)
        padded = np.zeros(int(starts[-1]) + PATCH_SAMPLES, dtype=np.float32)
        padded[: x.shape[0]] = x
        return np.stack([self.score_patch(padded[s : s + PATCH_SAMPLES]) for s in starts])


def macs_per_audio_second(hop_s: float = DEFAULT_HOP_S) -> float:
    """YAMNet multiply-accumulates per second of audio at ``hop_s`` (one 0.96 s patch per hop)."""
    return PUBLISHED_MACS_PER_PATCH / hop_s


def measure_cost(scorer: YamnetScorer, audio_s: float = 60.0, seed: int = 0) -> dict[str, float]:
    """Measured single-thread cost of streaming YAMNet at ``scorer.hop_s``.

    Scores ``audio_s`` seconds of noise patch by patch (one patch per hop, as a
    stream would) and returns wall and process-CPU seconds per second of audio,
    plus the published MACs per second for the same hop.
    """
    rng = np.random.default_rng(seed)
    n_patches = max(1, int(round(audio_s / scorer.hop_s)))
    patch = (0.05 * rng.standard_normal(PATCH_SAMPLES)).astype(np.float32)
    scorer.score_patch(patch)  # warm-up: first invoke prepares the XNNPACK delegate
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for _ in range(n_patches):
        scorer.score_patch(patch)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    covered = n_patches * scorer.hop_s
    return {
        "hop_s": scorer.hop_s,
        "audio_s": covered,
        "patches": n_patches,
        "macs_per_audio_s": macs_per_audio_second(scorer.hop_s),
        "wall_s_per_audio_s": wall / covered,
        "cpu_s_per_audio_s": cpu / covered,
        "cpu_ms_per_patch": 1000.0 * cpu / n_patches,
    }

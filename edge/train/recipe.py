"""The training recipe: data -> augmented crops -> block classifier -> ONNX fp32 -> int8 with contract.

``train(data_dir, out_dir, folds, seed, quick, licence_filter)`` is deterministic
for a given seed (single-threaded numpy RNG, seeded torch, fixed thread count).
Thresholds and clip pooling are tuned on an inner validation split (by
recording group) of the training folds only.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import cast

import numpy as np
import torch
from tqdm import tqdm

from edge.corpus.licences import commercial_ok
from edge.corpus.metrics import metrics
from edge.detect.labels import ALARM_LABELS
from edge.features.frontend import FrontendParams
from edge.model.clip_decision import POOLINGS, decide, pool_scores
from edge.model.contract import ModelContract
from edge.synth.alarms import PATTERN_LABEL, random_timing, room_noise_clip, steady_tone_clip, synth_alarm_example
from edge.train import data as D
from edge.train.augment import AugmentParams, BatchMaker
from edge.train.export import StreamCalibration, check_fp32, export_fp32, quantize_int8
from edge.train.model import BlockClassifier, macs_per_second

#: Output labels in a fixed order (the 17 event classes of homesounds + synthetic-only co_alarm).
ALL_LABELS = (
    "smoke_alarm", "co_alarm", "clock_alarm", "siren", "door_knock", "glass_breaking", "dog_bark", "cat_meow",
    "baby_cry", "speech", "coughing", "sneezing", "running_water", "toilet_flush", "vacuum_cleaner",
    "washing_machine", "footsteps", "keyboard_typing",
)
BLOCK_FRAMES = 24
WINDOW_BLOCKS = 4
MODEL_VERSION = "homesound-1.1"
#: Where YAMNet teacher scores are cached (per clip; shared by CV folds). models/build is not committed.
TEACHER_CACHE = Path(__file__).resolve().parents[2] / "models" / "build" / "teacher-cache"


@dataclass(frozen=True)
class Schedule:
    epochs: int = 300
    steps_per_epoch: int = 50
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-2
    warmup_epochs: int = 1
    label_smoothing: float = 0.05
    pos_weight: float = 4.0  # positives are ~1/19 of the targets; weight them up so they are learnt early
    synth_per_pattern: int = 40
    synth_room_noise: int = 60  # synthetic room-tone background clips
    steady_tones: int = 30  # continuous-tone background clips (an alarm must beep) ...
    steady_tone_mass: float = 0.5  # ... sampled with this mass (relative to one event class)
    background_mass: float = 12.0  # sampling mass of background relative to one event class
    alarm_mass: float = 2.0  # smoke/CO: their temporal patterns (T3 vs T4 vs fast beeping) need more examples
    synth_background_share: float = 0.15  # share of background mass given to synthetic room noise
    #: synthetic alarms get a device's timing (+-10 %), this share of smoke clips beeping continuously
    #: (None: the standard T3/T4 timings only)
    alarm_continuous_share: float | None = 0.5
    inner_val_frac: float = D.INNER_VAL_FRAC
    #: after tuning the clip decision on the inner split, train again (same seed) on all training
    #: clips and ship that model with the decision (twice the training time)
    refit: bool = False
    calib_clips: int = 60
    #: weight of the YAMNet-teacher loss on an auxiliary head (0 = no teacher; see edge.train.teacher)
    distill_weight: float = 3.0
    #: classifier head over the window's block encodings (see edge.train.model.BlockClassifier)
    head: str = "temporal"
    #: hard-negative mining: from this epoch on, every ``hard_negative_every`` epochs, the real background
    #: clips are scored by the model being trained and those (and the windows of them) that score high for
    #: some label are drawn more often (weight x (1 + hard_negative_weight x score)); 0 = off
    hard_negative_every: int = 0
    hard_negative_start: int = 100
    hard_negative_weight: float = 3.0
    widths: tuple[int, int, int, int] = (24, 48, 96, 128)


QUICK = Schedule(epochs=2, steps_per_epoch=6, batch_size=32, warmup_epochs=0, synth_per_pattern=6, synth_room_noise=6,
                 steady_tones=4, calib_clips=6, distill_weight=0.0)


def _seed_all(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))


def environment(threads: int, device: str) -> dict[str, object]:
    """What a seed's result also depends on: library builds and the CPU pick different float kernels.

    Two runs of one seed agree epoch by epoch only on the same CPU type, libraries and thread count
    (model card, *Cross-validation*), so every training report records them.
    """
    import platform

    import onnxruntime

    cpu, simd = platform.processor() or platform.machine(), []
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            info = fh.read().splitlines()
        cpu = next((ln.split(":", 1)[1].strip() for ln in info if ln.startswith("model name")), cpu)
        flags = set(next((ln.split(":", 1)[1].split() for ln in info if ln.startswith(("flags", "Features"))), []))
        # The instruction sets that decide which float kernels torch and onnxruntime run.
        simd = sorted(flags & {"avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "asimd", "sve"})
    except OSError:
        pass
    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "onnxruntime": onnxruntime.__version__, "cpu": cpu, "simd": simd, "threads": threads, "device": device}


#: Length (s) of each synthetic clip: T4 clips hold more than one 5.7 s period, so most have a burst.
SYNTH_SECONDS = {"T3": 6.0, "T4": 8.0}


def beep_frames(intervals: np.ndarray, n_frames: int, fp: FrontendParams) -> np.ndarray:
    """Bool ``(n_frames,)``: frames whose centre lies inside a beep interval (seconds ``(n, 2)``)."""
    centre = (np.arange(n_frames) * fp.hop_length + fp.win_length / 2) / fp.sample_rate
    if intervals.size == 0:
        return np.zeros(n_frames, dtype=bool)
    return cast(np.ndarray, ((centre[:, None] >= intervals[None, :, 0]) & (centre[:, None] < intervals[None, :, 1]))
                .any(axis=1))


def synthetic_alarms(n_per_pattern: int, sr: int, seed: int, continuous_share: float | None = None) -> D.ClipSet:
    """T3 (smoke) / T4 (CO) clips with their beep-frame masks (crops are labelled by the beeps they hold).

    ``continuous_share``: None = the standard timings; else every clip gets a device's
    timing (:func:`edge.synth.alarms.random_timing`), this share of the smoke clips beeping continuously.
    """
    fp = FrontendParams(sample_rate=sr)
    rng = np.random.default_rng([seed, 8201])
    audio, labels, groups, intervals = [], [], [], []
    for kind, lab in PATTERN_LABEL.items():
        for k in range(n_per_pattern):
            timing = random_timing(kind, rng, continuous_share) if continuous_share is not None else None
            x, iv = synth_alarm_example(kind, SYNTH_SECONDS[kind], sr, rng, timing)
            audio.append(x)
            intervals.append(iv)
            labels.append(lab)
            groups.append(f"synth-{kind}-{k}")
    clips = D.ClipSet(audio, labels, groups, [None] * len(audio)).with_mels(fp)
    clips.active = [beep_frames(iv, m.shape[0], fp) for iv, m in zip(intervals, clips.mels, strict=True)]
    return clips


def synthetic_room_noise(n_clips: int, sr: int, seed: int, duration_s: float = 6.0) -> D.ClipSet:
    """Synthetic room-tone clips (noise floors, hum, fans, clatter, steady tones) as ``background``."""
    rng = np.random.default_rng([seed, 7001])
    audio = [room_noise_clip(duration_s, sr, rng) for _ in range(n_clips)]
    return D.ClipSet(audio, [D.BACKGROUND] * n_clips, [f"synth-room-{k}" for k in range(n_clips)],
                     [None] * n_clips).with_mels(FrontendParams(sample_rate=sr))


def synthetic_steady_tones(n_clips: int, sr: int, seed: int, duration_s: float = 6.0) -> D.ClipSet:
    """Continuous 2-4 kHz tones (no beep pattern) as ``background``: negatives for the alarm labels."""
    rng = np.random.default_rng([seed, 7002])
    audio = [steady_tone_clip(duration_s, sr, rng) for _ in range(n_clips)]
    return D.ClipSet(audio, [D.BACKGROUND] * n_clips, [f"synth-tone-{k}" for k in range(n_clips)],
                     [None] * n_clips).with_mels(FrontendParams(sample_rate=sr))


def sampling_weights(clips: D.ClipSet, background_mass: float, synth_share: float = 0.5,
                     synth_background_share: float = 0.15, alarm_mass: float = 1.0, n_steady: int = 0,
                     steady_mass: float = 0.0) -> np.ndarray:
    """Equal mass per label (background ``background_mass``, smoke/CO ``alarm_mass``), real/synthetic split.

    Synthetic clips get ``synth_share`` of an event label's mass (``synth_background_share`` of
    background's) when the label also has real clips, all of it otherwise. The last ``n_steady``
    clips (steady-tone negatives) are set apart with their own ``steady_mass``.
    """
    w = np.zeros(len(clips))
    n_main = len(clips) - n_steady
    if n_steady:
        w[n_main:] = steady_mass / n_steady
    for lab in set(clips.labels[:n_main]):
        idx = np.array([i for i, x in enumerate(clips.labels[:n_main]) if x == lab])
        mass = background_mass if lab == D.BACKGROUND else alarm_mass if lab in ALARM_LABELS else 1.0
        real = np.array([clips.rows[i] is not None for i in idx])
        share = synth_background_share if lab == D.BACKGROUND else synth_share
        if real.all() or not real.any():
            w[idx] = mass / idx.size
            continue
        w[idx[real]] = mass * (1.0 - share) / real.sum()
        w[idx[~real]] = mass * share / (~real).sum()
    return w


def norm_stats(clips: D.ClipSet, fp: FrontendParams) -> tuple[np.ndarray, np.ndarray]:
    """Per-band mean/std of log-mel over the training clips (frames above the silence floor)."""
    allf = np.concatenate([m for m in clips.mels if m.shape[0]])
    allf = allf[allf.max(axis=1) > np.log(fp.log_offset) + 1.0]
    return allf.mean(axis=0).astype(np.float32), (allf.std(axis=0) + 1e-3).astype(np.float32)


def padded_mel(mel: np.ndarray, fp: FrontendParams, window_frames: int) -> np.ndarray:
    """A clip's log-mel padded to one window with the silence floor (as the runtime evaluation does)."""
    if mel.shape[0] < window_frames:
        pad = np.full((window_frames - mel.shape[0], fp.n_mels), np.log(fp.log_offset), np.float32)
        mel = np.concatenate([mel, pad]) if mel.size else pad
    return mel


def clip_scores(model: BlockClassifier, clips: D.ClipSet, fp: FrontendParams) -> list[np.ndarray]:
    """Window scores ``(n_windows, n_labels)`` per clip, torch fp32 (same windows as the runtime)."""
    model.eval()
    out = []
    with torch.no_grad():
        for m in clips.mels:
            mel = padded_mel(m, fp, BLOCK_FRAMES * WINDOW_BLOCKS)
            out.append(model.score_sequence(torch.from_numpy(mel)).numpy())
    return out


def tune_decision(window_scores: list[np.ndarray], truth: list[str], labels: tuple[str, ...],
                  min_support: int = 3) -> tuple[str, dict[str, float], float]:
    """Pick the clip pooling and per-label thresholds maximising macro-F1 on inner validation clips.

    A global threshold is chosen first; labels with >= ``min_support`` validation
    clips then get their own threshold (one coordinate pass), shrunk halfway
    back to the global one because the validation sets are small.
    """
    grid = np.round(np.arange(0.10, 0.95, 0.05), 2)
    best = (-1.0, "max", 0.5)
    for pooling in POOLINGS:
        pooled = np.stack([pool_scores(s, pooling) for s in window_scores])
        for t in grid:
            f1 = metrics(truth, decide(pooled, labels, np.full(len(labels), t)))["macro_f1"]
            if f1 > best[0] + 1e-9:
                best = (f1, pooling, float(t))
    f1, pooling, t0 = best
    pooled = np.stack([pool_scores(s, pooling) for s in window_scores])
    thr = np.full(len(labels), t0)
    for k, lab in enumerate(labels):
        if sum(1 for x in truth if x == lab) < min_support:
            continue
        best_k = (metrics(truth, decide(pooled, labels, thr))["macro_f1"], thr[k])
        for t in grid:
            trial = thr.copy()
            trial[k] = t
            f = metrics(truth, decide(pooled, labels, trial))["macro_f1"]
            if f > best_k[0] + 1e-9:
                best_k = (f, t)
        thr[k] = 0.5 * (best_k[1] + t0)
    final = metrics(truth, decide(pooled, labels, thr))["macro_f1"]
    return pooling, {lab: float(round(t, 3)) for lab, t in zip(labels, thr, strict=True)}, final


def background_hardness(model: BlockClassifier, clips: D.ClipSet, fp: FrontendParams) -> dict[int, np.ndarray]:
    """Per real background clip: the highest label score of each window ``(n_windows,)`` (one per block)."""
    out: dict[int, np.ndarray] = {}
    model.eval()
    dev = next(model.parameters()).device
    with torch.no_grad():
        for i, (m, lab, row) in enumerate(zip(clips.mels, clips.labels, clips.rows, strict=True)):
            if lab != D.BACKGROUND or row is None:
                continue
            mel = padded_mel(m, fp, BLOCK_FRAMES * WINDOW_BLOCKS)
            out[i] = model.score_sequence(torch.from_numpy(mel).to(dev)).max(dim=1).values.cpu().numpy()
    return out


def licence_summary(rows: list[D.Row], which: str) -> str:
    nc = sum(1 for r in rows if not commercial_ok(r.license))
    if nc:
        return (f"CC-BY-NC-3.0 (non-commercial use only): trained on {nc} ESC-50 clips under CC BY-NC 3.0 "
                "or CC Sampling+; other clips CC0/CC-BY/CC-BY-SA/GPL/ODbL (see MODEL_CARD.md)")
    return ("commercial use permitted: trained only on CC0/CC-BY/CC-BY-SA/GPL/ODbL-DbCL clips "
            "(attribution and share-alike obligations, see MODEL_CARD.md)")


def data_dirs(data_dir: str | Path | Sequence[str | Path] | None) -> list[Path]:
    """One corpus folder or several as a list (None: the default ``homesounds``)."""
    if data_dir is None:
        return [D.default_data_dir()]
    if isinstance(data_dir, (str, Path)):
        return [Path(data_dir)]
    return [Path(d) for d in data_dir]


def quick_rows(rows: list[D.Row], per_label: int = 6) -> list[D.Row]:
    """The first ``per_label`` rows of each label, in manifest order: what ``--quick`` trains on
    (a few clips per label: the point is the whole pipeline, not accuracy)."""
    seen: dict[str, int] = {}
    out = []
    for r in rows:
        if seen.get(r.label, 0) < per_label:
            seen[r.label] = seen.get(r.label, 0) + 1
            out.append(r)
    return out


def _fit(train_clips: D.ClipSet, n_steady: int, labels: tuple[str, ...], sched: Schedule, aug: AugmentParams,
         seed: int, fp: FrontendParams, name: str, progress: bool, device: str,
         teacher_model: str | Path | None, teacher_cache: str | Path | None,
         ) -> tuple[BlockClassifier, list[float], float, str, Schedule]:
    """Train a fresh model on ``train_clips`` (the last ``n_steady`` are steady-tone negatives).

    Returns the model (CPU, eval mode), the loss per epoch, the training seconds, a
    note on the teacher used and the schedule as run (no distillation without a teacher).
    """
    widths = cast(tuple[int, int, int, int], tuple(sched.widths))
    model = BlockClassifier(len(labels), fp.n_mels, BLOCK_FRAMES, WINDOW_BLOCKS, widths=widths, head=sched.head)
    mean, std = norm_stats(train_clips, fp)
    model.mel_mean.copy_(torch.from_numpy(mean))
    model.mel_std.copy_(torch.from_numpy(std))
    window_frames = BLOCK_FRAMES * WINDOW_BLOCKS
    teacher = None
    teacher_note = "none (distill_weight 0)"
    if sched.distill_weight > 0:
        from edge.train.teacher import cache_complete, select_classes, teacher_scores
        from edge.yamnet.scorer import DEFAULT_YAMNET_PATH, yamnet_available

        teacher_path = Path(teacher_model) if teacher_model else DEFAULT_YAMNET_PATH
        cache_dir = teacher_cache or TEACHER_CACHE
        missing = yamnet_available(teacher_path)
        if missing and not cache_complete(train_clips, cache_dir, fp.hop_length):
            teacher_note = f"none ({missing})"
            tqdm.write(f"{name}: no YAMNet teacher ({missing}); training without distillation")
            sched = replace(sched, distill_weight=0.0)
        else:
            teacher_note = str(teacher_path) if not missing else f"cached YAMNet scores in {cache_dir}"
            crop_samples = (window_frames - 1) * fp.hop_length + fp.win_length
            full = teacher_scores(train_clips, cache_dir, fp.hop_length, crop_samples,
                                  yamnet_path=teacher_path, progress=progress)
            keep = select_classes(full)
            teacher = [None if t is None else t[:, keep].astype(np.float32) for t in full]
    maker = BatchMaker(train_clips, labels, window_frames, fp, aug,
                       sampling_weights(train_clips, sched.background_mass,
                                        synth_background_share=sched.synth_background_share,
                                        alarm_mass=sched.alarm_mass, n_steady=n_steady,
                                        steady_mass=sched.steady_tone_mass), sched.label_smoothing, seed,
                       teacher=teacher)
    # The teacher's auxiliary head (dropped at export): embedding -> the selected AudioSet classes.
    aux_head = torch.nn.Linear(model.embedding_dim, maker.n_teacher) if teacher is not None else None
    rng = np.random.default_rng([seed, 1])

    dev = torch.device(device)
    model.to(dev)
    if dev.type == "cpu":  # NHWC: the depthwise convolutions train ~1.5x faster on the CPU
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # stubs lack memory_format
    if aux_head is not None:
        aux_head.to(dev)
    params = list(model.parameters()) + (list(aux_head.parameters()) if aux_head is not None else [])
    opt = torch.optim.AdamW(params, lr=sched.lr, weight_decay=sched.weight_decay)
    total = sched.epochs * sched.steps_per_epoch
    warm = sched.warmup_epochs * sched.steps_per_epoch

    def lr_at(step: int) -> float:
        if step < warm:
            return sched.lr * (step + 1) / warm
        return sched.lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))

    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.full((len(labels),), sched.pos_weight, device=dev))
    history = []
    step = 0
    t_train = time.time()
    for epoch in range(sched.epochs):
        model.train()
        bar = tqdm(range(sched.steps_per_epoch), desc=f"{name} epoch {epoch + 1}/{sched.epochs}", leave=False,
                   disable=not progress, unit="step")
        run_loss = 0.0
        for _ in bar:
            if aux_head is not None:
                mel, y, t, t_ok = maker.batch(sched.batch_size, rng, with_teacher=True)
            else:
                mel, y = maker.batch(sched.batch_size, rng)
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            logits, emb = model(torch.from_numpy(mel).to(dev))
            loss = loss_fn(logits, torch.from_numpy(y).to(dev))
            if aux_head is not None and t_ok.any():
                sel = torch.from_numpy(np.nonzero(t_ok)[0]).to(dev)
                loss = loss + sched.distill_weight * torch.nn.functional.binary_cross_entropy_with_logits(
                    aux_head(emb[sel]), torch.from_numpy(t[t_ok]).to(dev))
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            run_loss += loss.item()
            bar.set_postfix(loss=f"{loss.item():.4f}")
        history.append(run_loss / sched.steps_per_epoch)
        if progress:
            tqdm.write(f"{name} epoch {epoch + 1}/{sched.epochs} loss {history[-1]:.4f}")
        done = epoch + 1
        if (sched.hard_negative_every > 0 and done >= sched.hard_negative_start
                and (done - sched.hard_negative_start) % sched.hard_negative_every == 0 and done < sched.epochs):
            maker.reweight_hard(background_hardness(model, train_clips, fp), sched.hard_negative_weight,
                                BLOCK_FRAMES)
            model.train()
    model.cpu().to(memory_format=torch.contiguous_format).eval()  # type: ignore[call-overload]  # stubs lack memory_format
    return model, history, time.time() - t_train, teacher_note, sched


def train(data_dir: str | Path | Sequence[str | Path] | None = None, out_dir: str | Path = "models/build",
          folds: list[int] | None = None,
          seed: int = 0, quick: bool = False, licence_filter: str = "all", schedule: Schedule | None = None,
          name: str = "homesound", threads: int = 2, progress: bool = True,
          augment: AugmentParams | None = None, teacher_cache: str | Path | None = None,
          teacher_model: str | Path | None = None, device: str = "cpu") -> dict:
    """Train on ``folds`` (None = all) of the corpora; write fp32 + int8 ONNX and a JSON report to ``out_dir``.

    ``data_dir``: one corpus folder or a list of them (:func:`edge.train.data.read_corpora`: aligned folds,
    the licence filter applied to all); None = ``../shared/data/homesounds``.

    ``device``: a torch device for the training steps ("cpu", "cuda"); batches are
    built and the model is exported on the CPU either way. A GPU gives the same
    recipe up to floating-point rounding (not bit-identical to the CPU).
    Returns the report dict (paths, thresholds, inner-validation F1, MACs/s, timings).
    """
    t_start = time.time()
    torch.set_num_threads(threads)
    _seed_all(seed)
    sched = schedule or (QUICK if quick else Schedule())
    fp = FrontendParams()
    dirs = data_dirs(data_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    rows = D.select_folds(D.licence_filter(D.read_corpora(dirs), licence_filter), folds)
    if quick:
        rows = quick_rows(rows)
    present = {r.label for r in rows} | set(PATTERN_LABEL.values())
    labels = tuple(lab for lab in ALL_LABELS if lab in present)
    real = D.load_clips(rows, None, fp.sample_rate, fp)
    tr_idx, va_idx = D.inner_split(real, sched.inner_val_frac, seed)
    synthetic = (synthetic_alarms(sched.synth_per_pattern, fp.sample_rate, seed, sched.alarm_continuous_share)
                 .extend(synthetic_room_noise(sched.synth_room_noise, fp.sample_rate, seed)))
    tones = synthetic_steady_tones(sched.steady_tones, fp.sample_rate, seed)
    train_clips = real.subset(tr_idx).extend(synthetic).extend(tones)
    val_clips = real.subset(va_idx)

    fit_args = (len(tones), labels, sched, augment or AugmentParams(), seed, fp, name, progress, device,
                teacher_model, teacher_cache)
    model, history, train_s, teacher_note, sched = _fit(train_clips, *fit_args)

    # Inner validation (training folds only): clip pooling + per-label thresholds.
    if len(val_clips) and len(set(val_clips.labels)) > 1:
        pooling, thresholds, val_f1 = tune_decision(clip_scores(model, val_clips, fp), val_clips.labels, labels)
    else:
        pooling, thresholds, val_f1 = "max", {lab: 0.5 for lab in labels}, float("nan")
    refit = sched.refit and len(va_idx) > 0
    if refit:
        # The decision just tuned stays; the shipped model also learns from the clips that tuned it.
        _seed_all(seed)
        train_clips = real.extend(synthetic).extend(tones)
        model, history, refit_s, teacher_note, sched = _fit(train_clips, *fit_args)
        train_s += refit_s

    macs = macs_per_second(model, BLOCK_FRAMES * fp.hop_length / fp.sample_rate)
    contract = ModelContract(
        labels=labels, frontend=fp, block_frames=BLOCK_FRAMES, window_blocks=WINDOW_BLOCKS,
        cache_dim=model.cache_dim, embedding_dim=model.embedding_dim, thresholds=thresholds,
        model_version=f"{MODEL_VERSION}-{licence_filter}" + ("-quick" if quick else ""),
        license=licence_summary(rows, licence_filter), training_data=D.training_data_summary(rows),
        extra={"clip_pooling": pooling, "macs_per_second": round(macs["macs_per_second"]),
               "train_folds": sorted({r.fold for r in rows}), "seed": seed, "licence_filter": licence_filter},
    )
    fp32_path = out / f"{name}-fp32.onnx"
    int8_path = out / f"{name}-int8.onnx"
    export_fp32(model, contract, fp32_path)
    window_frames = contract.window_frames
    probe = padded_mel(train_clips.mels[0], fp, window_frames)
    export_err = check_fp32(model, fp32_path, probe)
    crng = np.random.default_rng([seed, 2])
    cal_idx = crng.choice(len(train_clips), size=min(sched.calib_clips, len(train_clips)), replace=False)
    calib = StreamCalibration(fp32_path, [padded_mel(train_clips.mels[i], fp, window_frames) for i in cal_idx],
                              BLOCK_FRAMES, WINDOW_BLOCKS, model.cache_dim)
    quantize_int8(fp32_path, int8_path, calib, contract)
    # Familiarity check: prototypes of each label's training windows, from the int8 model as shipped.
    # Inner-validation clips set the threshold (with refit the model has seen them: it is then optimistic).
    from edge.model.classifier import Classifier
    from edge.train import prototypes as P

    t_protos = time.time()
    real_train = [(m, lab) for m, lab, r in zip(train_clips.mels, train_clips.labels, train_clips.rows, strict=True)
                  if r is not None]
    protos = P.fit(Classifier(int8_path), real_train, list(zip(val_clips.mels, val_clips.labels, strict=True)),
                   seed=seed)
    if protos is not None:
        P.attach(int8_path, int8_path, protos, k_max=P.K_PROTOTYPES, quantile=P.QUANTILE,
                 n_train_clips=len(real_train), n_val_clips=len(val_clips))
    t_protos_s = time.time() - t_protos
    torch.save(model.state_dict(), out / f"{name}.pt")
    # The clips that tuned the clip decision; unless refit, the model never trained on them: a
    # held-out set for detector tuning (edge eval-stream --make).
    inner_val = D.write_manifest(out / f"{name}-inner-val.csv", [r for r in val_clips.rows if r is not None],
                                 None)

    report = {
        "name": name, "labels": list(labels), "folds": sorted({r.fold for r in rows}), "seed": seed,
        "quick": quick, "licence_filter": licence_filter, "refit": refit,
        "n_train_real": len(real) if refit else int(len(tr_idx)), "n_inner_val": int(len(va_idx)),
        "n_synthetic": len(synthetic) + len(tones),
        "schedule": asdict(sched), "device": device, "teacher": teacher_note, "loss_history": history,
        "inner_val_macro_f1": val_f1,
        "pooling": pooling, "thresholds": thresholds, "export_max_abs_err": export_err,
        "calibration_blocks": len(calib), **macs,
        "familiarity": None if protos is None else {"labels": len(protos.vectors),
                                                    "min_similarity": protos.min_similarity,
                                                    "seconds": round(t_protos_s, 1)},
        "params": int(sum(p.numel() for p in model.parameters())),
        "fp32_path": str(fp32_path), "int8_path": str(int8_path), "int8_bytes": int8_path.stat().st_size,
        "inner_val_manifest": str(inner_val),
        "train_seconds": round(train_s, 1), "total_seconds": round(time.time() - t_start, 1),
        "environment": environment(threads, device),
    }
    (out / f"{name}-train.json").write_text(json.dumps(report, indent=2, default=float))
    return report

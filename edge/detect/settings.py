"""Detector settings: the raw ``detector`` section of ``config.yaml`` and the resolved settings the chain runs on.

:class:`DetectorConfig` is what a person wrote: ``None`` means "the model's
value". :class:`DetectorSettings` is what the detector and its gates use:
every field concrete, made once by :func:`resolve` from a ``DetectorConfig``
and what the model file says (its tuned ``detector`` defaults, its clip
thresholds, its familiarity prototypes), then the fallbacks declared on the
fields of ``DetectorConfig``.

Threshold per label: ``thresholds[label]`` > ``threshold`` > the model's
operating point for ``sensitivity`` (contract ``detector.operating_points``:
``{sensitivity: {"thresholds": {label: t}, "min_durations": {label: s}}}``)
> the model's stream-tuned ``detector.thresholds[label]`` > the contract's
clip threshold ``thresholds[label]`` > 0.5. A model without operating points
moves its thresholds by :data:`SENSITIVITY_OFFSETS` instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from edge.core.schema import ConfigError, build, convert, fallbacks, option, shown, shown_key
from edge.detect.labels import ALARM_LABELS
from edge.model.contract import ContractError, ModelContract

#: Used where a model gives no threshold of its own.
DEFAULT_THRESHOLD = 0.5
SENSITIVITIES = ("low", "medium", "high")
#: For a model without operating points: threshold change per sensitivity (fewer / more events).
SENSITIVITY_OFFSETS = {"low": 0.1, "medium": 0.0, "high": -0.1}
#: Thresholds moved by an offset stay within these bounds.
OFFSET_BOUNDS = (0.05, 0.99)


@dataclass(frozen=True)
class DetectorConfig:
    """The ``detector`` section as written: ``None`` = the model's tuned value, else the field's fallback."""

    labels: list[str] | None = option(None, "enabled labels; null = every label of the model")
    threshold: float | None = option(
        None, "one on-threshold for every label", 0.0, 1.0,
        default_says="null = the model's per-label thresholds, else 0.5")
    thresholds: dict[str, float] = option(
        {}, "per-label on-thresholds, e.g. {smoke_alarm: 0.4}; override `threshold`", 0.0, 1.0)
    sensitivity: str = option(
        "medium", "how readily events fire: low = fewest false alarms, high = fewest misses; picks the model's "
        "operating point per label (explicit thresholds still override)", choices=SENSITIVITIES)
    hysteresis: float | None = option(
        None, "off-threshold = on-threshold - hysteresis, never below half the on-threshold (so an event can "
        "always end)", 0.0, 1.0, fallback=0.1)
    persistence_k: int | None = option(None, "an onset needs k of the last n hops above the on-threshold",
                                       1, 100, fallback=2)
    persistence_n: int | None = option(None, "n for the rule above (>= persistence_k)", 1, 100, fallback=3)
    min_duration_s: float | None = option(
        None, "events shorter than this (seconds) are dropped; onsets wait until it is reached", 0.0, 60.0,
        fallback=0.0)
    release_s: float | None = option(
        None, "an event ends after its score stays below the off-threshold this long (seconds)", 0.0, 60.0,
        fallback=0.5)
    offset_lag_s: float | None = option(
        None, "seconds subtracted from the end of the last active hop to place the offset (the model looks back "
        "one window)", 0.0, 60.0, fallback=0.0,
        default_says="null = the model's value, else the window less one block")
    onset_lead_s: float | None = option(
        None, "seconds the reported onset is placed before the first block that raised the score (a window must "
        "hold part of a sound before it scores, so onsets come out late by about this much; moves the "
        "timestamp, not when the event is sent)", 0.0, 5.0, fallback=0.0)
    onset_backtrack_s: float | None = option(
        None, "the reported onset moves back, at most this far (seconds; 0 = off), over the hops just before "
        "the firing one whose score was still >= backtrack_floor x the on-threshold: where the sound began, "
        "not where the detector became sure (timestamp only)", 0.0, 30.0, fallback=0.0)
    backtrack_floor: float | None = option(
        None, "fraction of the on-threshold a hop needs to count as part of the rising sound for "
        "onset_backtrack_s", 0.0, 1.0, fallback=0.5)
    releases: dict[str, float] = option(
        {}, "per-label release_s (seconds), e.g. {dog_bark: 3.0}: a barking dog with pauses stays one event; "
        "overrides release_s and alarm_release_s for that label, merged over the model's tuned values",
        0.0, 60.0)
    min_durations: dict[str, float] = option(
        {}, "per-label min_duration_s (seconds), e.g. {baby_cry: 1.0}: a long sound must last this long before "
        "its onset is sent, so a short noise that resembles it for a moment does not fire; merged over the "
        "model's operating point for the sensitivity", 0.0, 60.0)
    alarm_release_s: float = option(
        7.0, "smoke_alarm/co_alarm events end only after this long below the off-threshold (seconds; at least "
        "release_s), so one sounding alarm is one event across its pattern's pauses (T3: 1.5 s, T4 CO: ~5 s "
        "between bursts)", 0.0, 60.0)
    alarm_confirm: bool = option(
        False, "hold smoke_alarm/co_alarm onsets until the T3 (smoke) or T4 (CO) beep rhythm is confirmed by a "
        "DSP check of the 2.5-4 kHz band")
    alarm_fallback_s: float | None = option(
        10.0, "with alarm_confirm, fire on the classifier alone once it has held the event this long (seconds; "
        "null = never)", 0.0, 600.0)
    min_similarity: float | None = option(
        None, "familiarity check: drop an onset whose sound is less like its label's training sounds than this "
        "(cosine; 0 = off; smoke/CO, glass breaking and baby cry are never held back)", 0.0, 1.0,
        default_says="null = the model's calibrated value")
    home_background: str | None = option(
        None, "file written by `edge learn-background` (window embeddings of this home's ordinary sounds, "
        "never audio): an onset that sounds more like them than like its label's training sounds is held "
        "back (smoke/CO, glass breaking and baby cry never are); re-read on reload (SIGHUP)",
        default_says="null = none")
    taught_sounds: str | None = option(
        None, "file written by `edge enroll` (sounds taught on this device: window-embedding prototypes, never "
        "audio); each taught sound is detected like a model label; re-read on reload (SIGHUP)",
        default_says="null = taught-sounds.json in the state directory, when it exists")


#: detector settings a reload (SIGHUP) does not change: they build the alarm gate at start
RESTART_DETECTOR_KEYS = ("alarm_confirm", "alarm_fallback_s")
#: Used for any detector setting that neither the config nor the model sets (declared on the fields).
FALLBACKS: dict[str, float | int] = fallbacks(DetectorConfig)


@dataclass(frozen=True)
class DetectorSettings:
    """The settings the event chain runs on, every field concrete (see :func:`resolve`).

    Units as in :class:`DetectorConfig`: thresholds in [0, 1], times in seconds.
    """

    labels: tuple[str, ...]  # enabled labels, in model order
    sensitivity: str  # low | medium | high: the operating point the thresholds came from
    thresholds: dict[str, float]  # on-threshold of every model label
    hysteresis: float
    persistence_k: int
    persistence_n: int
    min_duration_s: float
    release_s: float
    offset_lag_s: float
    onset_lead_s: float
    onset_backtrack_s: float
    backtrack_floor: float
    releases: dict[str, float]  # per-label release overrides (the model's, then the config's)
    min_durations: dict[str, float]  # per-label min_duration_s overrides (the model's point, then the config's)
    alarm_release_s: float
    alarm_confirm: bool
    alarm_fallback_s: float | None
    min_similarity: float  # familiarity threshold (cosine); 0 = off
    home_background: str | None

    def release_for(self, label: str) -> float:
        """Seconds below the off-threshold that end an event of ``label``."""
        if label in self.releases:
            return float(self.releases[label])
        if label in ALARM_LABELS:
            return max(self.release_s, self.alarm_release_s)
        return self.release_s

    def min_duration_for(self, label: str) -> float:
        """Seconds an event of ``label`` must last before its onset is sent."""
        return float(self.min_durations.get(label, self.min_duration_s))

    def off_threshold(self, label: str) -> float:
        """``on - hysteresis``, floored at ``on / 2``: with ``on - hysteresis <= 0`` no score could end an event."""
        on = self.thresholds[label]
        return max(0.5 * on, on - self.hysteresis)


#: the detector settings a model file may carry (contract ``detector``): the ones :func:`resolve` reads from it,
#: and what its calibration measured (:mod:`edge.evaluate.calibrate`: shown by ``edge doctor``)
MODEL_TUNABLE = (*FALLBACKS, "thresholds", "releases", "min_durations", "operating_points")
MODEL_MEASURED = ("false_alarms_per_hour", "calibration")


def check_model_detector(contract: ModelContract) -> None:
    """The model's own tuned detector settings, checked with the ``detector`` schema of ``config.yaml``.

    Types and ranges as in :class:`DetectorConfig` (no nulls: a model's value is a value), labels the
    model has, ``persistence_k <= persistence_n``, operating points per sensitivity. Raises a one-line
    :class:`~edge.model.contract.ContractError` naming the model file and the key (not the config
    file: the config is not what is wrong). Checked once per contract.
    """
    if contract.__dict__.get("_detector_checked"):
        return
    where = f"{contract.source}: contract detector"
    d = contract.detector
    for k, v in d.items():
        if k not in MODEL_TUNABLE + MODEL_MEASURED:
            raise ContractError(f"{where}.{shown_key(k)}: not a setting a model can tune (known: "
                                f"{', '.join(MODEL_TUNABLE + MODEL_MEASURED)})")
        if v is None:
            raise ContractError(f"{where}.{k}: expected a value, got null")
    try:
        checked = build(DetectorConfig, {k: v for k, v in d.items() if k in MODEL_TUNABLE and k != "operating_points"},
                        where)
        raw_points = d.get("operating_points") or {}
        if not isinstance(raw_points, dict):
            raise ConfigError(f"{where}.operating_points: expected a mapping, got {shown(raw_points)}")
        points: dict[str, dict[str, float]] = {}
        for s, point in raw_points.items():
            at = f"{where}.operating_points.{shown_key(s)}"
            if not isinstance(point, dict):
                raise ConfigError(f"{at}: expected a mapping of thresholds and min_durations, got {shown(point)}")
            for part in point:
                if part not in ("thresholds", "min_durations"):
                    raise ConfigError(f"{at}.{shown_key(part)}: unknown key (known keys: thresholds, min_durations)")
            points[f"{s}.thresholds"] = convert(point.get("thresholds") or {}, dict[str, float],
                                                {"lo": 0.0, "hi": 1.0}, f"{at}.thresholds")
            points[f"{s}.min_durations"] = convert(point.get("min_durations") or {}, dict[str, float],
                                                   {"lo": 0.0, "hi": 60.0}, f"{at}.min_durations")
        rates = convert(d.get("false_alarms_per_hour") or {}, dict[str, dict[str, float]], {"lo": 0.0, "hi": 1e6},
                        f"{where}.false_alarms_per_hour")
        if not isinstance(d.get("calibration") or {}, dict):
            raise ConfigError(f"{where}.calibration: expected a mapping, got {shown(d.get('calibration'))}")
    except ConfigError as e:
        raise ContractError(str(e)) from None
    for key, names in (("thresholds", checked.thresholds), ("releases", checked.releases),
                       ("min_durations", checked.min_durations),
                       *((f"operating_points.{s}", p) for s, p in points.items()),
                       *((f"false_alarms_per_hour.{s}", p) for s, p in rates.items())):
        for lab in names:
            if lab not in contract.labels:
                raise ContractError(f"{where}.{key}.{shown_key(lab)}: not a label of the model")
    for key, names in (("operating_points", raw_points), ("false_alarms_per_hour", rates)):
        for s in names:
            if s not in SENSITIVITIES:
                raise ContractError(f"{where}.{key}.{shown_key(s)}: expected one of {', '.join(SENSITIVITIES)}")
    k, n = checked.persistence_k, checked.persistence_n
    if k is not None and n is not None and k > n:
        raise ContractError(f"{where}.persistence_k: expected at most persistence_n ({n}), got {shown(k)}")
    contract.__dict__["_detector_checked"] = True  # frozen dataclass: a cache, not a field


def model_defaults(contract: ModelContract) -> dict[str, Any]:
    """The model's tuned detector settings; the offset lag defaults to the window's look-back."""
    c = contract
    return {"offset_lag_s": c.look_back_seconds, **c.detector}


def resolve(cfg: DetectorConfig, labels: Sequence[str], clip_thresholds: Mapping[str, float] | None = None,
            defaults: Mapping[str, Any] | None = None, min_similarity: float | None = None) -> DetectorSettings:
    """Every ``None`` of ``cfg`` filled from the model's tuned ``defaults``, then :data:`FALLBACKS`.

    Args:
        cfg: the raw settings.
        labels: the model's labels, in score order.
        clip_thresholds: the contract's per-label clip thresholds.
        defaults: the model's tuned detector settings (contract ``detector``; see :func:`model_defaults`).
        min_similarity: the model's calibrated familiarity threshold (None: the model has no prototypes).

    Raises ``ValueError`` for a label the model does not have, or persistence_k > persistence_n.
    """
    labels = tuple(labels)
    d = dict(defaults or {})
    unknown = [x for x in list(cfg.labels or []) + list(cfg.thresholds) + list(cfg.releases) + list(cfg.min_durations)
               if x not in labels]
    if unknown:
        raise ValueError(f"unknown label {unknown[0]!r} (model labels: {', '.join(labels)})")
    filled: dict[str, Any] = {}
    for name, fallback in FALLBACKS.items():
        value = getattr(cfg, name)
        if value is None:
            value = d.get(name, fallback)
        filled[name] = type(fallback)(value)
    if filled["persistence_k"] > filled["persistence_n"]:
        raise ValueError(f"detector.persistence_k: expected at most persistence_n ({filled['persistence_n']}), "
                         f"got {filled['persistence_k']}")
    tuned = {str(k): float(v) for k, v in dict(d.get("thresholds") or {}).items()}
    model_thr = {**{str(k): float(v) for k, v in dict(clip_thresholds or {}).items()}, **tuned}
    points = dict(d.get("operating_points") or {})
    point = dict(points.get(cfg.sensitivity) or {})
    model_min_dur = {str(k): float(v) for k, v in dict(d.get("min_durations") or {}).items()}
    if point:
        model_thr.update({str(k): float(v) for k, v in dict(point.get("thresholds") or {}).items()})
        model_min_dur.update({str(k): float(v) for k, v in dict(point.get("min_durations") or {}).items()})
    elif SENSITIVITY_OFFSETS[cfg.sensitivity]:
        lo, hi = OFFSET_BOUNDS
        off = SENSITIVITY_OFFSETS[cfg.sensitivity]
        model_thr = {k: min(hi, max(lo, v + off)) for k, v in model_thr.items()}
        model_thr.update({lab: min(hi, max(lo, DEFAULT_THRESHOLD + off)) for lab in labels if lab not in model_thr})
    thresholds = {}
    for lab in labels:
        if lab in cfg.thresholds:
            thresholds[lab] = float(cfg.thresholds[lab])
        elif cfg.threshold is not None:
            thresholds[lab] = float(cfg.threshold)
        else:
            thresholds[lab] = float(model_thr.get(lab, DEFAULT_THRESHOLD))
    releases = {**{str(k): float(v) for k, v in dict(d.get("releases") or {}).items()}, **cfg.releases}
    min_durations = {**model_min_dur, **cfg.min_durations}
    enabled = labels if cfg.labels is None else tuple(x for x in labels if x in cfg.labels)
    sim = cfg.min_similarity if cfg.min_similarity is not None else min_similarity
    return DetectorSettings(
        labels=enabled, sensitivity=cfg.sensitivity, thresholds=thresholds, releases=releases,
        min_durations=min_durations,
        alarm_release_s=cfg.alarm_release_s, alarm_confirm=cfg.alarm_confirm, alarm_fallback_s=cfg.alarm_fallback_s,
        min_similarity=float(sim or 0.0), home_background=cfg.home_background, **filled)


def for_model(cfg: DetectorConfig, contract: ModelContract) -> DetectorSettings:
    """:func:`resolve` against what ``contract`` says: the listener, the tuner and tests build settings so.

    The model's own values are checked first (:func:`check_model_detector`: a ContractError naming the model).
    """
    check_model_detector(contract)
    protos = contract.familiarity()
    return resolve(cfg, contract.labels, contract.thresholds, model_defaults(contract),
                   None if protos is None else protos.min_similarity)


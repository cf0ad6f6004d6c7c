"""Configuration: loaded once, validated up front into typed, frozen objects.

Every section is a dataclass; each field's ``metadata`` gives its unit and
range. :func:`load_config` walks the YAML against these classes and turns the
first problem into a one-line :class:`ConfigError` such as::

    config.yaml: detector.thresholds.dog_bark: expected a number in [0, 1], got 'high'

Unknown keys are errors, so a typo never passes silently. ``config.yaml`` at the
top of the repository documents every option with its unit and default.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A configuration problem; ``str(err)`` is the one-line message for the user."""


def _f(default: Any, lo: float | None = None, hi: float | None = None, choices: tuple[str, ...] | None = None,
       pattern: str | None = None, pattern_says: str | None = None) -> Any:
    meta = {"lo": lo, "hi": hi, "choices": choices, "pattern": pattern, "pattern_says": pattern_says}
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    if dataclasses.is_dataclass(default):
        return field(default_factory=type(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class AudioConfig:
    source: str = _f("mic")                      # "mic" or a path to an audio file
    device: int | str | None = _f(None)           # input device index or (part of) its name; null = default
    channel: int | None = _f(None, 0, 255)        # null = downmix all channels; else 0-based channel
    sample_rate: int | None = _f(None, 8000, 384000)  # Hz to open the mic at; null = model rate, else native
    block_s: float = _f(0.05, 0.001, 1.0)         # seconds of audio per capture callback
    buffer_s: float = _f(10.0, 1.0, 600.0)        # ring buffer capacity, seconds
    realtime: bool = _f(False)                    # file sources: pace at real time instead of as fast as possible


@dataclass(frozen=True)
class ModelConfig:
    path: str | None = _f(None)                   # ONNX model file; null = the bundled model
    threads: int = _f(1, 1, 64)                   # onnxruntime intra-op threads
    hop_s: float | None = _f(None, 0.001, 10.0)   # seconds between score updates; null = one per model block


@dataclass(frozen=True)
class DetectorConfig:
    """Detector settings. ``None`` means: the model's tuned default (contract ``detector``), else a fallback."""

    labels: list[str] | None = _f(None)           # enabled labels; null = all labels of the model
    threshold: float | None = _f(None, 0.0, 1.0)  # one on-threshold for every label; null = model defaults
    thresholds: dict[str, float] = _f({}, 0.0, 1.0)  # per-label on-threshold overrides
    hysteresis: float | None = _f(None, 0.0, 1.0)  # off-threshold = on-threshold - hysteresis (>= on / 2)
    persistence_k: int | None = _f(None, 1, 100)  # an onset needs k of the last n scores above threshold
    persistence_n: int | None = _f(None, 1, 100)
    min_duration_s: float | None = _f(None, 0.0, 60.0)  # shorter events are dropped (s)
    release_s: float | None = _f(None, 0.0, 60.0)  # an event ends after this long below the off-threshold (s)
    offset_lag_s: float | None = _f(None, 0.0, 60.0)  # reported offset = end of last active hop - this (s)
    onset_lead_s: float | None = _f(None, 0.0, 5.0)  # reported onset = start of the firing block - this (s)
    onset_backtrack_s: float | None = _f(None, 0.0, 30.0)  # onset moved back over the rise of the score (s)
    backtrack_floor: float | None = _f(None, 0.0, 1.0)  # ... through hops scoring >= this x on-threshold
    releases: dict[str, float] = _f({}, 0.0, 60.0)  # per-label release_s overrides (s)
    alarm_release_s: float = _f(7.0, 0.0, 60.0)  # smoke/CO events stay open across their pattern's pauses (s)
    alarm_confirm: bool = _f(False)               # hold smoke/CO onsets until the T3/T4 beep rhythm is heard
    alarm_fallback_s: float | None = _f(10.0, 0.0, 600.0)  # ...or until the classifier held them this long (s)
    min_similarity: float | None = _f(None, 0.0, 1.0)  # familiarity check; null = the model's value, 0 = off
    home_background: str | None = _f(None)        # file from `edge learn-background`; null = none


@dataclass(frozen=True)
class OutputConfig:
    stdout: bool | None = _f(None)                # JSON lines on stdout; null = on when MQTT is off


@dataclass(frozen=True)
class TlsConfig:
    enabled: bool = _f(False)
    ca_file: str | None = _f(None)                # CA bundle to verify the broker; null = system CAs
    cert_file: str | None = _f(None)              # client certificate (PEM), optional
    key_file: str | None = _f(None)               # client key (PEM), optional
    insecure: bool = _f(False)                    # skip certificate verification (not recommended)


#: detector settings a reload (SIGHUP) does not change: they build the alarm gate at start
RESTART_DETECTOR_KEYS = ("alarm_confirm", "alarm_fallback_s")

# A topic prefix we publish under: no wildcards (paho refuses to publish to them, on the
# network thread, long after start), no NUL, no empty level ("a//b", leading or trailing "/").
TOPIC = r"[^+#/\x00]+(/[^+#/\x00]+)*"
TOPIC_SAYS = "an MQTT topic without wildcards (+ #) or empty levels, e.g. 'home/sound'"


@dataclass(frozen=True)
class DiscoveryConfig:
    enabled: bool = _f(True)                      # publish Home Assistant MQTT discovery
    prefix: str = _f("homeassistant", pattern=TOPIC, pattern_says=TOPIC_SAYS)  # discovery prefix


@dataclass(frozen=True)
class MqttConfig:
    enabled: bool = _f(False)
    host: str = _f("localhost")
    port: int = _f(1883, 1, 65535)
    client_id: str | None = _f(None)              # null = "edge-<device_id>"
    keepalive: int = _f(60, 5, 3600)              # seconds
    qos: int = _f(1, 0, 2)
    base_topic: str = _f("homesound", pattern=TOPIC, pattern_says=TOPIC_SAYS)
    device_id: str | None = _f(None, pattern=r"[a-z0-9_-]+")  # null = derived from the hostname
    username: str | None = _f(None)
    password: str | None = _f(None)               # prefer password_file or password_env
    password_file: str | None = _f(None)          # file whose first line is the password
    password_env: str | None = _f(None)           # environment variable holding the password
    tls: TlsConfig = _f(TlsConfig())
    discovery: DiscoveryConfig = _f(DiscoveryConfig())
    level_interval_s: float = _f(1.0, 0.0, 3600.0)   # level topic period, seconds; 0 = off
    status_interval_s: float = _f(30.0, 1.0, 3600.0)  # status topic period, seconds
    reconnect_min_s: float = _f(1.0, 0.01, 3600.0)    # first reconnect delay, seconds (doubles, with jitter)
    reconnect_max_s: float = _f(60.0, 0.01, 3600.0)   # longest reconnect delay, seconds


@dataclass(frozen=True)
class OutboxConfig:
    path: str | None = _f(None)                   # SQLite file; null = $STATE_DIRECTORY or ~/.local/state/edge
    max_events: int = _f(10000, 1, 10_000_000)    # oldest events are dropped (and counted) beyond this


@dataclass(frozen=True)
class HealthConfig:
    stall_after_s: float = _f(2.0, 0.1, 600.0)    # no audio callbacks for this long = microphone lost
    silent_after_s: float = _f(10.0, 0.5, 3600.0)  # only zeros/NaNs for this long = microphone silent
    reopen_max_backoff_s: float = _f(30.0, 0.1, 3600.0)  # longest wait between reopen attempts


@dataclass(frozen=True)
class PrivacyConfig:
    capture_clips: bool = _f(False)               # save a short clip around each event (off by default)
    clips_dir: str | None = _f(None)              # where clips go; null = <state dir>/clips
    max_clips: int = _f(50, 1, 100000)            # oldest clips are deleted beyond this count
    clip_s: float = _f(5.0, 0.5, 60.0)            # seconds per clip


@dataclass(frozen=True)
class LoggingConfig:
    level: str = _f("info", choices=("debug", "info", "warning", "error"))
    verbose: bool = _f(False)                     # print health figures on the console


@dataclass(frozen=True)
class Config:
    audio: AudioConfig = _f(AudioConfig())
    model: ModelConfig = _f(ModelConfig())
    detector: DetectorConfig = _f(DetectorConfig())
    output: OutputConfig = _f(OutputConfig())
    mqtt: MqttConfig = _f(MqttConfig())
    outbox: OutboxConfig = _f(OutboxConfig())
    health: HealthConfig = _f(HealthConfig())
    privacy: PrivacyConfig = _f(PrivacyConfig())
    logging: LoggingConfig = _f(LoggingConfig())
    source_file: str = field(default="<defaults>", compare=False)


def _fmt_num(x: float | None) -> str:
    if x is None:
        return ""
    return str(int(x)) if float(x).is_integer() else str(x)


def _describe(tp: Any, meta: dict[str, Any]) -> str:
    lo, hi, choices = meta.get("lo"), meta.get("hi"), meta.get("choices")
    if choices:
        return "one of " + ", ".join(choices)
    if tp is bool:
        return "true or false"
    rng = f" {_fmt_num(lo)}-{_fmt_num(hi)}" if tp is int and lo is not None else ""
    if tp is int:
        return f"an integer{rng}"
    if tp is float:
        return f"a number in [{_fmt_num(lo)}, {_fmt_num(hi)}]" if lo is not None else "a number"
    if tp is str:
        return "a string"
    return str(tp)


def _check_scalar(value: Any, tp: Any, meta: dict[str, Any], where: str) -> Any:
    orig = value

    def bad() -> ConfigError:
        return ConfigError(f"{where}: expected {_describe(tp, meta)}, got {orig!r}")

    if tp is bool:
        if not isinstance(value, bool):
            raise bad()
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad()
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad()
        value = float(value)
        if value != value:
            raise bad()
    elif tp is str:
        if not isinstance(value, str) or not value:
            raise bad()
        choices = meta.get("choices")
        if choices and value not in choices:
            raise bad()
        pattern = meta.get("pattern")
        if pattern:
            import re

            if not re.fullmatch(pattern, value):
                says = meta.get("pattern_says") or f"a string matching {pattern}"
                raise ConfigError(f"{where}: expected {says}, got {value!r}")
        return value
    lo, hi = meta.get("lo"), meta.get("hi")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise bad()
    return value


def _convert(value: Any, tp: Any, meta: dict[str, Any], where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1:
            return _convert(value, non_none[0], meta, where)
        # int | str (a device index or name)
        if int in non_none and isinstance(value, int) and not isinstance(value, bool):
            return value
        if str in non_none and isinstance(value, str) and value:
            return value
        raise ConfigError(f"{where}: expected an integer or a string, got {value!r}")
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, where)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        _, vt = typing.get_args(tp)
        return {str(k): _convert(v, vt, meta, f"{where}.{k}") for k, v in value.items()}
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (it,) = typing.get_args(tp)
        return [_convert(v, it, meta, f"{where}[{i}]") for i, v in enumerate(value)]
    if value is None:
        raise ConfigError(f"{where}: expected {_describe(tp, meta)}, got null")
    return _check_scalar(value, tp, meta, where)


def _build(cls: type, data: Any, where: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "source_file"}
    prefix = where + "." if ":" in where and not where.endswith(": ") else where
    for key in data:
        if key not in fields:
            known = ", ".join(fields)
            raise ConfigError(f"{prefix}{key}: unknown key (known keys: {known})")
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _convert(data[name], hints[name], dict(f.metadata), f"{prefix}{name}")
    return cls(**kwargs)


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    node = tree
    parts = dotted.split(".")
    for p in parts[:-1]:
        nxt = node.get(p)
        if not isinstance(nxt, dict):
            nxt = {}
            node[p] = nxt
        node = nxt
    node[parts[-1]] = value


def parse_config(data: Any, source: str = "<config>", overrides: dict[str, Any] | None = None) -> Config:
    """Validate an already-parsed YAML tree (plus ``section.key`` overrides)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
    tree: dict[str, Any] = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    for dotted, value in (overrides or {}).items():
        _set_dotted(tree, dotted, value)
    cfg = _build_top(tree, source)
    _cross_checks(cfg, source)
    return dataclasses.replace(cfg, source_file=source)


def _build_top(tree: dict[str, Any], source: str) -> Config:
    hints = typing.get_type_hints(Config)
    fields = {f.name: f for f in dataclasses.fields(Config) if f.name != "source_file"}
    for key in tree:
        if key not in fields:
            raise ConfigError(f"{source}: {key}: unknown key (known sections: {', '.join(fields)})")
    kwargs = {}
    for name in fields:
        if name in tree:
            kwargs[name] = _build(hints[name], tree[name], f"{source}: {name}")
    return Config(**kwargs)


def _cross_checks(cfg: Config, source: str) -> None:
    d = cfg.detector
    if d.persistence_k is not None and d.persistence_n is not None and d.persistence_k > d.persistence_n:
        raise ConfigError(
            f"{source}: detector.persistence_k: expected at most persistence_n ({d.persistence_n}), "
            f"got {d.persistence_k}"
        )
    m = cfg.mqtt
    given = [k for k in ("password", "password_file", "password_env") if getattr(m, k) is not None]
    if len(given) > 1:
        raise ConfigError(f"{source}: mqtt.{given[1]}: give only one of password, password_file, password_env")


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping.

    Plain YAML keeps the last value silently, so a second ``port:`` pasted under
    ``mqtt:`` would override the first without a word.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                dup = key in seen
            except TypeError:
                continue  # unhashable key: the base class reports it
            if dup:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (a key may appear only once per section)",
                    key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Load and validate ``path`` (``None`` = built-in defaults), applying overrides.

    Raises :class:`ConfigError` with a one-line message on any problem.
    """
    if path is None:
        return parse_config({}, "<defaults>", overrides)
    p = Path(path)
    name = str(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{name}: file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{name}: cannot read ({type(e).__name__})") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        loc = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or "invalid YAML"
        raise ConfigError(f"{name}: invalid YAML{loc}: {problem}") from None
    return parse_config(data, name, overrides)

"""Configuration: loaded once, validated up front into typed, frozen objects.

``config.yaml`` has one section per stage; each stage declares its section as
a settings dataclass (:mod:`edge.capture.settings`, :mod:`edge.model.settings`,
:mod:`edge.detect.settings`, :mod:`edge.publish.settings`) with the schema of
:mod:`edge.core.schema`, and :class:`Config` here puts them together.
:func:`load_config` walks the YAML against these classes and turns the first
problem into a one-line :class:`ConfigError` such as::

    config.yaml: detector.thresholds.dog_bark: expected a number in [0, 1], got 'high'

Unknown keys are errors, so a typo never passes silently. ``config.yaml`` at
the top of the repository and ``docs/configuration.md`` are generated from the
field documentation: ``python -m edge.service.config --yaml > config.yaml``,
``python -m edge.service.config --markdown > docs/configuration.md``.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from edge.capture.settings import AudioConfig, HealthConfig
from edge.core.files import FileProblem, read_text, shown_path
from edge.core.schema import ConfigError, build, option, option_docs, shown, shown_key, yaml_value
from edge.detect.settings import RESTART_DETECTOR_KEYS, DetectorConfig
from edge.model.settings import ModelConfig
from edge.publish.alerts.settings import AlertsConfig
from edge.publish.settings import (
    DiscoveryConfig,
    MqttConfig,
    OutboxConfig,
    OutputConfig,
    PrivacyConfig,
    TlsConfig,
)

__all__ = ["AlertsConfig", "AudioConfig", "Config", "ConfigError", "DetectorConfig", "DiscoveryConfig", "HealthConfig",
           "LoggingConfig", "ModelConfig", "MqttConfig", "OutboxConfig", "OutputConfig", "PrivacyConfig",
           "PROFILES", "RESTART_DETECTOR_KEYS", "TlsConfig", "load_config", "parse_config"]


@dataclass(frozen=True)
class LoggingConfig:
    level: str = option("info", "log level", choices=("debug", "info", "warning", "error"))
    verbose: bool = option(False, "print health figures on stderr")


#: The sections of config.yaml, in file order, with the comment that heads each.
SECTION_DOCS = {
    "audio": "Where audio comes from (capture).",
    "model": "The ONNX model and how often it scores.",
    "detector": "Scores to events: thresholds, persistence, release, gates. null = the model's tuned value.",
    "output": "JSON lines on stdout.",
    "mqtt": "The MQTT broker and Home Assistant discovery.",
    "outbox": "Events queued on disk until the broker has them.",
    "health": "Microphone supervision.",
    "privacy": "Audio never leaves memory unless this says so.",
    "alerts": "Alerts on the device itself: earcon, vibration, LED, a command (docs/hearable.md).",
    "logging": "Logging on stderr (the journal under systemd).",
}


@dataclass(frozen=True)
class Config:
    audio: AudioConfig = option(AudioConfig(), SECTION_DOCS["audio"])
    model: ModelConfig = option(ModelConfig(), SECTION_DOCS["model"])
    detector: DetectorConfig = option(DetectorConfig(), SECTION_DOCS["detector"])
    output: OutputConfig = option(OutputConfig(), SECTION_DOCS["output"])
    mqtt: MqttConfig = option(MqttConfig(), SECTION_DOCS["mqtt"])
    outbox: OutboxConfig = option(OutboxConfig(), SECTION_DOCS["outbox"])
    health: HealthConfig = option(HealthConfig(), SECTION_DOCS["health"])
    privacy: PrivacyConfig = option(PrivacyConfig(), SECTION_DOCS["privacy"])
    alerts: AlertsConfig = option(AlertsConfig(), SECTION_DOCS["alerts"])
    logging: LoggingConfig = option(LoggingConfig(), SECTION_DOCS["logging"])
    source_file: str = field(default="<defaults>", compare=False)


#: a configuration is a few KiB; this bound keeps a wrong file (a recording, a log) from being parsed for minutes
MAX_CONFIG_BYTES = 256 * 1024
#: deepest nesting of mappings/lists accepted in the file (the schema needs 3)
MAX_NESTING = 32


#: The labels ``profile: hearable`` listens for: safety sounds, a knock, a baby (never speech: the wearer's own
#: voice must not trigger). Sounds taught on the device (issue 24) are added here by the enrolment
#: (``config.HEARABLE_LABELS += ("kettle",)``: read each time a file is loaded), or listed by the user in
#: ``detector.labels`` (the file's list replaces the profile's).
HEARABLE_LABELS: tuple[str, ...] = ("smoke_alarm", "co_alarm", "glass_breaking", "baby_cry", "door_knock")

#: ``profile:`` presets: dotted keys (a value may be a function, called at load time) applied *under* the file:
#: the file's own values win, and command-line flags win over both. ``default`` (or no ``profile:``) is the
#: plain schema defaults. Documented in docs/hearable.md; measured by benchmarks/hearable_profile.py. Not
#: ``model.hop_s``: the model runs on every block whatever the hop, so a longer hop saves only the detector's
#: share, and at 0.48 s real glass, smoke and knock clips were missed (persistence is counted in hops).
PROFILES: dict[str, dict[str, Any]] = {
    "default": {},
    "hearable": {
        "detector.labels": lambda: list(HEARABLE_LABELS),  # read at load time: the enrolment may add to it
        "audio.block_s": 0.5,           # 2 capture callbacks a second instead of 4 (one per model block): batches
        "mqtt.enabled": False,          # no network needed; with it on, the outbox queues while it is away
        "mqtt.level_interval_s": 0.0,   # no level messages
        "alerts.earcon.enabled": True,
    },
}

log = logging.getLogger("edge.config")


def _get_dotted(tree: Any, dotted: str) -> tuple[bool, Any]:
    """``(present, value)`` of a dotted key in a parsed tree."""
    node = tree
    for p in dotted.split("."):
        if not isinstance(node, dict) or p not in node:
            return False, None
        node = node[p]
    return True, node


def profile_value(preset: Any) -> Any:
    """A profile entry's value as YAML would give it (a function is called, a tuple becomes a list)."""
    value = preset() if callable(preset) else preset
    return list(value) if isinstance(value, tuple) else copy.deepcopy(value)


def _apply_profile(tree: dict[str, Any], name: str, source: str) -> None:
    """Set the keys of profile ``name`` that the file does not set itself."""
    shadowed = []
    for dotted, preset in PROFILES[name].items():
        value = profile_value(preset)
        present, mine = _get_dotted(tree, dotted)
        if not present:
            _set_dotted(tree, dotted, value, source)
            continue
        default: Any = Config()
        for p in dotted.split("."):
            default = getattr(default, p)
        if mine == default and mine != value:
            shadowed.append(dotted)
    if shadowed:
        # A file copied from the full config.yaml sets every key to its default, and so undoes the profile.
        log.warning("%s: profile %s: %s set in the file to the built-in default, which overrides the profile's "
                    "value (remove the key to use the profile's)", source, name, ", ".join(shadowed))


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any, source: str) -> None:
    """Set ``section.key`` (a command-line flag) in the parsed tree; a section that is not a mapping is an error
    (a flag must not make ``audio: 5`` in the file pass unseen)."""
    node = tree
    parts = dotted.split(".")
    for i, p in enumerate(parts[:-1]):
        nxt = node.get(p)
        if nxt is None:
            nxt = {}
            node[p] = nxt
        elif not isinstance(nxt, dict):
            raise ConfigError(f"{source}: {'.'.join(parts[: i + 1])}: expected a mapping, got {shown(nxt)}")
        else:
            nxt = dict(nxt)  # the file's own mapping stays as it was read
            node[p] = nxt
        node = nxt
    node[parts[-1]] = value


def parse_config(data: Any, source: str = "<config>", overrides: dict[str, Any] | None = None) -> Config:
    """Validate an already-parsed YAML tree (plus ``section.key`` overrides)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
    tree: dict[str, Any] = copy.deepcopy(data)
    profile = tree.pop("profile", None)
    if profile is not None:
        if not isinstance(profile, str) or profile not in PROFILES:
            raise ConfigError(f"{source}: profile: expected one of {', '.join(PROFILES)}, got {shown(profile)}")
        _apply_profile(tree, profile, source)
    if overrides:
        _build_top(tree, source)  # the file as written must be valid too: a flag never hides a wrong value
    for dotted, value in (overrides or {}).items():
        _set_dotted(tree, dotted, value, source)
    cfg = _build_top(tree, source)
    _cross_checks(cfg, source)
    return dataclasses.replace(cfg, source_file=source)


def _build_top(tree: dict[str, Any], source: str) -> Config:
    hints = typing.get_type_hints(Config)
    fields = {f.name: f for f in dataclasses.fields(Config) if f.name != "source_file"}
    for key in tree:
        if key not in fields:
            raise ConfigError(f"{source}: {shown_key(key)}: unknown key (known sections: {', '.join(fields)})")
    kwargs = {}
    for name in fields:
        if name in tree:
            kwargs[name] = build(hints[name], tree[name], f"{source}: {name}")
    return Config(**kwargs)


def _cross_checks(cfg: Config, source: str) -> None:
    d = cfg.detector
    if d.labels is not None and not d.labels:
        # Refused, not obeyed: an empty list would silence every label, smoke and CO alarms included.
        raise ConfigError(f"{source}: detector.labels: an empty list would disable every label, smoke and CO "
                          "alarms included (null = every label of the model)")
    if d.persistence_k is not None and d.persistence_n is not None and d.persistence_k > d.persistence_n:
        raise ConfigError(
            f"{source}: detector.persistence_k: expected at most persistence_n ({d.persistence_n}), "
            f"got {d.persistence_k}"
        )
    if not cfg.alerts.command.run_on:
        raise ConfigError(f"{source}: alerts.command.run_on: an empty list would never run the command "
                          "(onset, offset or both; enabled: false turns it off)")
    m = cfg.mqtt
    given = [k for k in ("password", "password_file", "password_env") if getattr(m, k) is not None]
    if len(given) > 1:
        raise ConfigError(f"{source}: mqtt.{given[1]}: give only one of password, password_file, password_env")


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping, and nesting deeper than :data:`MAX_NESTING`.

    Plain YAML keeps the last value silently, so a second ``port:`` pasted under
    ``mqtt:`` would override the first without a word. The composer recurses per
    level: a few thousand ``[`` would end in a RecursionError, not a message (and
    the scanner would first spend minutes on them). Values YAML cannot build (a
    timestamp like 2024-13-45, an integer of 5000 digits) are errors with a line
    and column like every other YAML error.
    """

    _depth = 0

    def fetch_flow_collection_start(self, TokenClass: Any) -> None:  # noqa: N803 - PyYAML's name
        # The scanner looks ahead over every open '[' / '{' for a possible key: quadratic in the depth, so
        # 100 000 of them would take hours before the composer ever saw how deep they go.
        if self.flow_level >= MAX_NESTING:
            raise yaml.scanner.ScannerError(None, None, f"nested deeper than {MAX_NESTING} levels", self.get_mark())
        super().fetch_flow_collection_start(TokenClass)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError) as e:  # a timestamp like 2024-13-45, an integer of 5000 digits
            raise yaml.constructor.ConstructorError(None, None, f"{type(e).__name__}: {str(e)[:120]}",
                                                    node.start_mark) from None

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_NESTING:
                raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_NESTING} levels",
                                                  self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

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
                    None, None, f"duplicate key {shown(key)} (a key may appear only once per section)",
                    key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Load and validate ``path`` (``None`` = built-in defaults), applying overrides.

    Raises :class:`ConfigError` with a one-line message on any problem.
    """
    if path is None:
        return parse_config({}, "<defaults>", overrides)
    name = shown_path(path)
    try:
        text = read_text(path, MAX_CONFIG_BYTES)  # a regular file, bounded; never waits on a pipe
    except FileProblem as e:
        raise ConfigError(f"{name}: {'file not found' if e.missing else e.problem}") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        loc = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or getattr(e, "reason", None) or "invalid YAML"
        raise ConfigError(f"{name}: invalid YAML{loc}: {problem}") from None
    except (ValueError, TypeError, OverflowError, RecursionError) as e:
        # A value YAML itself cannot build: a timestamp like 2024-13-45, an integer of 5000 digits.
        raise ConfigError(f"{name}: invalid YAML: {type(e).__name__}: {str(e)[:200]}") from None
    return parse_config(data, name, overrides)


# -- documentation generated from the schema ------------------------------------------------------------------
YAML_HEADER = """\
# edge listener configuration. Every option is shown with its default.
# Unknown keys are errors. Command-line flags override this file
# (`edge run --source FILE --realtime --model FILE --verbose`).
# Generated from the settings schema: python -m edge.service.config --yaml > config.yaml
# A short file may start from a preset instead: `profile: hearable` (docs/hearable.md);
# every key a file sets overrides the preset, so do not add it to this full file.
"""


def config_yaml() -> str:
    """``config.yaml`` with every option at its default and its documentation as a comment."""
    out = [YAML_HEADER]
    docs = option_docs(Config)
    for section in SECTION_DOCS:
        out.append(f"\n{section}:  # {SECTION_DOCS[section]}\n")
        seen: list[str] = [section]
        for d in docs:
            parts = d.key.split(".")
            if parts[0] != section:
                continue
            for depth in range(1, len(parts) - 1):  # a nested section (mqtt.tls) opens once
                if parts[depth] not in seen:
                    seen.append(parts[depth])
                    out.append("  " * depth + f"{parts[depth]}:\n")
            indent = "  " * (len(parts) - 1)
            entry = f"{indent}{parts[-1]}: {d.value}"
            accepts = "" if d.accepts in ("a string", "true or false") else f" ({d.accepts})"
            out.append(f"{entry:<25} # {d.doc}{accepts}. Default: {d.default}\n")
    return "".join(out)


def config_markdown() -> str:
    """The option table of ``docs/configuration.md``."""
    rows = ["# Configuration", "",
            "Every option of `config.yaml`, generated from the settings schema "
            "(`python -m edge.service.config --markdown > docs/configuration.md`). The file is validated once "
            "at start-up; unknown keys are errors; command-line flags override it. A detector setting left "
            "`null` takes the model's tuned value (contract key `detector`), else the value after \"else\".", ""]
    for section in SECTION_DOCS:
        rows += [f"## `{section}`", "", SECTION_DOCS[section], "", "| key | default | accepts | meaning |",
                 "|---|---|---|---|"]
        for d in option_docs(Config):
            if d.key.split(".")[0] == section:
                cell = d.doc.replace("|", "\\|")
                rows.append(f"| `{d.key}` | `{d.default}` | {d.accepts.replace('|', '/')} | {cell} |")
        rows.append("")
    rows += ["## `profile`", "", "A preset applied under the file: the file's own keys win, command-line flags win "
             "over both. No `profile:` (or `default`) = the defaults above. Details: [hearable.md](hearable.md).", "",
             "| profile | sets |", "|---|---|"]
    for name, keys in PROFILES.items():
        sets = ", ".join(f"`{k}: {yaml_value(profile_value(v))}`" for k, v in keys.items())
        rows.append(f"| `{name}` | {sets or 'nothing'} |")
    rows.append("")
    return "\n".join(rows)


if __name__ == "__main__":
    what = sys.argv[1:] or ["--yaml"]
    if what not in (["--yaml"], ["--markdown"]):
        raise SystemExit("usage: python -m edge.service.config --yaml | --markdown")
    sys.stdout.write(config_yaml() if what == ["--yaml"] else config_markdown())

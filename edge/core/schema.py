"""Settings schema: frozen dataclasses whose fields say their default, range and meaning, and their validation.

Each stage declares its own section of ``config.yaml`` as a dataclass built
with :func:`option` (``edge.capture.settings.AudioConfig``,
``edge.detect.settings.DetectorConfig``, ...); ``edge.service.config``
assembles them into one ``Config`` and reads the file. The field metadata is
the one source of every option's documentation: ``config.yaml`` and the
option table in ``docs/configuration.md`` are generated from it
(``python -m edge.service.config --yaml | --markdown``; a test checks both).

:func:`build` walks parsed YAML against such a class and turns the first
problem into a one-line :class:`ConfigError`, e.g.::

    config.yaml: detector.thresholds.dog_bark: expected a number in [0, 1], got 'high'
"""

from __future__ import annotations

import dataclasses
import functools
import re
import reprlib
import types
import typing
from dataclasses import field
from typing import Any

from edge.core.errors import EdgeError


class ConfigError(EdgeError, ValueError):
    """A configuration problem; ``str(err)`` is the one-line message for the user."""


_SHOWN = reprlib.Repr()
_SHOWN.maxlevel, _SHOWN.maxdict, _SHOWN.maxlist, _SHOWN.maxtuple, _SHOWN.maxset = 2, 4, 4, 4, 4
_SHOWN.maxstring, _SHOWN.maxother, _SHOWN.maxlong = 80, 80, 40


def shown(value: Any) -> str:
    """``repr(value)`` for an error message, bounded in length, depth and time.

    A YAML alias bomb of 600 bytes is a list of 10^9 items whose plain repr never
    ends; an integer of 5000 digits has no repr at all.
    """
    try:
        return _SHOWN.repr(value)
    except Exception:  # noqa: BLE001 - whatever the value, the message must come out
        return f"<{type(value).__name__}>"


def shown_key(key: Any) -> str:
    """A mapping key as an error message names it: ``str(key)``, at most 80 characters."""
    try:
        text = str(key)
    except Exception:  # noqa: BLE001
        text = f"<{type(key).__name__}>"
    return text if len(text) <= 80 else text[:77] + "..."


def option(default: Any, doc: str, lo: float | None = None, hi: float | None = None,
           choices: tuple[str, ...] | None = None, pattern: str | None = None, pattern_says: str | None = None,
           fallback: Any = None, default_says: str | None = None) -> Any:
    """A dataclass field of a settings section.

    Args:
        default: the value when the key is absent (a dict, list or dataclass is copied per instance).
        doc: what the option does, with its unit; one or two sentences for ``config.yaml``.
        lo, hi: inclusive range of a number.
        choices: allowed strings.
        pattern, pattern_says: a regular expression a string must match, and how to say so in an error.
        fallback: for a ``None`` default that means "the model's value": what is used when the model has none.
        default_says: how the documentation states the default, when the plain value would not say enough.
    """
    meta = {"lo": lo, "hi": hi, "choices": choices, "pattern": pattern, "pattern_says": pattern_says,
            "doc": doc, "fallback": fallback, "default_says": default_says}
    if isinstance(default, (dict, list)):
        return field(default_factory=functools.partial(type(default), default), metadata=meta)
    if dataclasses.is_dataclass(default):
        return field(default_factory=type(default), metadata=meta)
    return field(default=default, metadata=meta)


def fmt_num(x: float | None) -> str:
    """``10.0`` -> ``10``, ``0.05`` -> ``0.05``; None -> ``""``."""
    if x is None:
        return ""
    return str(int(x)) if float(x).is_integer() else str(x)


def describe(tp: Any, meta: dict[str, Any]) -> str:
    """What a value of type ``tp`` with these limits must be, as an error message says it."""
    lo, hi, choices = meta.get("lo"), meta.get("hi"), meta.get("choices")
    if choices:
        return "one of " + ", ".join(choices)
    if tp is bool:
        return "true or false"
    rng = f" {fmt_num(lo)}-{fmt_num(hi)}" if tp is int and lo is not None else ""
    if tp is int:
        return f"an integer{rng}"
    if tp is float:
        return f"a number in [{fmt_num(lo)}, {fmt_num(hi)}]" if lo is not None else "a number"
    if tp is str:
        return str(meta.get("pattern_says") or "a string")
    return str(tp)


def _check_scalar(value: Any, tp: Any, meta: dict[str, Any], where: str) -> Any:
    orig = value

    def bad() -> ConfigError:
        return ConfigError(f"{where}: expected {describe(tp, meta)}, got {shown(orig)}")

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
        if pattern and not re.fullmatch(pattern, value):
            says = meta.get("pattern_says") or f"a string matching {pattern}"
            raise ConfigError(f"{where}: expected {says}, got {shown(value)}")
        return value
    lo, hi = meta.get("lo"), meta.get("hi")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise bad()
    return value


def convert(value: Any, tp: Any, meta: dict[str, Any], where: str) -> Any:
    """``value`` checked against the type hint ``tp`` (and the field's limits); ConfigError naming ``where``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1:
            return convert(value, non_none[0], meta, where)
        # int | str (a device index or name)
        if int in non_none and isinstance(value, int) and not isinstance(value, bool):
            return value
        if str in non_none and isinstance(value, str) and value:
            return value
        raise ConfigError(f"{where}: expected an integer or a string, got {shown(value)}")
    if dataclasses.is_dataclass(tp):
        return build(typing.cast(type, tp), value, where)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {shown(value)}")
        _, vt = typing.get_args(tp)
        if dataclasses.is_dataclass(vt):  # an entry of a mapping of sections: null would silently mean "nothing"
            for k, v in value.items():
                if not isinstance(v, dict):
                    raise ConfigError(f"{where}.{shown_key(k)}: expected a mapping, got {shown(v)}")
        return {str(k): convert(v, vt, meta, f"{where}.{shown_key(k)}") for k, v in value.items()}
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {shown(value)}")
        (it,) = typing.get_args(tp)
        return [convert(v, it, meta, f"{where}[{i}]") for i, v in enumerate(value)]
    if value is None:
        raise ConfigError(f"{where}: expected {describe(tp, meta)}, got null")
    return _check_scalar(value, tp, meta, where)


def build(cls: type, data: Any, where: str) -> Any:
    """An instance of the settings dataclass ``cls`` from a parsed mapping; unknown keys are errors."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {shown(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "source_file"}
    prefix = where + "." if ":" in where and not where.endswith(": ") else where
    for key in data:
        if key not in fields:
            known = ", ".join(fields)
            raise ConfigError(f"{prefix}{shown_key(key)}: unknown key (known keys: {known})")
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = convert(data[name], hints[name], dict(f.metadata), f"{prefix}{name}")
    return cls(**kwargs)


def fallbacks(cls: type) -> dict[str, Any]:
    """``{field: fallback}`` of the fields of ``cls`` that declare one (see :func:`option`)."""
    return {f.name: f.metadata["fallback"] for f in dataclasses.fields(cls)
            if f.metadata.get("fallback") is not None}


@dataclasses.dataclass(frozen=True)
class OptionDoc:
    """One documented option: dotted key, its value in ``config.yaml``, the default as documented
    (with the fallback where the model decides), what values it takes, what it does."""

    key: str
    value: str
    default: str
    accepts: str
    doc: str


def yaml_value(v: Any) -> str:
    """A default as it is written in ``config.yaml``."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {yaml_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(yaml_value(x) for x in v) + "]"
    return str(v)


def option_docs(cls: type, prefix: str = "") -> list[OptionDoc]:
    """Every leaf option of the settings class ``cls``, in declaration order (nested sections flattened)."""
    hints = typing.get_type_hints(cls)
    out: list[OptionDoc] = []
    inst = cls()
    for f in dataclasses.fields(cls):
        if f.name == "source_file":
            continue
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            out.extend(option_docs(typing.cast(type, tp), f"{prefix}{f.name}."))
            continue
        meta = dict(f.metadata)
        value = yaml_value(getattr(inst, f.name))
        if meta.get("default_says"):
            default = str(meta["default_says"])
        elif meta.get("fallback") is not None:
            default = f"{value} = the model's value, else {yaml_value(meta['fallback'])}"
        else:
            default = value
        out.append(OptionDoc(f"{prefix}{f.name}", value, default, _accepts(tp, meta), meta["doc"]))
    return out


def _accepts(tp: Any, meta: dict[str, Any]) -> str:
    """``describe`` for documentation: ``null`` allowed, lists and mappings spelt out."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        inner = " or ".join(_accepts(a, meta) for a in args)
        return f"{inner}, or null"
    if origin is dict:
        return f"a mapping label: {_accepts(typing.get_args(tp)[1], meta)}"
    if origin is list:
        if meta.get("choices"):
            return "a list of: " + ", ".join(meta["choices"])
        return f"a list of {_accepts(typing.get_args(tp)[0], meta)}s".replace("a strings", "names")
    if dataclasses.is_dataclass(tp):  # a mapping of settings objects (alerts.rules)
        return "{" + ", ".join(f.name for f in dataclasses.fields(tp)) + "}"
    if tp is str and meta.get("pattern_says"):
        return str(meta["pattern_says"])
    if tp is float and meta.get("lo") is not None:
        return f"{fmt_num(meta['lo'])}-{fmt_num(meta['hi'])}"
    if tp is int and meta.get("lo") is not None:
        return f"an integer {fmt_num(meta['lo'])}-{fmt_num(meta['hi'])}"
    return describe(tp, meta)


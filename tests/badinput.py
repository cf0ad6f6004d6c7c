"""Generators of bad input for tests/test_bad_input.py: special paths, config values, contracts, audio, home files.

Everything here is deterministic (fixed seeds) and small, so the generated cases can be parametrised at
collection time by name and built in a temporary folder when the test runs.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import socket
import struct
import typing
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from edge.core.errors import one_line_text
from edge.core.files import shown_path

# -- special paths ------------------------------------------------------------------------------------------------
#: kinds of path that are not a usable file, made by :func:`special_path`
PATH_KINDS = ("missing", "nul", "long_name", "long_path", "newline", "folder", "fifo", "dev_null", "socket",
              "loop", "through_file")
#: kinds that are usable as a folder to write into (clips_dir): created or already a folder
FOLDER_OK = ("missing", "newline", "folder")


def special_path(kind: str, d: Path, keep: list[Any]) -> str:
    """A path of ``kind`` under ``d``; ``keep`` holds what must stay open (a listening socket)."""
    d.mkdir(parents=True, exist_ok=True)
    if kind == "missing":
        return str(d / "missing.file")
    if kind == "nul":
        return str(d / "nul\0byte")
    if kind == "long_name":
        return str(d / ("n" * 300))
    if kind == "long_path":
        return str(d) + "/" + "/".join(["d" * 200] * 25)
    if kind == "newline":
        return str(d / "new\nline")
    if kind == "folder":
        (d / "folder").mkdir(exist_ok=True)
        return str(d / "folder")
    if kind == "fifo":
        p = d / "fifo"
        if not p.exists():
            os.mkfifo(p)
        return str(p)
    if kind == "dev_zero":
        return "/dev/zero"
    if kind == "dev_null":
        return "/dev/null"
    if kind == "socket":
        p = d / "sock"
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(str(p))
        s.listen(1)
        keep.append(s)
        return str(p)
    if kind == "loop":
        p = d / "loop"
        if not p.is_symlink():
            p.symlink_to(p)
        return str(p)
    if kind == "through_file":
        (d / "afile").write_text("x")
        return str(d / "afile" / "x")
    raise ValueError(kind)


def shown(path: str) -> str:
    """How a one-line message shows ``path`` (shortened, control characters escaped)."""
    return one_line_text(shown_path(path))


# -- config option values ------------------------------------------------------------------------------------------
def leaf_options(cls: type, prefix: str = "") -> list[tuple[str, Any, dict[str, Any]]]:
    """``(dotted key, type hint, field metadata)`` of every leaf option of a settings dataclass."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if f.name == "source_file":
            continue
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            out += leaf_options(typing.cast(type, tp), f"{prefix}{f.name}.")
        else:
            out.append((f"{prefix}{f.name}", tp, dict(f.metadata)))
    return out


def bad_values(tp: Any, meta: dict[str, Any]) -> list[tuple[str, Any]]:
    """Values of the wrong type or out of range for an option of type ``tp``: ``[(name, value)]``."""
    args = typing.get_args(tp)
    optional = type(None) in args
    inner = [a for a in args if a is not type(None)] if args and typing.get_origin(tp) is not dict \
        and typing.get_origin(tp) is not list else [tp]
    base = inner[0] if len(inner) == 1 else tuple(inner)
    common: list[tuple[str, Any]] = [("list", [1]), ("mapping", {"a": 1})]
    if not optional:
        common.append(("null", None))
    lo, hi = meta.get("lo"), meta.get("hi")
    if base is bool:
        return [("word", "maybe"), ("int", 2), *common]
    if base is int:
        out = [("word", "x"), ("fraction", 1.5), ("bool", True), *common]
        if lo is not None:
            out += [("below", int(lo) - 1), ("above", int(hi) + 1)]
        return out + [("digits", "HUGE_INT")]
    if base is float:
        out = [("word", "x"), ("bool", True), ("nan", math.nan), ("inf", math.inf), *common]
        if lo is not None:
            out += [("below", lo - 1), ("above", hi + 1)]
        return out
    if base is str:
        out = [("int", 5), ("bool", True), ("empty", ""), *common]
        if meta.get("choices"):
            out.append(("choice", "nope"))
        if meta.get("pattern"):
            out.append(("pattern", "a b/#+"))
        return out
    if base == (int, str):  # a device: index or name
        return [("fraction", 1.5), ("bool", True), ("empty", ""), *common]
    origin = typing.get_origin(tp)
    if origin is dict:
        return [("word", "x"), ("list", [1]), ("value_word", {"low_tone": "x"}), ("value_above", {"low_tone": 1e9}),
                ("value_null", {"low_tone": None}), ("unknown_label", {"nope": 0.5})]
    if base is list or typing.get_origin(base) is list or origin is list:
        return [("word", "x"), ("item_int", [1]), ("item_list", [[1]]), ("mapping", {"a": 1}), ("empty", []),
                ("unknown_label", ["nope"])]
    raise AssertionError(f"no bad values for {tp}")


def config_text(dotted: str, value: Any, extra: dict[str, Any] | None = None) -> str:
    """A YAML config setting ``dotted`` to ``value`` (over ``extra``)."""
    tree: dict[str, Any] = json.loads(json.dumps(extra or {}))
    node = tree
    parts = dotted.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = value
    text = yaml.safe_dump(tree, default_flow_style=False, allow_unicode=False)
    return text.replace("HUGE_INT", "1" * 5000).replace("'1" + "1" * 4999 + "'", "1" * 5000)


# -- YAML structure ------------------------------------------------------------------------------------------------
def billion_laughs(where: str = "detector:\n  threshold: ", levels: int = 9) -> str:
    """~500 bytes that expand to 9^9 strings when walked (anchors and aliases)."""
    items = ['&a0 [' + ",".join(['"lol"'] * 9) + ']']
    for i in range(1, levels):
        items.append(f'&a{i} [' + ",".join([f"*a{i - 1}"] * 9) + ']')
    return where + "[" + ", ".join(items) + "]\n"


YAML_CASES: dict[str, tuple[str | bytes, str]] = {
    # name: (file content, a text the one-line message must contain)
    "deep_flow": ("detector: " + "[" * 5000 + "]" * 5000 + "\n", "nested deeper"),
    "deep_flow_unclosed": ("detector: " + "[" * 20000 + "\n", "invalid YAML"),
    "deep_flow_huge": ("detector: " + "[" * 250_000 + "\n", "nested deeper"),
    "deep_mappings": ("".join("  " * i + f"k{i}:\n" for i in range(300)) + "  " * 300 + "v: 1\n", "nested deeper"),
    "deep_flow_maps": ("detector: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n", "nested deeper"),
    "laughs_number": (billion_laughs(), "detector.threshold"),
    "laughs_list": (billion_laughs("detector:\n  labels: "), "detector.labels[0]"),
    "laughs_mapping": (billion_laughs("detector:\n  thresholds: "), "detector.thresholds"),
    "laughs_section": (billion_laughs("audio: "), "audio"),
    "laughs_deep": (billion_laughs("mqtt:\n  tls:\n    ca_file: ", 9), "mqtt.tls.ca_file"),
    "too_large": ("# padding\n" * 30000 + "detector: {}\n", "more than the"),
    "binary": (bytes(range(256)) * 8, "not UTF-8"),
    "utf16": ("detector: {}\n".encode("utf-16"), "not UTF-8"),
    "latin1": ("# caf\xe9\ndetector: {}\n".encode("latin-1"), "not UTF-8"),
    "nul_char": ("detector: {threshold: 0.5}\x00\n", "invalid YAML"),
    "two_documents": ("detector: {}\n---\naudio: {}\n", "invalid YAML"),
    "tab_indent": ("detector:\n\tthreshold: 0.5\n", "invalid YAML"),
    "bad_timestamp": ("detector:\n  threshold: 2024-13-45\n", "invalid YAML"),
    "huge_int": ("detector:\n  persistence_k: " + "9" * 5000 + "\n", "invalid YAML"),
    "python_tag": ("detector: !!python/object:os.system {}\n", "invalid YAML"),
    "binary_tag": ("detector:\n  threshold: !!binary aGVsbG8=\n", "detector.threshold"),
    "set_tag": ("detector:\n  labels: !!set {a, b}\n", "detector.labels"),
    "duplicate_key": ("mqtt:\n  port: 1883\n  port: 1884\n", "duplicate key"),
    "unhashable_key": ("detector:\n  ? [a, b]\n  : 1\n", "invalid YAML"),
    "newline_key_top": ('"audio\\nmodel": 1\n', "audio\\nmodel"),
    "newline_key_section": ('detector:\n  "thresh\\nold": 1\n', "thresh\\nold"),
    "control_key": ('detector:\n  "x\\x1b[2Jy": 1\n', "\\x1b"),
    "long_key": ("detector:\n  ? " + "k" * 100_000 + "\n  : 1\n", "detector.kkk"),
    "long_simple_key": ("detector:\n  " + "k" * 100_000 + ": 1\n", "invalid YAML"),
    "long_value": ("detector:\n  sensitivity: " + "v" * 100_000 + "\n", "detector.sensitivity"),
    "top_list": ("- a\n- b\n", "expected a mapping"),
    "top_scalar": ("just words\n", "expected a mapping"),
    "section_scalar": ("detector: 5\n", "detector: expected a mapping"),
    "section_list": ("audio: [1, 2]\n", "audio: expected a mapping"),
    "merge_bad": ("base: &b {x: 1}\ndetector:\n  <<: *b\n", "base"),
    "empty_labels": ("detector:\n  labels: []\n", "detector.labels: an empty list"),
    "k_over_n": ("detector:\n  persistence_k: 5\n  persistence_n: 3\n", "detector.persistence_k"),
    "two_passwords": ("mqtt:\n  password: a\n  password_env: B\n", "mqtt.password_env"),
}

#: a section of the wrong type in the file, and the command-line flag that replaces a key inside it
OVERRIDE_CASES: dict[str, tuple[str, list[str], str]] = {
    "audio_int_source": ("audio: 5\n", ["run", "--source", "{good}"], "audio: expected a mapping, got 5"),
    "audio_list_source": ("audio: [1, 2]\n", ["run", "--source", "{good}"], "audio: expected a mapping"),
    "audio_word_realtime": ("audio: x\n", ["run", "--source", "{good}", "--realtime"], "audio: expected a mapping"),
    "model_int": ("model: 5\n", ["detect", "{good}"], "model: expected a mapping"),
    "model_list_model": ("model: [a]\n", ["run", "--source", "{good}"], "model: expected a mapping"),
    "logging_int_verbose": ("logging: 3\n", ["run", "--source", "{good}", "--verbose"], "logging: expected a mapping"),
    "source_int_detect": ("audio:\n  source: 5\n", ["detect", "{good}"], "audio.source: expected a string"),
    "model_path_list_model": ("model:\n  path: [1]\n", ["detect", "{good}"], "model.path: expected a string"),
}


# -- model contracts -----------------------------------------------------------------------------------------------
Mutation = Callable[[dict[str, Any]], Any]


def _set(path: str, value: Any) -> Mutation:
    def mutate(d: dict[str, Any]) -> None:
        node = d
        parts = path.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return mutate


def _drop(path: str) -> Mutation:
    def mutate(d: dict[str, Any]) -> None:
        node = d
        parts = path.split(".")
        for p in parts[:-1]:
            node = node[p]
        del node[parts[-1]]
    return mutate


def contract_cases(base: dict[str, Any]) -> dict[str, tuple[Mutation | str, str]]:
    """``{name: (mutation of the contract dict, or raw metadata text; text the message must contain)}``."""
    cases: dict[str, tuple[Mutation | str, str]] = {
        "not_json": ("{labels: nope", "not valid JSON"),
        "json_list": ("[1, 2]", "not a JSON object"),
        "json_deep": ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        "version_2": (_set("contract_version", 2), "contract_version"),
        "version_text": (_set("contract_version", "1"), "contract_version"),
        "version_bool": (_set("contract_version", True), "contract_version"),
        "labels_empty": (_set("labels", []), "labels"),
        "labels_dup": (_set("labels", ["a", "a", "b"]), "labels"),
        "labels_int": (_set("labels", [1, 2, 3]), "labels[0]"),
        "labels_slash": (_set("labels", ["a/b", "c", "d"]), "labels[0]"),
        "labels_newline": (_set("labels", ["a\nb", "c", "d"]), "labels[0]"),
        "labels_text": (_set("labels", "abc"), "labels"),
        "labels_many": (_set("labels", [f"l{i}" for i in range(2000)]), "labels"),
        "labels_two": (_set("labels", ["low_tone", "mid_tone"]), "its contract names 2 labels"),
        "labels_four": (_set("labels", ["a", "b", "c", "d"]), "its contract names 4 labels"),
        "frontend_text": (_set("frontend", "x"), "frontend"),
        "frontend_unknown": (_set("frontend.center", True), "frontend.center"),
        "fe_hop_gt_win": (_set("frontend.hop_length", 500), "frontend.hop_length"),
        "fe_win_gt_fft": (_set("frontend.win_length", 1024), "frontend.win_length"),
        "fe_fmax_nyquist": (_set("frontend.fmax", 9000.0), "frontend.fmax"),
        "fe_fmin_ge_fmax": (_set("frontend.fmin", 7800.0), "frontend.fmax"),
        "fe_mels_gt_bins": (_set("frontend.n_mels", 300), "frontend.n_mels"),
        "fe_mels_graph": (_set("frontend.n_mels", 32), "(block_frames, n_mels"),
        "fe_rate_8k": (_set("frontend.sample_rate", 8000), "frontend.fmax"),
        "block_graph": (_set("block_frames", 5), "(block_frames, n_mels"),
        "window_graph": (_set("window_blocks", 3), "(block_frames, n_mels"),
        "cache_graph": (_set("cache_dim", 32), "(block_frames, n_mels"),
        "embedding_graph": (_set("embedding_dim", 32), "(block_frames, n_mels"),
        "block_huge_seconds": (_set("block_frames", 1000), "block_frames"),
        "inputs_missing_role": (_set("inputs", {"mel": "mel"}), "lacks the role 'cache'"),
        "inputs_wrong_name": (_set("inputs", {"mel": "mel", "cache": "nope"}), "graph lacks"),
        "inputs_int_name": (_set("inputs", {"mel": "mel", "cache": 5}), "inputs.cache"),
        "inputs_list": (_set("inputs", ["mel"]), "inputs"),
        "outputs_missing_role": (_set("outputs", {"scores": "scores", "cache": "cache_out"}),
                                 "lacks the role 'embedding'"),
        "outputs_swapped": (_set("outputs", {"scores": "embedding", "embedding": "scores", "cache": "cache_out"}),
                            "its contract names 3 labels"),
        "outputs_cache_is_embedding": (_set("outputs", {"scores": "scores", "embedding": "embedding",
                                                        "cache": "embedding"}), "(block_frames, n_mels"),
        "thresholds_unknown": (_set("thresholds", {"nope": 0.5}), "thresholds.nope"),
        "thresholds_above": (_set("thresholds", {"low_tone": 1.5}), "thresholds.low_tone"),
        "thresholds_text": (_set("thresholds", {"low_tone": "x"}), "thresholds.low_tone"),
        "thresholds_nan": ('NAN_THRESHOLD', "thresholds.low_tone"),
        "thresholds_null": (_set("thresholds", {"low_tone": None}), "thresholds.low_tone"),
        "thresholds_list": (_set("thresholds", [0.5]), "thresholds"),
        "model_version_list": (_set("model_version", ["x"]), "model_version"),
        "model_version_long": (_set("model_version", "v" * 5000), "model_version"),
        "license_mapping": (_set("license", {"a": 1}), "license"),
        "extra_list": (_set("extra", [1]), "extra"),
        "detector_list": (_set("detector", [1]), "detector"),
        "detector_text": (_set("detector", "x"), "detector"),
        "prototypes_list": (_set("prototypes", [1]), "prototypes"),
        "prototypes_empty_entry": (_set("prototypes", {"dim": 4}), "malformed prototypes"),
        "prototypes_bad_base64": (_set("prototypes", {"dim": 64, "min_similarity": 0.5,
                                                      "labels": {"mid_tone": {"k": 1, "int8": "***"}}}),
                                  "malformed prototypes"),
        "prototypes_unknown_label": (_set("prototypes", {"dim": 64, "min_similarity": 0.5,
                                                         "labels": {"nope": {"k": 1, "int8": "AAAA"}}}),
                                     "not a model label"),
        "prototypes_threshold": (_set("prototypes", {"dim": 64, "min_similarity": 5, "labels": {}}),
                                 "min_similarity"),
        "prototypes_dim": (_set("prototypes", {"dim": 8, "min_similarity": 0.5, "labels": {}}), "8 dimensions"),
    }
    for key in ("labels", "frontend", "block_frames", "window_blocks", "cache_dim", "embedding_dim"):
        cases[f"missing_{key}"] = (_drop(key), repr(key))
    for key in base["frontend"]:
        cases[f"missing_frontend_{key}"] = (_drop(f"frontend.{key}"), f"frontend.{key}")
        for name, v in (("null", None), ("text", "x"), ("list", [1]), ("bool", True), ("negative", -1),
                        ("zero", 0), ("huge", 2 ** 31)):
            if key == "fmin" and name == "zero":
                continue  # fmin 0 Hz is valid
            cases[f"fe_{key}_{name}"] = (_set(f"frontend.{key}", v), f"frontend.{key}")
    cases["fe_n_fft_2_27"] = (_set("frontend.n_fft", 2 ** 27), "frontend.n_fft")
    cases["fe_sample_rate_2e9"] = (_set("frontend.sample_rate", 2_000_000_000), "frontend.sample_rate")
    cases["fe_log_offset_inf"] = ('INF_LOG_OFFSET', "frontend.log_offset")
    for key in ("block_frames", "window_blocks", "cache_dim", "embedding_dim"):
        for name, v in (("null", None), ("text", "24"), ("fraction", 2.5), ("bool", True), ("zero", 0),
                        ("negative", -3), ("huge", 2 ** 40), ("list", [1])):
            cases[f"{key}_{name}"] = (_set(key, v), key)
    # The tuned detector section: the detector schema of config.yaml, and no nulls.
    tunable = {"hysteresis": (0, 1), "persistence_k": (1, 100), "persistence_n": (1, 100),
               "min_duration_s": (0, 60), "release_s": (0, 60), "offset_lag_s": (0, 60), "onset_lead_s": (0, 5),
               "onset_backtrack_s": (0, 30), "backtrack_floor": (0, 1)}
    for key, (_lo, hi) in tunable.items():
        for name, v in (("null", None), ("text", "x"), ("list", [1]), ("mapping", {"a": 1}), ("bool", True),
                        ("negative", -1), ("above", hi * 10 + 1)):
            cases[f"det_{key}_{name}"] = (_set(f"detector.{key}", v), f"detector.{key}")
    cases["det_k_gt_n"] = (lambda d: d.__setitem__("detector", {"persistence_k": 4, "persistence_n": 3}),
                           "detector.persistence_k")
    cases["det_unknown_key"] = (_set("detector.colour", 1), "detector.colour")
    cases["det_labels_key"] = (_set("detector.labels", ["low_tone"]), "detector.labels")
    for key in ("thresholds", "releases"):
        for name, v in (("text", "x"), ("list", [1]), ("unknown_label", {"nope": 0.5}),
                        ("value_text", {"low_tone": "x"}), ("value_null", {"low_tone": None}),
                        ("value_above", {"low_tone": 1e6})):
            cases[f"det_{key}_{name}"] = (_set(f"detector.{key}", v), f"detector.{key}")
    for name, v in (("text", "x"), ("bad_sensitivity", {"paranoid": {"thresholds": {"low_tone": 0.5}}}),
                    ("value_text", {"low": {"thresholds": {"low_tone": "x"}}}),
                    ("unknown_label", {"low": {"thresholds": {"nope": 0.5}}}),
                    ("not_mapping", {"low": [0.5]}), ("above", {"high": {"thresholds": {"low_tone": 2}}}),
                    ("unknown_part", {"low": {"thresholdz": {"low_tone": 0.5}}}),
                    ("min_duration_above", {"low": {"min_durations": {"low_tone": 1e6}}}),
                    ("min_duration_label", {"low": {"min_durations": {"nope": 1.0}}})):
        cases[f"det_operating_points_{name}"] = (_set("detector.operating_points", v), "detector.operating_points")
    for name, v in (("text", "x"), ("negative", {"low": {"low_tone": -1}}), ("unknown_label", {"low": {"nope": 1}}),
                    ("bad_sensitivity", {"paranoid": {"low_tone": 0.1}})):
        cases[f"det_false_alarms_{name}"] = (_set("detector.false_alarms_per_hour", v),
                                             "detector.false_alarms_per_hour")
    return cases


def contract_text(base: dict[str, Any], spec: Mutation | str) -> str:
    """The contract metadata text for a case: raw text as is, else ``base`` mutated and dumped."""
    if isinstance(spec, str):
        if spec == "NAN_THRESHOLD":
            return json.dumps({**base, "thresholds": {"low_tone": math.nan}})
        if spec == "INF_LOG_OFFSET":
            return json.dumps({**base, "frontend": {**base["frontend"], "log_offset": math.inf}})
        return spec
    d = json.loads(json.dumps(base))
    spec(d)
    return json.dumps(d)


def write_model_with_contract(model: Any, text: str, out: Path) -> Path:
    """A copy of the ``onnx.ModelProto`` ``model`` whose contract metadata is ``text``."""
    import onnx

    m = onnx.ModelProto()
    m.CopyFrom(model)
    for prop in m.metadata_props:
        if prop.key == "edge.contract":
            prop.value = text
    out.write_bytes(m.SerializeToString())
    return out


# -- audio files ---------------------------------------------------------------------------------------------------
def wav_bytes(x: np.ndarray, sr: int = 16000, tag: int = 1, ch: int = 1, bits: int = 16,
              fmt_size: int | None = None, data_size: int | None = None, rate: int | None = None) -> bytes:
    """A WAV file of ``x`` with any header field overridable (to break it)."""
    raw = (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()
    block = ch * bits // 8
    fmt = struct.pack("<HHIIHH", tag, ch, rate if rate is not None else sr, sr * max(block, 1), block, bits)
    body = (b"WAVE" + b"fmt " + struct.pack("<I", len(fmt) if fmt_size is None else fmt_size) + fmt
            + b"data" + struct.pack("<I", len(raw) if data_size is None else data_size) + raw)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def audio_cases(tone: np.ndarray) -> dict[str, bytes]:
    """``{name: file bytes}`` of audio files no reader can use (each must be refused, one line, exit 2)."""
    good = wav_bytes(tone)
    rng = np.random.default_rng(22)
    cases: dict[str, bytes] = {
        "empty": b"",
        "text": b"hello, this is not audio " * 40,
        "zero_samples": wav_bytes(tone[:0]),
        "too_short": wav_bytes(tone[:800]),
        "channels_0": wav_bytes(tone, ch=0),
        "rate_0": wav_bytes(tone, rate=0),
        "rate_2e9": wav_bytes(tone, rate=2_000_000_000),
        "tag_2_adpcm_garbage": wav_bytes(tone, tag=2),
        "tag_mpeg": wav_bytes(tone, tag=0x55),
        "tag_extensible_short": wav_bytes(tone, tag=0xFFFE),
        "fmt_size_2": wav_bytes(tone, fmt_size=2),
        "fmt_size_huge": wav_bytes(tone, fmt_size=0xFFFFFFF0),
        "no_data_chunk": good[:36],
        "riff_only": b"RIFF\x10\x00\x00\x00WAVE",
        "ogg_garbage": b"OggS" + rng.integers(0, 256, 3000, dtype=np.uint8).tobytes(),
        "flac_magic_only": b"fLaC",
        "flac_garbage": b"fLaC" + rng.integers(0, 256, 3000, dtype=np.uint8).tobytes(),
        "mp3_id3": b"ID3\x03\x00\x00\x00\x00\x00\x00" + rng.integers(0, 256, 3000, dtype=np.uint8).tobytes(),
        "mp3_frames": (b"\xff\xfb\x90\x64" + rng.integers(0, 256, 413, dtype=np.uint8).tobytes()) * 20,
    }
    for cut in (1, 4, 8, 11, 13, 20, 24, 30, 40, 43, 45):
        cases[f"wav_cut_{cut}"] = good[:cut]
    for n in (1, 17, 300, 5000):
        cases[f"random_{n}"] = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
    return cases


FLAC_CASES = ("flac_cut_5", "flac_cut_20", "flac_cut_42", "flac_cut_60", "flac_cut_200", "flac_zero_streaminfo")


def flac_cases(tone: np.ndarray, tmp: Path) -> dict[str, bytes]:
    """A real FLAC, cut inside its header or its first frames (libsndfile must refuse them, never crash)."""
    import soundfile as sf

    p = tmp / "good.flac"
    sf.write(p, np.tile(tone, 3), 16000, format="FLAC")
    good = p.read_bytes()
    cases = {f"flac_cut_{n}": good[:n] for n in (5, 20, 42, 60, 200)}
    bad = bytearray(good)
    bad[4:42] = bytes(38)  # STREAMINFO zeroed: no rate, no channels
    cases["flac_zero_streaminfo"] = bytes(bad)
    return cases


def mp3_file(tone: np.ndarray, tmp: Path) -> bytes:
    """A real MP3 (refused: libmpg123 writes its own lines on stderr for damaged frames)."""
    import soundfile as sf

    p = tmp / "good.mp3"
    sf.write(p, np.tile(tone, 3), 16000, format="MP3")
    return p.read_bytes()


# -- home-background files -----------------------------------------------------------------------------------------
def npz_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=False)
    return buf.getvalue()


def home_cases(dim: int, fingerprint: str) -> dict[str, tuple[bytes, str]]:
    """``{name: (file bytes, text the message must contain)}`` of tampered home-background files."""
    from edge.detect.home_background import FORMAT

    v = np.ones((10, dim), np.float16) / np.float16(math.sqrt(dim))
    meta = {"format": FORMAT, "model": fingerprint, "seconds": 10.0, "fired": {}}

    def file(vectors: np.ndarray | None = v, m: Any = meta, raw_meta: bytes | None = None) -> bytes:
        members = {}
        if vectors is not None:
            members["vectors.npy"] = npy(vectors)
        if raw_meta is not None:
            members["meta.npy"] = raw_meta
        elif m is not None:
            members["meta.npy"] = npy(np.array(json.dumps(m) if not isinstance(m, str) else m))
        return npz_bytes(members)

    good = file()
    huge = bytearray(npy(v))
    header_end = huge.index(b"}") + 1
    claimed = str({"descr": "<f2", "fortran_order": False, "shape": (10 ** 9, dim)}).encode()
    huge[10:header_end] = claimed.ljust(header_end - 10)
    return {
        "half": (good[: len(good) // 2], "not a home-background file"),
        "random": (np.random.default_rng(3).integers(0, 256, 4000, dtype=np.uint8).tobytes(),
                   "not a home-background file"),
        "empty": (b"", "not a home-background file"),
        "no_meta": (file(m=None), "holds no 'meta'"),
        "no_vectors": (file(vectors=None), "holds no 'vectors'"),
        "meta_list": (file(m=[1, 2]), "not a JSON object"),
        "meta_not_json": (file(m="{nope"), "meta: JSONDecodeError"),
        "meta_deep": (file(m="[" * 100_000 + "]" * 100_000), "meta: RecursionError"),
        "meta_format": (file(m={**meta, "format": "other"}), "format 'other'"),
        "meta_fired_list": (file(m={**meta, "fired": [1]}), "meta.fired"),
        "meta_fired_text": (file(m={**meta, "fired": {"dog": "x"}}), "meta.fired"),
        "meta_seconds_text": (file(m={**meta, "seconds": "x"}), "meta.seconds"),
        "meta_seconds_nan": (file(raw_meta=npy(np.array(json.dumps(meta).replace("10.0", "NaN")))),
                             "meta.seconds"),
        "meta_model_int": (file(m={**meta, "model": 5}), "meta.model"),
        "meta_int_array": (file(raw_meta=npy(np.arange(3))), "meta is not a text"),
        "vectors_dim": (file(vectors=np.ones((10, dim + 1), np.float16)), "windows of shape"),
        "vectors_1d": (file(vectors=np.ones(dim, np.float16)), "windows of shape"),
        "vectors_int": (file(vectors=np.ones((10, dim), np.int64)), "windows of shape"),
        "vectors_nan": (file(vectors=np.full((10, dim), np.nan, np.float16)), "not finite"),
        "vectors_too_many": (file(vectors=np.ones((5000, dim), np.float16)), "at most 4096"),
        "vectors_object": (npz_bytes({"vectors.npy": b"\x93NUMPY\x01\x00v\x00{'descr': '|O', 'fortran_order': "
                                                     b"False, 'shape': (2,), }" + b" " * 60 + b"\n",
                                      "meta.npy": npy(np.array(json.dumps(meta)))}),
                           "not a home-background file"),
        "vectors_huge_header": (npz_bytes({"vectors.npy": bytes(huge), "meta.npy": npy(np.array(json.dumps(meta)))}),
                                "truncated or of another kind"),
    }

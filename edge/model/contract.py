"""The model contract: what an ONNX model file tells the runtime about itself.

A model is a *streaming block classifier*. Audio is turned into log-mel frames
by :mod:`edge.features.frontend` (parameters from the contract), grouped into blocks of
``block_frames`` frames. Each call encodes one new block and combines it with
the cached encodings of the previous ``window_blocks - 1`` blocks, so the
per-frame work is done once however often scores are read.

Graph signature (names from the contract, float32, batch size 1):

* input ``mel``:        ``(1, block_frames, n_mels)`` log-mel of the newest block
* input ``cache_in``:   ``(1, window_blocks - 1, cache_dim)`` previous encodings
* output ``scores``:    ``(1, n_labels)`` per-label probabilities (sigmoid, multi-label)
* output ``embedding``: ``(1, embedding_dim)`` window embedding
* output ``cache_out``: ``(1, window_blocks - 1, cache_dim)`` cache for the next call

The contract is stored as JSON in the ONNX metadata property ``edge.contract``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.core.errors import EdgeError
from edge.core.files import FileProblem, read_bytes, shown_path
from edge.core.logutil import one_line
from edge.core.schema import fmt_num, shown, shown_key
from edge.features.frontend import FrontendParams
from edge.model.prototypes import PrototypeError, Prototypes

CONTRACT_KEY = "edge.contract"
CONTRACT_VERSION = 1


class ContractError(EdgeError, ValueError):
    """A model file is missing, unreadable, or carries no usable contract; the message names the file and key."""


@dataclass(frozen=True)
class ModelContract:
    labels: tuple[str, ...]
    frontend: FrontendParams
    block_frames: int
    window_blocks: int
    cache_dim: int
    embedding_dim: int
    thresholds: dict[str, float] = field(default_factory=dict)
    model_version: str = "unversioned"
    license: str = "unspecified"
    training_data: str = ""
    inputs: dict[str, str] = field(default_factory=lambda: {"mel": "mel", "cache": "cache_in"})
    outputs: dict[str, str] = field(
        default_factory=lambda: {"scores": "scores", "embedding": "embedding", "cache": "cache_out"}
    )
    detector: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    #: per-label embedding prototypes for the familiarity check (:mod:`edge.model.prototypes`); {} = none
    prototypes: dict[str, Any] = field(default_factory=dict)
    #: the model file it was read from, for messages (not part of the contract itself)
    source: str = field(default="model", compare=False, repr=False)

    @property
    def block_samples(self) -> int:
        return self.block_frames * self.frontend.hop_length

    @property
    def block_seconds(self) -> float:
        return self.block_samples / self.frontend.sample_rate

    @property
    def window_frames(self) -> int:
        return self.block_frames * self.window_blocks

    @property
    def window_seconds(self) -> float:
        """Audio covered by one window of frames, in seconds."""
        return self.frames_end_s(self.window_frames)

    @property
    def look_back_seconds(self) -> float:
        """How far a window reaches back before its newest block (``window_blocks - 1`` blocks), in seconds."""
        return (self.window_blocks - 1) * self.block_seconds

    # Timing of the stream, counted from its first sample (block ``b`` holds frames ``[b*F, (b+1)*F)``).
    def frames_end_s(self, n_frames: int) -> float:
        """Seconds from stream start at which the audio of the first ``n_frames`` log-mel frames ends."""
        p = self.frontend
        return ((n_frames - 1) * p.hop_length + p.win_length) / p.sample_rate

    def block_start_s(self, b: int) -> float:
        """Seconds from stream start at which block ``b`` (0-based) begins."""
        p = self.frontend
        return (b * self.block_frames * p.hop_length) / p.sample_rate

    def block_end_s(self, b: int) -> float:
        """Seconds from stream start at which the audio of block ``b`` ends (its last frame's window)."""
        return self.frames_end_s((b + 1) * self.block_frames)

    def threshold(self, label: str, default: float = 0.5) -> float:
        return float(self.thresholds.get(label, default))

    def to_json(self) -> str:
        d = {
            "contract_version": CONTRACT_VERSION,
            "labels": list(self.labels),
            "frontend": self.frontend.to_dict(),
            "block_frames": self.block_frames,
            "window_blocks": self.window_blocks,
            "cache_dim": self.cache_dim,
            "embedding_dim": self.embedding_dim,
            "thresholds": self.thresholds,
            "model_version": self.model_version,
            "license": self.license,
            "training_data": self.training_data,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "detector": self.detector,
            "extra": self.extra,
        }
        if self.prototypes:
            d["prototypes"] = self.prototypes
        return json.dumps(d, sort_keys=True)

    def familiarity(self) -> Prototypes | None:
        """The decoded :class:`edge.model.prototypes.Prototypes`, or None if the model carries none.

        Decoded once per contract (validated at load, then used by the listener).
        """
        if not self.prototypes:
            return None
        cached = self.__dict__.get("_familiarity")
        if cached is None:
            cached = Prototypes.from_dict(self.prototypes, self.labels)
            self.__dict__["_familiarity"] = cached  # frozen dataclass: a cache, not a field
        return cached

    @classmethod
    def from_json(cls, text: str, where: str = "model") -> ModelContract:
        """Parse and validate the contract JSON; every problem is a one-line :class:`ContractError` naming
        ``where`` (the model file) and the key (see :func:`validate_contract` for what is checked)."""
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ContractError(f"{where}: contract metadata is not valid JSON ({e.msg})") from None
        except RecursionError:
            raise ContractError(f"{where}: contract metadata is nested too deeply") from None
        return validate_contract(d, where)


#: what a contract may say, within reason (a value outside is a broken or hand-edited model)
LIMITS: dict[str, tuple[float, float]] = {
    "frontend.sample_rate": (1000, 192000), "frontend.n_fft": (16, 16384), "frontend.n_mels": (1, 512),
    "block_frames": (1, 1000), "window_blocks": (1, 1000), "cache_dim": (1, 65536), "embedding_dim": (1, 65536),
}
#: longest block and window a model may ask for, in seconds (a household sound is judged within seconds)
MAX_BLOCK_S, MAX_WINDOW_S = 10.0, 120.0
MAX_LABELS = 1024
#: a label is part of MQTT topics and Home Assistant entity ids
_LABEL = re.compile(r"[^\x00-\x20\x7f/+#]{1,100}")
_ROLES = {"inputs": ("mel", "cache"), "outputs": ("scores", "embedding", "cache")}
_DEFAULT_NAMES = {"inputs": {"mel": "mel", "cache": "cache_in"},
                  "outputs": {"scores": "scores", "embedding": "embedding", "cache": "cache_out"}}


def _bad(where: str, key: str, problem: str) -> ContractError:
    return ContractError(f"{where}: contract {key}: {problem}")


def _get(d: dict[str, Any], key: str, where: str, prefix: str = "") -> Any:
    if key not in d:
        raise ContractError(f"{where}: contract is missing the key {prefix + key!r}")
    return d[key]


def _int(v: Any, key: str, lo: float, hi: float, where: str) -> int:
    if isinstance(v, bool) or not (isinstance(v, int) or (isinstance(v, float) and v.is_integer())):
        raise _bad(where, key, f"expected an integer {fmt_num(lo)}-{fmt_num(hi)}, got {shown(v)}")
    if not lo <= v <= hi:
        raise _bad(where, key, f"expected an integer {fmt_num(lo)}-{fmt_num(hi)}, got {shown(v)}")
    return int(v)


def _num(v: Any, key: str, lo: float, hi: float, where: str, lo_open: bool = False) -> float:
    says = f"a number in {'(' if lo_open else '['}{fmt_num(lo)}, {fmt_num(hi)}]"
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise _bad(where, key, f"expected {says}, got {shown(v)}")
    if v < lo or v > hi or (lo_open and v == lo):
        raise _bad(where, key, f"expected {says}, got {shown(v)}")
    return float(v)


def _mapping(v: Any, key: str, where: str) -> dict[str, Any]:
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise _bad(where, key, f"expected a mapping, got {shown(v)}")
    return v


def _text(v: Any, key: str, where: str, default: str, limit: int) -> str:
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, (str, int, float)):
        raise _bad(where, key, f"expected a string, got {shown(v)}")
    s = str(v)
    if len(s) > limit:
        raise _bad(where, key, f"expected at most {limit} characters, got {len(s)}")
    return s


def _frontend(v: Any, where: str) -> FrontendParams:
    f = _mapping(v, "frontend", where)
    known = FrontendParams.__dataclass_fields__
    for k in f:
        if k not in known:
            raise _bad(where, f"frontend.{shown_key(k)}", f"unknown key (known keys: {', '.join(known)})")
    g = {k: _get(f, k, where, "frontend.") for k in known}
    sr = _int(g["sample_rate"], "frontend.sample_rate", *LIMITS["frontend.sample_rate"], where)
    n_fft = _int(g["n_fft"], "frontend.n_fft", *LIMITS["frontend.n_fft"], where)
    win = _int(g["win_length"], "frontend.win_length", 1, n_fft, where)
    hop = _int(g["hop_length"], "frontend.hop_length", 1, win, where)
    n_mels = _int(g["n_mels"], "frontend.n_mels", 1, min(LIMITS["frontend.n_mels"][1], n_fft // 2 + 1), where)
    fmin = _num(g["fmin"], "frontend.fmin", 0.0, sr / 2.0, where)
    fmax = _num(g["fmax"], "frontend.fmax", fmin, sr / 2.0, where, lo_open=True)
    log_offset = _num(g["log_offset"], "frontend.log_offset", 0.0, 1.0, where, lo_open=True)
    return FrontendParams(sample_rate=sr, n_fft=n_fft, win_length=win, hop_length=hop, n_mels=n_mels,
                          fmin=fmin, fmax=fmax, log_offset=log_offset)


def _names(d: dict[str, Any], side: str, where: str) -> dict[str, str]:
    v = d.get(side)
    if v is None or v == {}:
        return dict(_DEFAULT_NAMES[side])
    m = _mapping(v, side, where)
    out = {}
    for role in _ROLES[side]:
        if role not in m:
            raise _bad(where, side, f"lacks the role {role!r} (needs {', '.join(_ROLES[side])})")
        name = m[role]
        if not isinstance(name, str) or not name:
            raise _bad(where, f"{side}.{role}", f"expected a graph {side[:-1]} name, got {shown(name)}")
        out[role] = name
    return out


def validate_contract(d: Any, where: str = "model") -> ModelContract:
    """A :class:`ModelContract` from parsed contract JSON, every value checked for type and range.

    Checked: the version; labels (1-1024 unique names fit for MQTT topics); the front end (every
    field, within :data:`LIMITS`, consistent: hop <= window <= n_fft, fmin < fmax <= rate / 2);
    block and window sizes (at most :data:`MAX_BLOCK_S` / :data:`MAX_WINDOW_S` seconds); the
    dimensions; thresholds of known labels in [0, 1]; the graph's input/output roles; the text
    fields; the prototypes. The ``detector`` section (the model's tuned settings) is checked by
    :func:`edge.detect.settings.check_model_detector` against the ``detector`` schema of
    ``config.yaml``; the graph itself by :func:`open_model`.
    """
    if not isinstance(d, dict):
        raise ContractError(f"{where}: contract metadata is not a JSON object")
    version = d.get("contract_version")
    if version != CONTRACT_VERSION or isinstance(version, bool):
        raise ContractError(f"{where}: unsupported contract_version {shown(version)} (expected {CONTRACT_VERSION})")
    raw_labels = _get(d, "labels", where)
    if not isinstance(raw_labels, list) or not raw_labels or len(raw_labels) > MAX_LABELS:
        raise ContractError(f"{where}: contract labels must be a non-empty list of unique names")
    for i, lab in enumerate(raw_labels):
        if not isinstance(lab, str) or not _LABEL.fullmatch(lab):
            raise _bad(where, f"labels[{i}]", "expected a name of 1-100 characters without spaces, control "
                                              f"characters, '/', '+' or '#', got {shown(lab)}")
    labels = tuple(raw_labels)
    if len(set(labels)) != len(labels):
        raise ContractError(f"{where}: contract labels must be a non-empty list of unique names")
    frontend = _frontend(_get(d, "frontend", where), where)
    dims = {k: _int(_get(d, k, where), k, *LIMITS[k], where)
            for k in ("block_frames", "window_blocks", "cache_dim", "embedding_dim")}
    block_s = dims["block_frames"] * frontend.hop_length / frontend.sample_rate
    if block_s > MAX_BLOCK_S:
        raise _bad(where, "block_frames", f"{dims['block_frames']} frames are {block_s:g} s of audio, more than "
                                          f"{MAX_BLOCK_S:g} s")
    window_s = ((dims["block_frames"] * dims["window_blocks"] - 1) * frontend.hop_length
                + frontend.win_length) / frontend.sample_rate
    if window_s > MAX_WINDOW_S:
        raise _bad(where, "window_blocks", f"a window of {window_s:g} s of audio is more than {MAX_WINDOW_S:g} s")
    thresholds = {}
    for k, v in _mapping(d.get("thresholds"), "thresholds", where).items():
        if k not in labels:
            raise _bad(where, f"thresholds.{shown_key(k)}", "not a label of the model")
        thresholds[k] = _num(v, f"thresholds.{k}", 0.0, 1.0, where)
    c = ModelContract(
        labels=labels, frontend=frontend, thresholds=thresholds,
        model_version=_text(d.get("model_version"), "model_version", where, "unversioned", 200),
        license=_text(d.get("license"), "license", where, "unspecified", 10_000),
        training_data=_text(d.get("training_data"), "training_data", where, "", 100_000),
        inputs=_names(d, "inputs", where), outputs=_names(d, "outputs", where),
        detector=dict(_mapping(d.get("detector"), "detector", where)),
        extra=dict(_mapping(d.get("extra"), "extra", where)),
        prototypes=dict(_mapping(d.get("prototypes"), "prototypes", where)),
        source=where, **dims,
    )
    try:
        protos = c.familiarity()
    except PrototypeError as e:
        raise ContractError(f"{where}: {e}") from None
    if protos is not None and protos.dim != c.embedding_dim:
        raise ContractError(f"{where}: prototypes have {protos.dim} dimensions, the embedding {c.embedding_dim}")
    return c


#: largest model file read (the shipped int8 models are ~0.3 MB; a float model of a bigger recipe a few MB)
MAX_MODEL_BYTES = 256 * 1024 * 1024


def open_model(path: str | Path, threads: int = 1) -> tuple[Any, ModelContract]:
    """Open an ONNX model with onnxruntime and read its contract.

    Returns ``(session, contract)``. Every failure (missing file, corrupt file,
    no contract, a contract value out of range, a graph whose input/output
    shapes disagree with the contract, a graph that fails on one block of
    silence) is a one-line :class:`ContractError` naming the file.
    """
    import onnxruntime as ort

    p = Path(path) if not isinstance(path, Path) else path
    try:
        data = read_bytes(path, MAX_MODEL_BYTES)  # a regular file, bounded; read once, parsed from memory
    except FileProblem as e:
        raise ContractError(f"{shown_path(e.path)}: {'model file not found' if e.missing else e.problem}") \
            from None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    # Always-on: onnxruntime's CPU arena kept growing RSS by ~0.1-0.25 MB per hour of audio in
    # benchmarks/soak.py; with plain allocations it stays flat (~0.02 MB/h).
    opts.enable_cpu_mem_arena = False
    opts.enable_mem_pattern = False
    try:
        sess = ort.InferenceSession(data, sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types for corrupt files
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ContractError(f"{p}: not a loadable ONNX model ({first[:160]})") from None
    del data
    meta = sess.get_modelmeta().custom_metadata_map
    if CONTRACT_KEY not in meta:
        raise ContractError(f"{p}: ONNX model has no '{CONTRACT_KEY}' metadata (not an edge model)")
    contract = ModelContract.from_json(meta[CONTRACT_KEY], where=str(p))
    _check_graph(sess, contract, str(p))
    _check_runs(sess, contract, str(p))
    return sess, contract


def _expected_shapes(c: ModelContract) -> dict[tuple[str, str], tuple[int, ...]]:
    look_back = c.window_blocks - 1
    return {("inputs", "mel"): (1, c.block_frames, c.frontend.n_mels),
            ("inputs", "cache"): (1, look_back, c.cache_dim),
            ("outputs", "scores"): (1, len(c.labels)),
            ("outputs", "embedding"): (1, c.embedding_dim),
            ("outputs", "cache"): (1, look_back, c.cache_dim)}


def _check_graph(sess: Any, c: ModelContract, where: str) -> None:
    """The graph's declared inputs/outputs against the contract: names, float32, shapes (symbolic dims pass)."""
    nodes = {"inputs": {i.name: i for i in sess.get_inputs()}, "outputs": {o.name: o for o in sess.get_outputs()}}
    missing = [n for n in c.inputs.values() if n not in nodes["inputs"]]
    missing += [n for n in c.outputs.values() if n not in nodes["outputs"]]
    if missing:
        raise ContractError(f"{where}: graph lacks the inputs/outputs named by its contract: {', '.join(missing)}")
    extra = [n for n in nodes["inputs"] if n not in c.inputs.values()]
    if extra:
        raise ContractError(f"{where}: graph needs inputs its contract does not name: {', '.join(extra)}")
    scores = nodes["outputs"][c.outputs["scores"]]
    width = scores.shape[-1] if scores.shape else None
    if isinstance(width, int) and width != len(c.labels):
        raise ContractError(f"{where}: its contract names {len(c.labels)} labels but the graph scores {width}")
    for (side, role), want in _expected_shapes(c).items():
        node = nodes[side][getattr(c, side)[role]]
        shape = list(node.shape or [])
        if node.type != "tensor(float)":
            raise ContractError(f"{where}: graph {side[:-1]} {node.name!r} ({role}) is {node.type}, expected float32")
        fits = len(shape) == len(want) and all(not isinstance(g, int) or g == w
                                               for g, w in zip(shape, want, strict=True))
        if not fits:
            raise ContractError(f"{where}: graph {side[:-1]} {node.name!r} ({role}) has shape {shape}, its contract "
                                f"says {list(want)} (block_frames, n_mels, window_blocks, cache_dim, embedding_dim)")


def _check_runs(sess: Any, c: ModelContract, where: str) -> None:
    """One block of silence through the graph: it must run and return what the contract says."""
    import numpy as np

    shapes = _expected_shapes(c)
    feed = {c.inputs["mel"]: np.zeros(shapes["inputs", "mel"], np.float32),
            c.inputs["cache"]: np.zeros(shapes["inputs", "cache"], np.float32)}
    roles = ("scores", "embedding", "cache")
    try:
        outs = sess.run([c.outputs[r] for r in roles], feed)
    except Exception as e:  # onnxruntime's own error types (InvalidArgument, RuntimeException, ...)
        raise ContractError(f"{where}: the graph fails on one block of silence ({one_line(e)})") from None
    for role, out in zip(roles, outs, strict=True):
        want = shapes["outputs", role]
        if not isinstance(out, np.ndarray) or out.dtype != np.float32 or out.shape != want:
            got = f"{getattr(out, 'dtype', type(out).__name__)} {list(getattr(out, 'shape', ()))}"
            raise ContractError(f"{where}: the graph's {role} output is {got} on one block of silence, its contract "
                                f"says float32 {list(want)}")


def read_contract(path: str | Path) -> ModelContract:
    """Read only the contract of a model file (opens it with onnxruntime)."""
    return open_model(path)[1]


def write_contract(model: Any, contract: ModelContract) -> None:
    """Store ``contract`` in an in-memory ``onnx.ModelProto``'s metadata."""
    for prop in list(model.metadata_props):
        if prop.key == CONTRACT_KEY:
            model.metadata_props.remove(prop)
    entry = model.metadata_props.add()
    entry.key = CONTRACT_KEY
    entry.value = contract.to_json()


def save_with_contract(model: Any, contract: ModelContract, path: str | Path) -> Path:
    """Store ``contract`` in ``model`` (an ``onnx.ModelProto``) and save it to ``path`` atomically
    (a temporary file renamed over it, so a reader never sees half a model). Needs the ``onnx`` package."""
    import onnx

    write_contract(model, contract)
    out = Path(path)
    tmp = out.with_suffix(".tmp")
    onnx.save(model, str(tmp))
    tmp.replace(out)
    return out

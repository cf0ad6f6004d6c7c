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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.core.errors import EdgeError
from edge.features.frontend import FrontendParams
from edge.model.prototypes import PrototypeError, Prototypes

CONTRACT_KEY = "edge.contract"
CONTRACT_VERSION = 1


class ContractError(EdgeError, ValueError):
    """A model file is missing, unreadable, or carries no usable contract."""


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
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ContractError(f"{where}: contract metadata is not valid JSON ({e.msg})") from None
        if not isinstance(d, dict):
            raise ContractError(f"{where}: contract metadata is not a JSON object")
        version = d.get("contract_version")
        if version != CONTRACT_VERSION:
            raise ContractError(f"{where}: unsupported contract_version {version!r} (expected {CONTRACT_VERSION})")
        try:
            labels = tuple(str(x) for x in d["labels"])
            if not labels or len(set(labels)) != len(labels):
                raise ContractError(f"{where}: contract labels must be a non-empty list of unique names")
            c = cls(
                labels=labels,
                frontend=FrontendParams.from_dict(d["frontend"]),
                block_frames=int(d["block_frames"]),
                window_blocks=int(d["window_blocks"]),
                cache_dim=int(d["cache_dim"]),
                embedding_dim=int(d["embedding_dim"]),
                thresholds={str(k): float(v) for k, v in d.get("thresholds", {}).items()},
                model_version=str(d.get("model_version", "unversioned")),
                license=str(d.get("license", "unspecified")),
                training_data=str(d.get("training_data", "")),
                inputs=dict(d.get("inputs") or {"mel": "mel", "cache": "cache_in"}),
                outputs=dict(
                    d.get("outputs") or {"scores": "scores", "embedding": "embedding", "cache": "cache_out"}
                ),
                detector=dict(d.get("detector") or {}),
                extra=dict(d.get("extra") or {}),
                prototypes=dict(d.get("prototypes") or {}),
            )
        except KeyError as e:
            raise ContractError(f"{where}: contract is missing the key {e.args[0]!r}") from None
        except (TypeError, ValueError) as e:
            if isinstance(e, ContractError):
                raise
            raise ContractError(f"{where}: invalid contract ({e})") from None
        if c.block_frames < 1 or c.window_blocks < 1:
            raise ContractError(f"{where}: block_frames and window_blocks must be >= 1")
        try:
            protos = c.familiarity()
        except PrototypeError as e:
            raise ContractError(f"{where}: {e}") from None
        if protos is not None and protos.dim != c.embedding_dim:
            raise ContractError(f"{where}: prototypes have {protos.dim} dimensions, the embedding {c.embedding_dim}")
        return c


def open_model(path: str | Path, threads: int = 1) -> tuple[Any, ModelContract]:
    """Open an ONNX model with onnxruntime and read its contract.

    Returns ``(session, contract)``. Every failure (missing file, corrupt file,
    no contract, graph that does not match the contract) is a one-line
    :class:`ContractError`.
    """
    import onnxruntime as ort

    p = Path(path)
    if not p.is_file():
        raise ContractError(f"{p}: model file not found")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    # Always-on: onnxruntime's CPU arena kept growing RSS by ~0.1-0.25 MB per hour of audio in
    # benchmarks/soak.py; with plain allocations it stays flat (~0.02 MB/h).
    opts.enable_cpu_mem_arena = False
    opts.enable_mem_pattern = False
    try:
        sess = ort.InferenceSession(str(p), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types for corrupt files
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ContractError(f"{p}: not a loadable ONNX model ({first[:160]})") from None
    meta = sess.get_modelmeta().custom_metadata_map
    if CONTRACT_KEY not in meta:
        raise ContractError(f"{p}: ONNX model has no '{CONTRACT_KEY}' metadata (not an edge model)")
    contract = ModelContract.from_json(meta[CONTRACT_KEY], where=str(p))
    have_in = {i.name for i in sess.get_inputs()}
    have_out = {o.name for o in sess.get_outputs()}
    missing = [n for n in contract.inputs.values() if n not in have_in]
    missing += [n for n in contract.outputs.values() if n not in have_out]
    if missing:
        raise ContractError(f"{p}: graph lacks the inputs/outputs named by its contract: {', '.join(missing)}")
    width = next(o.shape[-1] for o in sess.get_outputs() if o.name == contract.outputs["scores"])
    if isinstance(width, int) and width != len(contract.labels):
        raise ContractError(f"{p}: its contract names {len(contract.labels)} labels but the graph scores {width}")
    return sess, contract


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

"""A tiny ONNX model that honours the edge model contract, for tests.

Each label listens to one frequency band: its score rises when the log-mel
energy in that band stands out from the average of all bands. So a test tone
at a label's centre frequency triggers that label, silence and broadband noise
trigger nothing, and the result is deterministic.

Graph (float32, batch 1), per the contract in :mod:`edge.model.contract`:

* ``enc = mean over frames of mel``                        (1, n_mels)  -> one block encoding
* ``window = concat(cache_in, enc)``                       (1, W, n_mels)
* ``contrast = window @ band_weights - mean(window, mels)``  (1, W, L)  per block
* ``scores = sigmoid(gain * (max over blocks of contrast - offset))``   (1, L)
* ``embedding = mean over blocks of window``               (1, n_mels)
* ``cache_out = window[:, 1:]``                            (1, W-1, n_mels)

Usage: ``build_tiny_model(tmp_path / "tiny.onnx")`` then ``Classifier(path)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edge.features.frontend import FrontendParams, mel_filterbank
from edge.model.contract import ModelContract, write_contract

DEFAULT_LABELS = ("low_tone", "mid_tone", "high_tone")
DEFAULT_CENTRES_HZ = (500.0, 1000.0, 2000.0)


def band_weights(p: FrontendParams, centres_hz: Sequence[float], width: float = 1.25) -> np.ndarray:
    """``(n_mels, n_labels)``: averaging weights over the mel bands whose peak lies in
    ``[centre / width, centre * width]``."""
    fb = mel_filterbank(p)
    freqs = np.linspace(0.0, p.sample_rate / 2.0, p.n_bins)
    peaks = freqs[np.argmax(fb, axis=0)]
    w = np.zeros((p.n_mels, len(centres_hz)), dtype=np.float32)
    for j, f in enumerate(centres_hz):
        sel = (peaks >= f / width) & (peaks <= f * width)
        if not sel.any():
            sel[np.argmin(np.abs(peaks - f))] = True
        w[sel, j] = 1.0 / sel.sum()
    return w


def build_tiny_model(path: str | Path, labels: Sequence[str] = DEFAULT_LABELS,
                     centres_hz: Sequence[float] = DEFAULT_CENTRES_HZ,
                     frontend: FrontendParams | None = None, block_frames: int = 10, window_blocks: int = 2,
                     gain: float = 2.0, offset: float = 3.0, thresholds: dict[str, float] | None = None,
                     model_version: str = "tiny-1", with_contract: bool = True) -> Path:
    """Write a tiny contract-honouring model to ``path`` and return the path.

    Args:
        labels / centres_hz: one label per centre frequency (Hz).
        frontend: front-end parameters (default: 16 kHz, 25 ms / 10 ms, 64 mels).
        block_frames / window_blocks: contract block size (frames) and window (blocks).
        gain / offset: score = sigmoid(gain * (band contrast in nats - offset)).
        thresholds: per-label thresholds stored in the contract.
        with_contract: False writes a graph without the contract metadata (error tests).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if len(labels) != len(centres_hz):
        raise ValueError("one centre frequency per label")
    p = frontend or FrontendParams()
    n_mels, n_labels, w_blocks = p.n_mels, len(labels), window_blocks
    cache_len = w_blocks - 1
    inits = [
        numpy_helper.from_array(band_weights(p, centres_hz), "band_w"),
        numpy_helper.from_array(np.array(gain, np.float32), "gain"),
        numpy_helper.from_array(np.array(offset, np.float32), "offset"),
        numpy_helper.from_array(np.array([1], np.int64), "axis1"),
        numpy_helper.from_array(np.array([2], np.int64), "axis2"),
        numpy_helper.from_array(np.array([1], np.int64), "start1"),
        numpy_helper.from_array(np.array([w_blocks], np.int64), "endw"),
    ]
    nodes = [
        helper.make_node("ReduceMean", ["mel", "axis1"], ["enc"], keepdims=1),            # (1,1,M)
        helper.make_node("Concat", ["cache_in", "enc"], ["window"], axis=1),              # (1,W,M)
        helper.make_node("MatMul", ["window", "band_w"], ["band"]),                       # (1,W,L)
        helper.make_node("ReduceMean", ["window", "axis2"], ["avg"], keepdims=1),         # (1,W,1)
        helper.make_node("Sub", ["band", "avg"], ["contrast"]),
        helper.make_node("ReduceMax", ["contrast", "axis1"], ["peak"], keepdims=0),       # (1,L)
        helper.make_node("Sub", ["peak", "offset"], ["shifted"]),
        helper.make_node("Mul", ["shifted", "gain"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["scores"]),
        helper.make_node("ReduceMean", ["window", "axis1"], ["embedding"], keepdims=0),   # (1,M)
        helper.make_node("Slice", ["window", "start1", "endw", "axis1"], ["cache_out"]),  # (1,W-1,M)
    ]
    graph = helper.make_graph(
        nodes, "tiny_band_model",
        [helper.make_tensor_value_info("mel", TensorProto.FLOAT, [1, block_frames, n_mels]),
         helper.make_tensor_value_info("cache_in", TensorProto.FLOAT, [1, cache_len, n_mels])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, n_labels]),
         helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, n_mels]),
         helper.make_tensor_value_info("cache_out", TensorProto.FLOAT, [1, cache_len, n_mels])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], producer_name="edge-tests")
    model.ir_version = 8
    if with_contract:
        write_contract(model, ModelContract(
            labels=tuple(labels), frontend=p, block_frames=block_frames, window_blocks=w_blocks,
            cache_dim=n_mels, embedding_dim=n_mels, thresholds=dict(thresholds or {}),
            model_version=model_version, license="Apache-2.0", training_data="none (synthetic test model)",
        ))
    onnx.checker.check_model(model)
    out = Path(path)
    out.write_bytes(model.SerializeToString())
    return out

"""Settings of the model stage: ``model`` (which ONNX file, how many threads, how often to score)."""

from __future__ import annotations

from dataclasses import dataclass

from edge.core.schema import option


@dataclass(frozen=True)
class ModelConfig:
    path: str | None = option(None, "ONNX model file; null = the bundled models/homesound-int8.onnx")
    threads: int = option(1, "onnxruntime intra-op threads", 1, 64)
    hop_s: float | None = option(None, "seconds between score updates, a whole number of the model's blocks; "
                                 "null = every block", 0.001, 10.0)

"""edge: always-on household sound listener (microphone -> ONNX classifier -> events)."""

__version__ = "0.1.0"

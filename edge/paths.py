"""Where the bundled model lives.

Running from a checkout: ``<repo>/models/homesound-int8.onnx``. Installed with
pip: ``<sys.prefix>/share/edge-listener/models/homesound-int8.onnx``.
"""

from __future__ import annotations

import sys
from pathlib import Path

MODEL_NAME = "homesound-int8.onnx"


def repo_root() -> Path | None:
    """The checkout this package runs from, or None when installed."""
    root = Path(__file__).resolve().parent.parent
    if (root / "pyproject.toml").is_file() and (root / "edge" / "__init__.py").is_file():
        return root
    return None


def bundled_model() -> Path:
    """Path of the bundled model (it may not exist yet; the classifier reports that)."""
    root = repo_root()
    if root is not None and (root / "models").is_dir():
        return root / "models" / MODEL_NAME
    return Path(sys.prefix) / "share" / "edge-listener" / "models" / MODEL_NAME

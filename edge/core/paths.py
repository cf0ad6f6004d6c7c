"""Where the bundled model lives.

Running from a checkout: ``<repo>/models/homesound-int8.onnx``. Installed with
pip: ``<prefix>/share/edge-listener/models/homesound-int8.onnx``, where the prefix
is the environment's (a venv, a system install) or, for ``pip install --user``,
the user base (``~/.local``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

MODEL_NAME = "homesound-int8.onnx"


def repo_root() -> Path | None:
    """The checkout this package runs from, or None when installed."""
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file() and (root / "edge" / "__init__.py").is_file():
        return root
    return None


def bundled_model() -> Path:
    """Path of the bundled model (it may not exist yet; the classifier reports that)."""
    root = repo_root()
    if root is not None and (root / "models").is_dir():
        return root / "models" / MODEL_NAME
    found = [p for p in installed_candidates() if p.is_file()]
    return found[0] if found else installed_candidates()[0]


def installed_candidates() -> list[Path]:
    """Where pip's ``data-files`` may have put the model: prefix, install scheme's data path, user base."""
    import site
    import sysconfig

    bases = [Path(sys.prefix), Path(sysconfig.get_path("data")), Path(site.getuserbase())]
    return [b / "share" / "edge-listener" / "models" / MODEL_NAME for b in dict.fromkeys(bases)]


def state_dir() -> Path:
    """``$STATE_DIRECTORY`` (systemd ``StateDirectory=``; the first of several) or ``~/.local/state/edge``."""
    state = os.environ.get("STATE_DIRECTORY")
    if state:
        return Path(state.split(":")[0])
    return Path.home() / ".local" / "state" / "edge"


def demo_recording() -> Path:
    """The bundled demo recording ``edge/data/demo.wav`` (``python -m edge.synth.demo`` makes it; no third-party
    audio)."""
    return Path(__file__).resolve().parents[1] / "data" / "demo.wav"

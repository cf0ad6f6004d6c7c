"""Where an installed listener finds its bundled model."""

from __future__ import annotations

import site
from pathlib import Path

import pytest

import edge.core.paths as paths


def test_a_user_install_finds_the_model_under_the_user_base(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # pip install --user puts data-files under ~/.local, not under sys.prefix
    model = tmp_path / "share" / "edge-listener" / "models" / paths.MODEL_NAME
    model.parent.mkdir(parents=True)
    model.write_bytes(b"x")
    monkeypatch.setattr(paths, "repo_root", lambda: None)
    monkeypatch.setattr(site, "getuserbase", lambda: str(tmp_path))
    assert paths.bundled_model() == model


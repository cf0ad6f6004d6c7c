"""Generic fixtures: WAV writers, tone generators and the tiny test model.

MQTT broker fixtures live in tests/broker.py.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tinymodel import build_tiny_model  # noqa: E402

from edge.capture.audiofile import write_wav  # noqa: E402


def tone(freq_hz: float, dur_s: float, sr: int, amp: float = 0.3) -> np.ndarray:
    """A sine of ``freq_hz`` Hz, ``dur_s`` seconds at ``sr`` Hz, float32."""
    t = np.arange(int(round(dur_s * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def bursts(spec: Sequence[tuple[float, float, float]], total_s: float, sr: int, amp: float = 0.3,
           noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """Silence (or faint noise) of ``total_s`` seconds with tone bursts ``(freq_hz, start_s, end_s)``."""
    x = np.zeros(int(round(total_s * sr)), dtype=np.float32)
    if noise:
        x += np.random.default_rng(seed).normal(0, noise, x.shape[0]).astype(np.float32)
    for f, a, b in spec:
        i, j = int(round(a * sr)), int(round(b * sr))
        x[i:j] += tone(f, (j - i) / sr, sr, amp)
    return x


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny 16 kHz model: labels low_tone (500 Hz), mid_tone (1 kHz), high_tone (2 kHz)."""
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny.onnx")


@pytest.fixture
def wav_writer(tmp_path: Path) -> Callable[..., Path]:
    """``wav_writer(name, data, sr, sample_format="s16") -> Path`` writes a WAV into tmp_path."""

    def write(name: str, data: np.ndarray, sr: int, sample_format: str = "s16") -> Path:
        return write_wav(tmp_path / name, data, sr, sample_format)

    return write


@pytest.fixture
def burst_wav(wav_writer: Callable[..., Path]) -> Callable[..., Path]:
    """``burst_wav(name, spec, total_s, sr=16000, channels=1, sample_format="s16") -> Path``."""

    def make(name: str, spec: Sequence[tuple[float, float, float]], total_s: float, sr: int = 16000,
             channels: int = 1, sample_format: str = "s16", **kw: float) -> Path:
        x = bursts(spec, total_s, sr, **kw)
        if channels > 1:
            x = np.repeat(x[:, None], channels, axis=1)
        return wav_writer(name, x, sr, sample_format)

    return make

"""The streaming block classifier (torch) and a MAC counter.

Shapes: a *patch* is ``(B, window_blocks * block_frames, n_mels)`` log-mel; it
is cut into ``window_blocks`` blocks of ``(block_frames, n_mels)``, each
encoded independently (no context across blocks) to a ``cache_dim`` vector,
and the head pools the ``window_blocks`` encodings (mean + max) into an
embedding and per-label logits. The streaming wrapper encodes only the newest
block and takes the others from its cache, so it computes exactly the same.
"""

from __future__ import annotations

from typing import TypeVar

import torch
from torch import nn

_M = TypeVar("_M", bound=nn.Module)


def _dw_block(c_in: int, c_out: int) -> list[nn.Module]:
    return [
        nn.Conv2d(c_in, c_in, 3, padding=1, groups=c_in, bias=False), nn.BatchNorm2d(c_in), nn.ReLU(),
        nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
    ]


class BlockEncoder(nn.Module):
    """``(N, block_frames, n_mels)`` normalised log-mel -> ``(N, cache_dim)``."""

    def __init__(self, widths: tuple[int, int, int, int] = (24, 48, 96, 128)) -> None:
        super().__init__()
        c1, c2, c3, c4 = widths
        # A strided first layer keeps the full-resolution activations (BN/ReLU/pool traffic) small:
        # training time on CPU is dominated by those element-wise ops, not by the convolutions.
        self.net = nn.Sequential(
            nn.Conv2d(1, c1, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c1), nn.ReLU(),  # -> 12x32
            *_dw_block(c1, c2), nn.MaxPool2d(2),  # -> 6x16
            *_dw_block(c2, c3), nn.MaxPool2d(2),  # -> 3x8
            *_dw_block(c3, c4),
        )
        self.out_dim = c4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.net(x.unsqueeze(1))
        return h.mean(dim=(2, 3)) + h.amax(dim=(2, 3))


class Head(nn.Module):
    """``(B, window_blocks, cache_dim)`` -> ``(logits (B, n_labels), embedding (B, embedding_dim))``."""

    def __init__(self, cache_dim: int, embedding_dim: int, n_labels: int, dropout: float = 0.2) -> None:
        super().__init__()
        self.fc = nn.Linear(2 * cache_dim, embedding_dim)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(embedding_dim, n_labels)

    def features(self, enc: torch.Tensor) -> torch.Tensor:
        """``(B, window_blocks, cache_dim)`` -> the ``fc`` input: mean and max over the window."""
        return torch.cat([enc.mean(dim=1), enc.amax(dim=1)], dim=1)

    def forward(self, enc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb = torch.relu(self.fc(self.features(enc)))
        return self.out(self.drop(emb)), emb


class TemporalHead(Head):
    """Like :class:`Head`, plus the block encodings in order (each projected to ``proj_dim``).

    Mean and max over the window cannot tell "beep, pause, beep" from "pause,
    beep, beep"; the ordered projections can (T3 vs T4 alarms, the rise of a
    flush). It runs once per block on the cached encodings: cost per second
    does not depend on how far back the window reaches.
    """

    def __init__(self, cache_dim: int, embedding_dim: int, n_labels: int, window_blocks: int,
                 proj_dim: int = 32, dropout: float = 0.2) -> None:
        super().__init__(cache_dim, embedding_dim, n_labels, dropout)
        self.proj = nn.Linear(cache_dim, proj_dim)
        self.fc = nn.Linear(2 * cache_dim + window_blocks * proj_dim, embedding_dim)

    def features(self, enc: torch.Tensor) -> torch.Tensor:
        # Built before the pooled part: autograd then sums enc's gradients in the order the shipped
        # models were trained with (a different order changes the trained weights in the last bits).
        ordered = torch.relu(self.proj(enc)).flatten(1)
        return torch.cat([super().features(enc), ordered], dim=1)


class BlockClassifier(nn.Module):
    """Patch-form model used for training; normalisation (fixed per-band mean/std) is part of the graph.

    ``head``: ``"pool"`` (mean + max of the block encodings) or ``"temporal"`` (:class:`TemporalHead`).
    """

    mel_mean: torch.Tensor  # buffers (register_buffer)
    mel_std: torch.Tensor

    def __init__(self, n_labels: int, n_mels: int = 64, block_frames: int = 24, window_blocks: int = 4,
                 embedding_dim: int = 128, widths: tuple[int, int, int, int] = (24, 48, 96, 128),
                 head: str = "pool") -> None:
        super().__init__()
        self.block_frames = block_frames
        self.window_blocks = window_blocks
        self.n_mels = n_mels
        self.register_buffer("mel_mean", torch.zeros(n_mels))
        self.register_buffer("mel_std", torch.ones(n_mels))
        self.encoder = BlockEncoder(widths)
        self.cache_dim = self.encoder.out_dim
        self.embedding_dim = embedding_dim
        if head == "temporal":
            self.head: Head = TemporalHead(self.cache_dim, embedding_dim, n_labels, window_blocks)
        elif head == "pool":
            self.head = Head(self.cache_dim, embedding_dim, n_labels)
        else:
            raise ValueError(f"head: expected 'pool' or 'temporal', got {head!r}")

    def encode_blocks(self, blocks: torch.Tensor) -> torch.Tensor:
        """``(N, block_frames, n_mels)`` raw log-mel -> ``(N, cache_dim)``."""
        return self.encoder((blocks - self.mel_mean) / self.mel_std)

    def forward(self, patch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b = patch.shape[0]
        blocks = patch.reshape(b * self.window_blocks, self.block_frames, self.n_mels)
        enc = self.encode_blocks(blocks).reshape(b, self.window_blocks, self.cache_dim)
        return self.head(enc)

    def score_sequence(self, mel: torch.Tensor) -> torch.Tensor:
        """Sigmoid scores of every window of a ``(T, n_mels)`` sequence, one per block once a window is full.

        Same windows as the runtime's ``Classifier.score_frames`` (callers pad short clips).
        """
        n_blocks = mel.shape[0] // self.block_frames
        enc = self.encode_blocks(mel[: n_blocks * self.block_frames].reshape(n_blocks, self.block_frames, -1))
        win = enc.unfold(0, self.window_blocks, 1).permute(0, 2, 1)  # (n_windows, window_blocks, C)
        logits, _ = self.head(win)
        return torch.sigmoid(logits)


class StreamingWrapper(nn.Module):
    """The exported graph: ``(mel (1, block_frames, n_mels), cache_in (1, W-1, C))`` ->
    ``(scores, embedding, cache_out)``."""

    def __init__(self, model: BlockClassifier) -> None:
        super().__init__()
        self.model = model

    def forward(self, mel: torch.Tensor, cache_in: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        enc = self.model.encode_blocks(mel).unsqueeze(1)
        window = torch.cat([cache_in, enc], dim=1)
        logits, emb = self.model.head(window)
        return torch.sigmoid(logits), emb, window[:, 1:]


def fuse_batchnorm(model: _M) -> _M:
    """Fold every eval-mode BatchNorm2d into the Conv2d before it (in place); returns the model."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for m in model.modules():
        if isinstance(m, nn.Sequential):
            layers = list(m)
            for i in range(len(layers) - 1):
                conv, bn = layers[i], layers[i + 1]
                if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                    m[i] = fuse_conv_bn_eval(conv, bn)
                    m[i + 1] = nn.Identity()
    return model


def count_macs(module: nn.Module, *inputs: torch.Tensor) -> int:
    """Multiply-accumulates of Conv2d and Linear layers for one forward call, from output shapes.

    Conv: ``out_elems * (c_in / groups) * kh * kw``; Linear: ``out_elems * in_features``.
    Element-wise ops, pooling and normalisation are not counted (they are small).
    """
    total = 0

    def conv_hook(m: nn.Conv2d, _inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        kh, kw = m.kernel_size
        total += out.numel() * (m.in_channels // m.groups) * kh * kw

    def lin_hook(m: nn.Linear, _inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        total += out.numel() * m.in_features

    hooks = []
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(lin_hook))
    with torch.no_grad():
        module(*inputs)
    for h in hooks:
        h.remove()
    return total


def macs_per_second(model: BlockClassifier, block_seconds: float) -> dict[str, float]:
    """MACs of one streaming call (encode one block + head) and per second of audio."""
    model = model.eval()
    wrapper = StreamingWrapper(model)
    mel = torch.zeros(1, model.block_frames, model.n_mels)
    cache = torch.zeros(1, model.window_blocks - 1, model.cache_dim)
    per_call = count_macs(wrapper, mel, cache)
    enc = count_macs(model.encoder, mel)
    return {"macs_per_call": float(per_call), "encoder_macs_per_block": float(enc),
            "calls_per_second": 1.0 / block_seconds, "macs_per_second": per_call / block_seconds}

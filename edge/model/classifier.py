"""The ONNX classifier: one call per new block of log-mel frames.

The model's own contract (see :mod:`edge.model.contract`) says how to build the
front end, how many frames make a block, and what the outputs mean; nothing
about a particular model is hard-coded here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge.model.contract import ModelContract, open_model


class Classifier:
    """Streaming block classifier around an onnxruntime session.

    ``push_block`` takes the newest ``(block_frames, n_mels)`` log-mel block and
    returns ``(scores, embedding)``: per-label probabilities ``(n_labels,)`` and
    the window embedding ``(embedding_dim,)``. The encodings of the previous
    ``window_blocks - 1`` blocks are cached, so each frame is encoded once.
    Scores are meaningful once ``ready`` (a whole window has been seen).
    """

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        self.path = Path(path)
        self.session, self.contract = open_model(self.path, threads)
        c: ModelContract = self.contract
        self._in_mel = c.inputs["mel"]
        self._in_cache = c.inputs["cache"]
        self._outs = [c.outputs["scores"], c.outputs["embedding"], c.outputs["cache"]]
        self._mel = np.zeros((1, c.block_frames, c.frontend.n_mels), dtype=np.float32)
        self._cache = np.zeros((1, max(c.window_blocks - 1, 0), c.cache_dim), dtype=np.float32)
        self.blocks_seen = 0
        self.inferences = 0

    @property
    def labels(self) -> tuple[str, ...]:
        return self.contract.labels

    @property
    def ready(self) -> bool:
        return self.blocks_seen >= self.contract.window_blocks

    def reset(self) -> None:
        self._cache[:] = 0.0
        self.blocks_seen = 0

    def push_block(self, mel_block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self._mel[0] = mel_block
        scores, emb, cache = self.session.run(self._outs, {self._in_mel: self._mel, self._in_cache: self._cache})
        self._cache = cache
        self.blocks_seen += 1
        self.inferences += 1
        return scores[0], emb[0]

    def score_frames(self, mel: np.ndarray, pad_to_window: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Score a whole log-mel sequence ``(T, n_mels)`` block by block, from a fresh state.

        Returns ``(scores, embeddings)`` of shape ``(n_windows, n_labels)`` and
        ``(n_windows, embedding_dim)``, one row per block once a whole window
        has been seen. A sequence shorter than one window is padded with the
        front end's silence floor (``log(log_offset)``) when ``pad_to_window``.
        """
        c = self.contract
        need = c.window_frames
        if mel.shape[0] < need and pad_to_window:
            floor = np.float32(np.log(c.frontend.log_offset))
            pad = np.full((need - mel.shape[0], mel.shape[1]), floor, dtype=np.float32)
            mel = np.concatenate([mel, pad], axis=0)
        self.reset()
        n_blocks = mel.shape[0] // c.block_frames
        scores, embs = [], []
        for b in range(n_blocks):
            s, e = self.push_block(mel[b * c.block_frames : (b + 1) * c.block_frames])
            if self.ready:
                scores.append(s.copy())
                embs.append(e.copy())
        if not scores:
            return (np.zeros((0, len(c.labels)), np.float32), np.zeros((0, c.embedding_dim), np.float32))
        return np.stack(scores), np.stack(embs)

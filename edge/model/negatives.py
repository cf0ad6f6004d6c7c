"""The model's bank of negative window embeddings: ordinary sounds a taught sound must not fire on.

``python -m edge.train.negative_bank MODEL.onnx --data DIR ...`` writes it next
to the model as ``<model stem>.negatives.json`` (a sidecar, so the model file
stays small): at most :data:`MAX_VECTORS` unit window embeddings of training-fold
clips, int8 (x127), base64, with the fingerprint of the model that computed them.
Enrolment (:mod:`edge.service.enrolment`) calibrates a taught sound's threshold
against it; without one it calibrates from the examples alone and says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.core.errors import EdgeError
from edge.core.files import FileProblem, read_bytes
from edge.model.prototypes import from_int8_base64, int8_base64, unit_rows

FORMAT = "edge-negative-bank-1"
SUFFIX = ".negatives.json"
#: vectors a bank may hold (2000 x 128 int8 = 256,000 bytes)
MAX_VECTORS = 2000
MAX_FILE_BYTES = 4 * MAX_VECTORS * 4096 // 3 + (1 << 16)


class NegativeBankError(EdgeError, ValueError):
    """A bank file that cannot be used (one line naming it)."""


def bank_path(model_path: str | Path) -> Path:
    """Where the bank of the model at ``model_path`` lives: ``models/homesound-int8.negatives.json``."""
    p = Path(model_path)
    return p.with_name(p.name.removesuffix(".onnx") + SUFFIX)


@dataclass(frozen=True)
class NegativeBank:
    """Unit vectors ``(n, dim)`` float32 (stored int8), the model fingerprint, where they came from, and
    ``mean`` ``(dim,)``: the mean of *all* the unit windows seen (the embeddings' common direction, which
    taught sounds are compared without: :mod:`edge.detect.taught`)."""

    vectors: np.ndarray
    model: str
    source: dict[str, Any]
    mean: np.ndarray

    @property
    def nbytes(self) -> int:
        """Bytes of the int8 vectors (the bank's size on the device, before base64)."""
        return int(self.vectors.shape[0] * self.vectors.shape[1])

    def save(self, path: str | Path) -> Path:
        n, dim = self.vectors.shape
        doc = {"format": FORMAT, "model": self.model, "n": int(n), "dim": int(dim),
               "int8": int8_base64(unit_rows(self.vectors)), "source": self.source,
               "mean": [round(float(v), 5) for v in np.asarray(self.mean, np.float32).reshape(-1)]}
        path = Path(path)
        path.write_text(json.dumps(doc, sort_keys=True), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> NegativeBank:
        where = str(path)
        try:
            raw = read_bytes(path, MAX_FILE_BYTES)
            doc = json.loads(raw.decode("utf-8"))
            if not isinstance(doc, dict) or doc.get("format") != FORMAT:
                raise NegativeBankError(f"{where}: not a negative bank (format {FORMAT!r} expected)")
            n, dim = int(doc["n"]), int(doc["dim"])
            q = from_int8_base64(doc["int8"])
            if not (1 <= n <= MAX_VECTORS and 1 <= dim <= 4096 and q.size == n * dim):
                raise NegativeBankError(f"{where}: not a negative bank ({q.size} values for {n} x {dim})")
            model = str(doc["model"])
            mean = np.asarray(doc["mean"], dtype=np.float32)
            if mean.shape != (dim,) or not np.all(np.isfinite(mean)):
                raise NegativeBankError(f"{where}: not a negative bank (mean: expected {dim} numbers)")
        except NegativeBankError:
            raise
        except FileProblem as e:
            raise NegativeBankError(str(e)) from None
        except (KeyError, TypeError, ValueError, UnicodeDecodeError, RecursionError) as e:
            raise NegativeBankError(f"{where}: not a negative bank ({type(e).__name__})") from None
        return cls(unit_rows(q.reshape(n, dim).astype(np.float32)), model, dict(doc.get("source") or {}), mean)


def find_bank(model_path: str | Path, fingerprint: str) -> tuple[NegativeBank | None, str]:
    """The bank next to the model if there is one for this model; ``(bank or None, one line saying which)``."""
    p = bank_path(model_path)
    if not p.is_file():
        return None, f"no negative bank next to the model ({p.name}): threshold from the examples alone"
    try:
        bank = NegativeBank.load(p)
    except NegativeBankError as e:
        return None, f"negative bank unusable ({e}): threshold from the examples alone"
    if bank.model != fingerprint:
        return None, f"negative bank {p.name} is another model's: threshold from the examples alone"
    return bank, f"negative bank {p.name}: {bank.vectors.shape[0]} windows ({bank.nbytes} bytes int8)"

"""This home's own background sounds, learnt on the device (window embeddings, never audio).

False alarms come from sounds the model never heard that its head must still
call something (docs/evaluation.md). In one home such sounds recur: the same
fridge, television, traffic and taps. ``edge learn-background`` listens to
ordinary audio for a while and keeps the window embedding (the model's second
output, ``(embedding_dim,)``) of every hop — numbers that describe a 1 s
window, from which the audio cannot be played back. The familiarity gate
(:mod:`edge.detect.familiarity`) then holds back an onset each of whose hops is closer
to one of these windows than to every training prototype of the label it got.
Labels without prototypes (smoke, CO, glass breaking, baby cry) are never held.

File: NumPy ``.npz`` with ``vectors`` ``(n, dim)`` float16 unit rows (at most
:data:`MAX_WINDOWS`, spread evenly over the listening time) and ``meta`` (JSON:
format, the model's fingerprint, seconds listened, onsets raised meanwhile).
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.core.errors import EdgeError
from edge.core.files import FileProblem, read_bytes, write_atomic
from edge.model.prototypes import unit_rows

FORMAT = "edge-home-background-1"
#: Windows kept (4096 x 128 float16 = 1 MiB; ~16 min of hops at 0.24 s before thinning).
MAX_WINDOWS = 4096
#: largest file :meth:`HomeBackground.load` reads (4096 windows of a 4096-value embedding, float16, and the meta)
MAX_FILE_BYTES = 2 * MAX_WINDOWS * 4096 + (1 << 20)


class BackgroundError(EdgeError, ValueError):
    """A home-background file that cannot be used; ``str(err)`` is one line naming the file."""


class OtherModelError(BackgroundError):
    """The file was learnt with another model (e.g. before an upgrade): valid, but not for this one."""


def fingerprint(contract: Any) -> str:
    """Identifies the embedding space of a model: its labels, embedding size and prototypes.

    A retrained model has other prototypes (and other embeddings), so a file learnt
    with it is refused; new detector defaults in the same model keep the fingerprint.
    """
    cache = getattr(contract, "__dict__", {})  # once per contract: the tuner's replays ask thousands of times
    if "_fingerprint" in cache:
        return cache["_fingerprint"]
    import hashlib  # here, not at the top: it loads libcrypto (~4 MB of RSS) into every listener

    doc = {"labels": list(contract.labels), "dim": int(contract.embedding_dim), "prototypes": contract.prototypes}
    cache["_fingerprint"] = digest = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]
    return digest


@dataclass
class HomeBackground:
    """Unit window embeddings of one home's background and where they came from."""

    vectors: np.ndarray  # (n, dim) float16, unit rows
    model: str  # :func:`fingerprint` of the model that computed them
    seconds: float = 0.0  # audio listened to
    fired: dict[str, int] = field(default_factory=dict)  # onsets per label raised while learning

    def per_window(self, embeddings: np.ndarray) -> np.ndarray:
        """``(n,)``: each of ``embeddings`` ``(n, dim)``'s best cosine similarity to a learnt window."""
        e = unit_rows(np.atleast_2d(np.asarray(embeddings, dtype=np.float32)))
        if self.vectors.shape[0] == 0:
            return np.full(e.shape[0], -1.0, np.float32)
        return np.max(e @ self.vectors.astype(np.float32).T, axis=1)  # per onset only: rare

    def merged(self, other: HomeBackground) -> HomeBackground:
        """Both sets of windows (thinned evenly to :data:`MAX_WINDOWS`), for learning in several sittings."""
        v = np.concatenate([self.vectors, other.vectors])
        if v.shape[0] > MAX_WINDOWS:
            v = v[np.linspace(0, v.shape[0] - 1, MAX_WINDOWS).round().astype(int)]
        fired = dict(self.fired)
        for k, n in other.fired.items():
            fired[k] = fired.get(k, 0) + n
        return HomeBackground(v, self.model, self.seconds + other.seconds, fired)

    def save(self, path: str | Path) -> Path:
        """Write atomically (a listener reloading it never sees half a file)."""
        meta = {"format": FORMAT, "model": self.model, "seconds": round(self.seconds, 3), "fired": self.fired}
        buf = io.BytesIO()  # a bank is small (load reads it whole into memory too)
        np.savez(buf, vectors=self.vectors.astype(np.float16), meta=np.array(json.dumps(meta)))
        return write_atomic(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | Path, contract: Any) -> HomeBackground:
        """Read a file written by :meth:`save` for the model of ``contract``.

        Raises :class:`BackgroundError` (missing, unreadable, tampered, another model's) and nothing else:
        the file is read through :mod:`edge.core.files` (a regular file, bounded) and parsed from memory
        with every size checked before anything is allocated.
        """
        where = str(path)
        try:
            data = read_bytes(path, MAX_FILE_BYTES)
        except FileProblem as e:
            if e.missing:
                raise BackgroundError(f"{e.path}: no such file (write it with: edge learn-background --out "
                                      f"{e.path})") from None
            raise BackgroundError(str(e)) from None
        arrays = _read_npz(data, where)
        vectors, meta = arrays["vectors"], _meta(arrays["meta"], where)
        if (vectors.ndim != 2 or vectors.dtype.kind != "f" or vectors.shape[1] != contract.embedding_dim
                or vectors.shape[0] > MAX_WINDOWS):
            raise BackgroundError(f"{where}: windows of shape {vectors.shape}, the model's embedding has "
                                  f"{contract.embedding_dim} values (at most {MAX_WINDOWS} windows)")
        vectors = np.asarray(vectors, dtype=np.float16)
        if not np.all(np.isfinite(vectors)):
            raise BackgroundError(f"{where}: windows hold values that are not finite numbers")
        if meta["model"] != fingerprint(contract):
            raise OtherModelError(f"{where}: learnt with another model (fingerprint {meta['model'][:40]}, this model "
                                  f"{fingerprint(contract)}); learn again with edge learn-background")
        return cls(vectors, meta["model"], meta["seconds"], meta["fired"])


def _read_npz(data: bytes, where: str) -> dict[str, np.ndarray]:
    """The ``vectors`` and ``meta`` arrays of an ``.npz`` held in memory; BackgroundError if it is not one.

    Sizes are checked against the bytes actually there before anything is allocated: a tampered header
    cannot make this reserve gigabytes.
    """
    out: dict[str, np.ndarray] = {}
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for name in ("vectors", "meta"):
                try:
                    info = zf.getinfo(f"{name}.npy")
                except KeyError:
                    raise BackgroundError(f"{where}: not a home-background file (it holds no {name!r})") from None
                if info.file_size > MAX_FILE_BYTES:
                    raise BackgroundError(f"{where}: not a home-background file ({name!r} is too large)")
                raw = zf.read(info)
                fp = io.BytesIO(raw)
                version = np.lib.format.read_magic(fp)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
                elif version == (2, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
                else:
                    raise BackgroundError(f"{where}: not a home-background file (npy version {version})")
                count = math.prod(shape)
                if dtype.hasobject or count * dtype.itemsize != len(raw) - fp.tell():
                    raise BackgroundError(f"{where}: not a home-background file ({name!r} is truncated or "
                                          "of another kind)")
                arr = np.frombuffer(raw, dtype=dtype, count=count, offset=fp.tell())
                out[name] = arr.reshape(shape, order="F" if fortran else "C")
    except BackgroundError:
        raise
    except Exception as e:  # noqa: BLE001 - zipfile/npy parsing of a tampered file fails in many ways
        raise BackgroundError(f"{where}: not a home-background file ({type(e).__name__}: {str(e)[:120]})") \
            from None
    return out


def _meta(arr: np.ndarray, where: str) -> dict[str, Any]:
    """The validated ``meta`` entry: format, model fingerprint, seconds listened, onsets per label."""
    bad = f"{where}: not a home-background file"
    if arr.shape != () or arr.dtype.kind != "U":
        raise BackgroundError(f"{bad} (its meta is not a text)")
    try:
        meta = json.loads(str(arr.item()))
    except (ValueError, RecursionError) as e:
        raise BackgroundError(f"{bad} (meta: {type(e).__name__})") from None
    if not isinstance(meta, dict):
        raise BackgroundError(f"{bad} (its meta is not a JSON object)")
    if meta.get("format") != FORMAT:
        fmt = meta.get("format")
        raise BackgroundError(f"{bad} (format {str(fmt)[:60]!r}, expected {FORMAT!r})")
    model, seconds, fired = meta.get("model"), meta.get("seconds", 0.0), meta.get("fired") or {}
    if not isinstance(model, str) or not model:
        raise BackgroundError(f"{bad} (meta.model: expected the model's fingerprint)")
    if (isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds)
            or seconds < 0):
        raise BackgroundError(f"{bad} (meta.seconds: expected a number of seconds >= 0)")
    if not isinstance(fired, dict) or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                                              for v in fired.values()):
        raise BackgroundError(f"{bad} (meta.fired: expected a mapping label: count)")
    return {"model": model, "seconds": float(seconds), "fired": {str(k): int(v) for k, v in fired.items()}}


class Learner:
    """Collects hop embeddings in bounded memory: every ``stride``-th is kept; when
    :data:`MAX_WINDOWS` are held, every other one is dropped and the stride doubles."""

    def __init__(self, dim: int, max_windows: int = MAX_WINDOWS) -> None:
        self.max_windows = max_windows
        self._buf = np.zeros((max_windows, dim), np.float16)
        self._n = 0
        self._seen = 0
        self._stride = 1

    def push(self, embedding: np.ndarray) -> None:
        """The window embedding ``(dim,)`` of one hop."""
        self._seen += 1
        if (self._seen - 1) % self._stride:
            return
        if self._n == self.max_windows:
            half = self._buf[::2].copy()
            self._n = half.shape[0]
            self._buf[: self._n] = half
            self._stride *= 2
            if (self._seen - 1) % self._stride:
                return
        self._buf[self._n] = unit_rows(np.asarray(embedding, dtype=np.float32).reshape(1, -1))[0]
        self._n += 1

    @property
    def hops(self) -> int:
        return self._seen

    def result(self, model: str, seconds: float, fired: dict[str, int]) -> HomeBackground:
        return HomeBackground(self._buf[: self._n].copy(), model, seconds, dict(fired))

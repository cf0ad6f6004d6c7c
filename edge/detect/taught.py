"""Sounds a person taught this listener (``edge enroll``): per name, window-embedding prototypes, never audio.

A taught sound is a label like the model's own: every hop its score is the
cosine similarity of the hop's window embedding ``(embedding_dim,)`` to the
nearest of that name's prototypes, clipped to [0, 1] (one ``(N, dim) @ (dim,)``
product for all N prototypes of all names), and the detector turns it into
onset/offset events with the name's calibrated threshold
(:mod:`edge.service.enrolment` calibrates it).

The model's embeddings share a common direction (two windows of the current
model's negative bank have a median cosine of 0.66; 0.02 without it), which
would make every sound alike; the similarity is measured without it: ``unit(unit(e) - center)``, where
``center`` ``(dim,)`` is the mean unit window of ordinary sounds (the negative
bank's, else the mean of the model's label prototypes), stored in the file.

File (JSON, under the state directory; ``taught-sounds.json``)::

    {"format": "edge-taught-sounds-1", "model": "<fingerprint>",
     "sounds": {"microwave_beep": {"examples": 5, "threshold": 0.81, "prototypes": "<base64 float16 (k, dim)>",
                                   "dim": 128, "k": 10, "calibration": {...}}}}

Only numbers from which no audio can be played back: ``k`` (at most
:data:`MAX_PROTOTYPES` per name) unit vectors describing ~1 s windows, the
example count, the threshold and how it was found. A file written with another
model (another :func:`~edge.detect.home_background.fingerprint`) raises
:class:`OtherModelError`; the listener then keeps listening without it.
"""

from __future__ import annotations

import base64
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.core.errors import EdgeError
from edge.core.files import FileProblem, read_bytes, write_atomic
from edge.model.prototypes import unit_rows

FORMAT = "edge-taught-sounds-1"
FILE_NAME = "taught-sounds.json"
#: prototypes kept per taught sound (the hop's cost is one dot product per prototype)
MAX_PROTOTYPES = 32
#: taught sounds per file
MAX_SOUNDS = 32
#: largest file :meth:`TaughtSounds.load` reads
MAX_FILE_BYTES = 4 << 20
#: a name: lower-case letters, digits and underscores (it becomes an MQTT topic and an entity id)
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class TaughtError(EdgeError, ValueError):
    """A taught-sounds file (or a name) that cannot be used; ``str(err)`` is one line naming the file."""


class OtherModelError(TaughtError):
    """The sounds were taught with another model (e.g. before an upgrade): valid, but not for this one."""


def check_name(name: str, model_labels: tuple[str, ...] | list[str] = ()) -> str:
    """``name`` if it can name a taught sound, else :class:`TaughtError`."""
    if not NAME_RE.match(name):
        raise TaughtError(f"sound name {name!r}: expected lower-case letters, digits and '_' (starting with a "
                          "letter, at most 40), e.g. microwave_beep")
    if name in model_labels:
        raise TaughtError(f"sound name {name!r}: the model already has a label of that name")
    return name


@dataclass
class TaughtSound:
    """One taught sound: unit prototypes ``(k, dim)`` float32, examples it came from, cosine threshold."""

    prototypes: np.ndarray
    examples: int
    threshold: float
    calibration: dict[str, Any] = field(default_factory=dict)


@dataclass
class TaughtSounds:
    """Every taught sound of one listener, for one model (``model`` = its fingerprint)."""

    model: str
    sounds: dict[str, TaughtSound] = field(default_factory=dict)
    #: ``(dim,)`` subtracted from every unit embedding before comparing (None: nothing)
    center: np.ndarray | None = None
    #: names removed (``edge sounds remove``): Home Assistant discovery removes their entities
    removed: list[str] = field(default_factory=list)

    def remove(self, name: str) -> None:
        """Forget ``name`` (KeyError if unknown); its entities are removed from Home Assistant."""
        del self.sounds[name]
        self.removed = [n for n in self.removed if n != name][-(MAX_SOUNDS * 2 - 1):] + [name]

    def add(self, name: str, sound: TaughtSound) -> None:
        self.sounds[name] = sound
        self.removed = [n for n in self.removed if n != name]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.sounds)

    def matrix(self) -> np.ndarray:
        """All prototypes stacked ``(N, dim)`` float32, name after name in :attr:`names` order."""
        if not self.sounds:
            return np.zeros((0, 0), np.float32)
        return np.ascontiguousarray(np.concatenate([s.prototypes for s in self.sounds.values()]).astype(np.float32))

    def to_json(self) -> str:
        out: dict[str, Any] = {}
        for name, s in self.sounds.items():
            v = unit_rows(np.asarray(s.prototypes, np.float32)).astype("<f2")
            out[name] = {"examples": int(s.examples), "threshold": round(float(s.threshold), 4),
                         "k": int(v.shape[0]), "dim": int(v.shape[1]),
                         "prototypes": base64.b64encode(v.tobytes()).decode("ascii"), "calibration": s.calibration}
        center = None if self.center is None else [round(float(v), 5) for v in self.center.reshape(-1)]
        return json.dumps({"format": FORMAT, "model": self.model, "sounds": out, "removed": self.removed,
                           "center": center}, indent=1, sort_keys=True)

    def save(self, path: str | Path) -> Path:
        """Write atomically (a listener reloading it never sees half a file)."""
        return write_atomic(path, self.to_json().encode("utf-8"))

    @classmethod
    def load(cls, path: str | Path, fingerprint: str | None = None) -> TaughtSounds:
        """Read a file written by :meth:`save`; with ``fingerprint``, refuse one taught with another model.

        Raises :class:`TaughtError` (missing, unreadable, malformed) or :class:`OtherModelError`, nothing else.
        """
        where = str(path)
        try:
            raw = read_bytes(path, MAX_FILE_BYTES)
        except FileProblem as e:
            if e.missing:
                raise TaughtError(f"{e.path}: no such file (teach a sound with: edge enroll NAME --source FILE "
                                  "...)") from None
            raise TaughtError(str(e)) from None
        bad = f"{where}: not a taught-sounds file"
        try:
            doc = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as e:
            raise TaughtError(f"{bad} ({type(e).__name__})") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            fmt = doc.get("format") if isinstance(doc, dict) else None
            raise TaughtError(f"{bad} (format {str(fmt)[:60]!r}, expected {FORMAT!r})")
        model, entries, removed = doc.get("model"), doc.get("sounds"), doc.get("removed") or []
        if (not isinstance(removed, list) or len(removed) > 2 * MAX_SOUNDS
                or not all(isinstance(n, str) and NAME_RE.match(n) for n in removed)):
            raise TaughtError(f"{bad} (removed: expected a list of sound names)")
        if not isinstance(model, str) or not model:
            raise TaughtError(f"{bad} (model: expected the model's fingerprint)")
        if not isinstance(entries, dict) or len(entries) > MAX_SOUNDS:
            raise TaughtError(f"{bad} (sounds: expected a mapping of at most {MAX_SOUNDS} names)")
        sounds: dict[str, TaughtSound] = {}
        for name, entry in entries.items():
            at = f"{where}: sounds.{str(name)[:60]}"
            try:
                check_name(str(name))
                k, dim, n = int(entry["k"]), int(entry["dim"]), int(entry["examples"])
                thr = float(entry["threshold"])
                v = np.frombuffer(base64.b64decode(entry["prototypes"], validate=True), dtype="<f2")
                cal = entry.get("calibration") or {}
            except TaughtError as err:
                raise TaughtError(f"{at}: {err}") from None
            except (KeyError, TypeError, ValueError, AttributeError) as err:
                raise TaughtError(f"{at}: malformed ({type(err).__name__}: {str(err)[:80]})") from None
            if not (1 <= k <= MAX_PROTOTYPES and 1 <= dim <= 4096 and v.size == k * dim and n >= 1
                    and math.isfinite(thr) and 0.0 <= thr <= 1.0 and isinstance(cal, dict)):
                raise TaughtError(f"{at}: malformed (k {k}, dim {dim}, {v.size} values, examples {n}, "
                                  f"threshold {thr})")
            p = v.reshape(k, dim).astype(np.float32)
            if not np.all(np.isfinite(p)):
                raise TaughtError(f"{at}: malformed (prototypes not finite)")
            sounds[str(name)] = TaughtSound(unit_rows(p), n, thr, cal)
        dims = {s.prototypes.shape[1] for s in sounds.values()}
        if len(dims) > 1:
            raise TaughtError(f"{bad} (prototypes of different sizes: {sorted(dims)})")
        center = doc.get("center")
        cvec = None
        if center is not None:
            try:
                cvec = np.asarray(center, dtype=np.float32)
            except (TypeError, ValueError):
                cvec = None
            if cvec is None or cvec.ndim != 1 or not np.all(np.isfinite(cvec)) or (dims and cvec.size not in dims):
                raise TaughtError(f"{bad} (center: expected one number per embedding value)")
        out = cls(model, sounds, cvec, [n for n in removed if n not in sounds])
        if fingerprint is not None and model != fingerprint:
            raise OtherModelError(f"{where}: taught with another model (fingerprint {model}, this model's is "
                                  f"{fingerprint}); teach the sounds again (edge enroll NAME --source FILE ...)")
        return out


class TaughtScorer:
    """Every hop: the score of each taught sound from the window embedding (cost: one ``(N, dim)`` product).

    ``scores(embedding)`` -> ``(n_names,)`` in [0, 1]: the best cosine similarity to each name's prototypes,
    clipped at 0.
    """

    def __init__(self, sounds: TaughtSounds) -> None:
        self.names = sounds.names
        self.center = None if sounds.center is None else np.asarray(sounds.center, np.float32).reshape(-1)
        self.P = sounds.matrix()
        self.thresholds = {n: float(s.threshold) for n, s in sounds.sounds.items()}
        # where each name's rows start in P (every name has at least one prototype)
        self._starts = np.cumsum([0] + [s.prototypes.shape[0] for s in sounds.sounds.values()])[:-1]

    def similarities(self, embeddings: np.ndarray) -> np.ndarray:
        """``(n, n_names)`` best cosine similarity of each embedding ``(n, dim)`` to each name's prototypes."""
        e = centred(np.atleast_2d(np.asarray(embeddings, np.float32)), self.center)
        sims = e @ self.P.T  # (n, N)
        return np.maximum.reduceat(sims, self._starts, axis=1) if sims.size else sims

    def scores(self, embedding: np.ndarray) -> np.ndarray:
        """``(n_names,)`` scores in [0, 1] of one hop's window embedding ``(dim,)``."""
        # centred() written for one vector: on every hop this costs ~35 us against ~59 us through the
        # (n, dim) path of similarities() (6 sounds, 112 prototypes)
        e = np.asarray(embedding, np.float32).reshape(-1)
        e = e / (float(np.linalg.norm(e)) + 1e-12)
        if self.center is not None:
            e = e - self.center
        sims = self.P @ (e / (float(np.linalg.norm(e)) + 1e-12))
        out = np.maximum.reduceat(sims, self._starts) if sims.size else sims
        return np.clip(out, 0.0, 1.0)


def centred(x: np.ndarray, center: np.ndarray | None) -> np.ndarray:
    """Rows of ``x`` ``(n, dim)`` as unit vectors, less ``center`` ``(dim,)``, as unit vectors again."""
    u = unit_rows(np.asarray(x, np.float32))
    return u if center is None else unit_rows(u - np.asarray(center, np.float32).reshape(1, -1))


def default_path() -> Path:
    """``<state dir>/taught-sounds.json``."""
    from edge.core.paths import state_dir

    return state_dir() / FILE_NAME

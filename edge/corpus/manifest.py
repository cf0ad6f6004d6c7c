"""Reading a homesounds-style manifest CSV: one reader for training, clip and stream evaluation.

A manifest has a header row and at least ``path`` (relative to the manifest's
folder) and ``label``; other columns (``fold``, ``license``, ...) are read by
the caller. Problems are one-line :class:`ManifestError` messages naming the
file and, where it applies, the line.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path

from edge.core.errors import EdgeError
from edge.core.files import FileProblem, check_path, open_file

#: a manifest of a few thousand clips is well under 1 MiB
MAX_MANIFEST_BYTES = 64 * 1024 * 1024


class ManifestError(EdgeError, ValueError):
    """A manifest that cannot be used; ``str(err)`` is the one-line message."""


def manifest_path(path: str | Path) -> Path:
    """``path``, or ``path/manifest.csv`` for a folder; :class:`ManifestError` if there is no file."""
    try:
        p = check_path(path)
        if p.is_dir():
            p = check_path(p / "manifest.csv")
        if p.exists():
            return p
    except FileProblem as e:
        raise ManifestError(str(e)) from None
    except OSError as e:
        raise ManifestError(f"{path}: cannot read ({e.strerror or type(e).__name__})") from None
    raise ManifestError(f"{p}: manifest not found")


def read_rows(path: str | Path, required: Iterable[str] = ("path", "label")) -> tuple[Path, list[tuple[int, dict]]]:
    """``(file, [(line number, row dict), ...])`` of a manifest with the ``required`` columns.

    UTF-8 with or without a byte-order mark (as spreadsheet programs write it).
    Rows with fewer fields than the header, or an empty ``path``/``label``, are
    errors naming their line; a manifest without rows is an error.
    """
    p = manifest_path(path)
    rows: list[tuple[int, dict]] = []
    try:
        raw = open_file(p, MAX_MANIFEST_BYTES)  # a regular file, bounded; never waits on a pipe
    except FileProblem as e:
        raise ManifestError(f"{p}: manifest not found" if e.missing else str(e)) from None
    try:
        with io.TextIOWrapper(raw, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            fields = reader.fieldnames or []
            missing = [c for c in required if c not in fields]
            if missing:
                raise ManifestError(f"{p}: manifest lacks the column(s) {', '.join(missing)}")
            for r in reader:
                n = reader.line_num
                if None in r.values():
                    raise ManifestError(f"{p}:{n}: row has fewer fields than the header ({len(fields)})")
                for c in ("path", "label"):
                    if c in fields and not r[c].strip():
                        raise ManifestError(f"{p}:{n}: empty {c}")
                rows.append((n, r))
    except UnicodeDecodeError:
        raise ManifestError(f"{p}: not UTF-8 text (save the CSV as UTF-8)") from None
    except csv.Error as e:
        raise ManifestError(f"{p}: not a readable CSV ({e})") from None
    if not rows:
        raise ManifestError(f"{p}: manifest has no rows")
    return p, rows

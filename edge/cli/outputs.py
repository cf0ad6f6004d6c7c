"""Checking a command's output paths before it spends minutes computing what it would write there."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from edge.core.errors import EdgeError
from edge.core.files import FileProblem, check_path

#: file types matplotlib writes without extra backends
PLOT_SUFFIXES = (".png", ".pdf", ".svg")


class OutputError(EdgeError, ValueError):
    """An output path that cannot be written; ``str(err)`` names the option, the path and why."""


def check_output_file(option: str, path: str | Path | None, suffixes: tuple[str, ...] = ()) -> Path | None:
    """``path`` if a file can be written there, else :class:`OutputError`; None passes through.

    Checks what can be known up front: the folder exists and is writable, the
    path is not a folder, and (with ``suffixes``) its file type is one of them.
    """
    if path is None:
        return None
    try:
        p = check_path(path)
    except FileProblem as e:
        raise OutputError(f"{option}: {e}") from None
    if p.is_dir():
        raise OutputError(f"{option}: {p} is a folder, expected a file path")
    if suffixes and p.suffix.lower() not in suffixes:
        raise OutputError(f"{option}: {p}: expected a {' / '.join(suffixes)} file")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"{option}: {p}: folder {parent} does not exist")
    _probe(option, p, parent)
    return p


def _probe(option: str, p: Path, folder: Path) -> None:
    # Create and remove a file there: permission bits say nothing for root, a read-only
    # mount or /proc, and the check must not leave anything behind.
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".edge-write-check-")
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise OutputError(f"{option}: {p}: not writable ({e.strerror or e})") from None
    if p.exists() and not os.access(p, os.W_OK):
        raise OutputError(f"{option}: {p}: not writable")


def make_output_dir(option: str, path: str | Path) -> Path:
    """Create the folder ``path`` (and its parents); :class:`OutputError` if that is impossible."""
    try:
        p = check_path(path)
    except FileProblem as e:
        raise OutputError(f"{option}: {e}") from None
    try:
        p.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError(f"{option}: {p} exists and is not a folder") from None
    except OSError as e:
        raise OutputError(f"{option}: cannot create {p} ({e.strerror or e})") from None
    _probe(option, p, p)
    return p

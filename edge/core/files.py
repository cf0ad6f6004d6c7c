"""Reading a file a person named: one bounded, validated way, for every stage.

A path in ``config.yaml`` or on the command line may be anything: a NUL byte
or a 300-byte name (which make ``os.stat`` raise instead of answering), a
folder, a named pipe (reading it waits for a writer that never comes),
``/dev/zero`` (endless), or a regular file of gigabytes. Every user-named file
is therefore opened through :func:`open_file` / :func:`read_bytes` /
:func:`read_text`:

* the path is checked first (:func:`check_path`): no NUL byte, no name over
  :data:`MAX_NAME_BYTES`, no path over :data:`MAX_PATH_BYTES`;
* it is opened non-blocking (a FIFO cannot make ``open`` wait) and ``fstat``-ed
  on the open descriptor (no window between the check and the read): anything
  but a regular file is refused;
* the read is bounded (``max_bytes``): a file over the bound is refused before
  a byte is read.

Every problem is a :class:`FileProblem` (an :class:`~edge.core.errors.EdgeError`,
exit status 2) with the path and the problem apart, so the caller can name
its key: ``config.yaml: mqtt.password_file: /run/pw: not a regular file (a named pipe)``.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

from edge.core.errors import EdgeError

#: longest name (one path component) Linux file systems take, in bytes
MAX_NAME_BYTES = 255
#: longest path the kernel takes (PATH_MAX less the terminating NUL), in bytes
MAX_PATH_BYTES = 4095
#: paths longer than this are shortened in messages (start and end kept)
SHOWN_PATH_CHARS = 200

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


class FileProblem(EdgeError, ValueError):
    """A user-named file that cannot be read; ``str(err)`` is ``<path>: <problem>``.

    Attributes: ``path`` (as given), ``problem`` (what is wrong, without the path),
    ``missing`` (True when the file does not exist: callers word that their own way).
    """

    def __init__(self, path: str | os.PathLike[str], problem: str, missing: bool = False) -> None:
        self.path = os.fspath(path) if not isinstance(path, str) else path
        self.problem = problem
        self.missing = missing
        super().__init__(f"{shown_path(self.path)}: {problem}")


def shown_path(path: str | os.PathLike[str]) -> str:
    """``path`` for a message: at most :data:`SHOWN_PATH_CHARS` characters (start and end kept)."""
    s = os.fspath(path)
    s = s if isinstance(s, str) else os.fsdecode(s)
    if not s:
        return '""'
    if len(s) <= SHOWN_PATH_CHARS:
        return s
    return s[: SHOWN_PATH_CHARS - 63] + "..." + s[-60:]


def check_path(path: str | os.PathLike[str]) -> Path:
    """``path`` as a :class:`Path` if the operating system can be asked about it, else :class:`FileProblem`."""
    s = os.fspath(path)
    if not isinstance(s, str):
        s = os.fsdecode(s)
    if not s:
        raise FileProblem(s, "empty path")
    if "\0" in s:
        raise FileProblem(s, "the path contains a NUL byte")
    try:
        raw = os.fsencode(s)
    except UnicodeError:
        raise FileProblem(s, "the path is not valid text for this file system") from None
    if len(raw) > MAX_PATH_BYTES:
        raise FileProblem(s, f"the path is {len(raw)} bytes long, longer than the {MAX_PATH_BYTES} bytes "
                             "a file system takes")
    if any(len(part) > MAX_NAME_BYTES for part in raw.split(b"/")):
        raise FileProblem(s, f"a name in the path is longer than the {MAX_NAME_BYTES} bytes a file system takes")
    return Path(s)


def reason(e: OSError) -> str:
    """An ``OSError`` as the few words a person needs (``permission denied``, ``no space left on device``)."""
    if e.errno is not None:
        return os.strerror(e.errno).lower()
    return e.strerror or type(e).__name__


def kind(mode: int) -> str:
    """What a non-regular file is, in words (``a named pipe``, ``a character device``, ...)."""
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def exists(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names anything; False (not an exception) for a path the OS cannot take."""
    try:
        os.stat(check_path(path))
    except (FileProblem, OSError):
        return False
    return True


def regular_file(path: str | os.PathLike[str], max_bytes: int | None = None) -> Path:
    """``path`` if it is a regular file (at most ``max_bytes``), for libraries that open it by name.

    Prefer :func:`open_file` where the reading is ours: it checks the very file it reads.
    """
    with open_file(path, max_bytes):
        pass
    return check_path(path)


def open_file(path: str | os.PathLike[str], max_bytes: int | None = None) -> BinaryIO:
    """A regular file opened for binary reading; :class:`FileProblem` for anything else.

    Never blocks: a named pipe is opened non-blocking and refused. ``max_bytes``
    refuses a larger file before anything is read.
    """
    p = check_path(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(p, flags)
    except FileNotFoundError:
        raise FileProblem(p, "file not found", missing=True) from None
    except NotADirectoryError:
        raise FileProblem(p, "file not found (a folder on its path is a file)", missing=True) from None
    except OSError as e:
        if e.errno == errno.ENXIO:  # what opening a socket says
            raise FileProblem(p, "not a regular file (a socket)") from None
        raise FileProblem(p, f"cannot open ({reason(e)})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise FileProblem(p, f"not a regular file ({kind(st.st_mode)})")
        if max_bytes is not None and st.st_size > max_bytes:
            raise FileProblem(p, f"{st.st_size} bytes, more than the {max_bytes} such a file may have")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path: str | os.PathLike[str], max_bytes: int) -> bytes:
    """The whole of a regular file of at most ``max_bytes`` bytes; :class:`FileProblem` otherwise."""
    with open_file(path, max_bytes) as f:
        try:
            data = f.read(max_bytes + 1)
        except OSError as e:
            raise FileProblem(path, f"cannot read ({reason(e)})") from None
    if len(data) > max_bytes:  # it grew since it was opened
        raise FileProblem(path, f"more than the {max_bytes} bytes such a file may have")
    return data


def write_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` beside ``path`` and rename it over ``path`` (raises OSError); returns the path.

    A process reading the file meanwhile (a listener reloading it) sees the old file or the new one, never
    half of one. Missing parent folders are made.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


def read_text(path: str | os.PathLike[str], max_bytes: int, encoding: str = "utf-8") -> str:
    """:func:`read_bytes` decoded (``utf-8``: a byte-order mark is kept); :class:`FileProblem` if it is not text."""
    data = read_bytes(path, max_bytes)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        raise FileProblem(path, f"not {encoding.upper()} text (byte {e.start})") from None

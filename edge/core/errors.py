"""The error root: every problem the program reports to a person is an :class:`EdgeError`.

``str(err)`` is one line that names the file and key (or the device, or the
option) and what is wrong with it; ``err.exit_code`` is the process exit
status the ``edge`` command returns for it (:data:`EXIT_USAGE` = 2 for bad
input: configuration, model, audio file, arguments; :data:`EXIT_FAILURE` = 1
for what went wrong at run time: a microphone that cannot be opened, an
output that cannot be written). The command catches ``EdgeError`` once, in
``edge.cli.app.main``; anything else is a bug and keeps its traceback.

Each stage defines its own subclasses next to the code that raises them
(``ConfigError``, ``ContractError``, ``AudioFileError``, ``SourceError``, ...),
keeping the built-in base they always had (mostly ``ValueError``), so that
``except ValueError`` in a caller still catches them.

One line means one line: ``str(err)`` escapes line breaks and other control
characters (a newline in a path, a key or a CSV field shows as ``\\n``) and is
at most :data:`MAX_MESSAGE_CHARS` long, wherever the message is printed or logged.
"""

from __future__ import annotations

EXIT_FAILURE = 1
EXIT_USAGE = 2
#: longest message shown to a person (a message that names a 4 KiB path is still read from its start)
MAX_MESSAGE_CHARS = 2000

# Line breaks (everything str.splitlines() splits on) and other control characters, escaped; so are
# lone surrogates (the bytes of a file name that is not UTF-8), which a UTF-8 stream cannot write.
_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))}
_ESCAPES.update({c: f"\\u{c:04x}" for c in range(0xD800, 0xE000)})
_ESCAPES.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t", 0x2028: "\\u2028", 0x2029: "\\u2029"})


def one_line_text(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` as one printable line: control characters and line breaks escaped, at most ``limit`` chars."""
    out = text.translate(_ESCAPES)
    return out if len(out) <= limit else out[: max(0, limit - 3)] + "..."


def describe(e: BaseException, limit: int = 300) -> str:
    """Any exception as one short line for a log: an EdgeError's own message, else its type and first words."""
    if isinstance(e, EdgeError):
        return str(e)
    try:
        text = str(e)
    except Exception:  # noqa: BLE001 - a broken __str__ must not break the report of the failure
        text = ""
    return one_line_text(f"{type(e).__name__}: {text}" if text else type(e).__name__, limit)


class EdgeError(Exception):
    """A one-line problem for the user; ``exit_code`` is the status the command exits with."""

    exit_code: int = EXIT_USAGE

    def __init__(self, *args: object, exit_code: int | None = None) -> None:
        super().__init__(*args)
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return one_line_text(super().__str__())

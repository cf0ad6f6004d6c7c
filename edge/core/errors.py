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
"""

from __future__ import annotations

EXIT_FAILURE = 1
EXIT_USAGE = 2


class EdgeError(Exception):
    """A one-line problem for the user; ``exit_code`` is the status the command exits with."""

    exit_code: int = EXIT_USAGE

    def __init__(self, *args: object, exit_code: int | None = None) -> None:
        super().__init__(*args)
        if exit_code is not None:
            self.exit_code = exit_code

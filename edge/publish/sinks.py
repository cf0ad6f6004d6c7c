"""Where events go. A sink receives every onset/offset and periodic figures.

The MQTT publisher (:mod:`edge.publish.mqtt`) and the JSON-lines printer below both
implement :class:`Sink`. Sinks are called from the processing thread, never
from the audio callback; a sink must not block on the network (queue instead).
"""

from __future__ import annotations

import sys
from typing import Any, Protocol, TextIO

from edge.core.errors import EXIT_FAILURE, EdgeError
from edge.core.events import Event


class Sink(Protocol):
    def start(self) -> None:
        """Called once before the first event (connect, announce availability)."""

    def event(self, ev: Event) -> None:
        """An onset or offset. Must return quickly."""

    def level(self, dbfs: float, top: list[tuple[str, float]], t: float) -> None:
        """Current level (dBFS) and top labels with scores, called once per model hop."""

    def status(self, health: dict[str, Any]) -> None:
        """Health figures (see :mod:`edge.service.health`), called periodically."""

    def health(self) -> dict[str, Any]:
        """The sink's own figures for the status report (the MQTT publisher: outbox depth, drops); {} = none."""

    def close(self) -> None:
        """Flush and release; called once at shutdown (after the last offset)."""


class BaseSink:
    """A sink that ignores everything: subclass it and override what you need."""

    def start(self) -> None:
        pass

    def event(self, ev: Event) -> None:
        pass

    def level(self, dbfs: float, top: list[tuple[str, float]], t: float) -> None:
        pass

    def status(self, health: dict[str, Any]) -> None:
        pass

    def health(self) -> dict[str, Any]:
        return {}

    def taught(self, names: tuple[str, ...], removed: tuple[str, ...]) -> None:
        """The sounds taught on this device (``edge enroll``), and those removed since (optional method)."""

    def close(self) -> None:
        pass


class SinkError(EdgeError, OSError):
    """An event could not be written to a local output (stdout, a file)."""

    exit_code = EXIT_FAILURE


class CollectSink(BaseSink):
    """Keeps every event in a list (evaluation, tests)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def event(self, ev: Event) -> None:
        self.events.append(ev)


class JsonLinesSink(BaseSink):
    """Prints one JSON object per event on a text stream (stdout by default)."""

    def __init__(self, stream: TextIO | None = None, only_offsets: bool = False) -> None:
        self.stream = stream or sys.stdout
        self.only_offsets = only_offsets

    def event(self, ev: Event) -> None:
        if self.only_offsets and ev.state != "off":
            return
        try:
            self.stream.write(ev.to_json() + "\n")
            self.stream.flush()
        except BrokenPipeError:
            raise  # the reader went away (`edge detect f.wav | head`): the CLI ends quietly
        except OSError as e:
            # A full disk or a dead terminal: one line naming the stream, not a traceback.
            name = getattr(self.stream, "name", "output stream")
            raise SinkError(f"{name}: cannot write events: {e.strerror or e}") from None

    def close(self) -> None:
        try:
            self.stream.flush()
        except (OSError, ValueError):
            pass

"""Commands from Home Assistant: ``<base>/<device>/set/<name>`` payloads -> :class:`Command` (pure).

The command topics (discovered as switch/select/button/number entities by
:func:`edge.publish.discovery.control_messages`):

===============================  ==================================  ==========================
topic (under ``<base>/<device>``)  payload                              changes
===============================  ==================================  ==========================
``set/listening``                ``ON`` / ``OFF``                     listening (privacy switch)
``set/detect/<label>``           ``ON`` / ``OFF``                     whether ``<label>`` is reported
``set/sensitivity``              one of the detector's sensitivities  ``detector.sensitivity``
``set/learn_background``         ``PRESS``, or seconds (a number)     learns this room's background
``set/learn_seconds``            seconds, 10-3600                     how long one press learns
``set/teach_name``               a sound name (``microwave_beep``)    which sound the button teaches
``set/teach``                    ``PRESS``, or seconds (1-60)         records one example of it
===============================  ==================================  ==========================

:func:`parse_command` only reads and checks; the service applies a command on its
processing thread (:mod:`edge.service.remote`). A bad payload raises
:class:`CommandError` with one line naming the topic and what was expected.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from edge.publish.discovery import LEARN_SECONDS_RANGE

LISTENING = "listening"
DETECT = "detect"
SENSITIVITY = "sensitivity"
LEARN = "learn_background"
LEARN_SECONDS = "learn_seconds"
TEACH_NAME = "teach_name"
TEACH = "teach"
#: seconds one press of "Teach" listens for an example (default, range)
TEACH_SECONDS = 5.0
TEACH_SECONDS_RANGE = (1.0, 60.0)
#: Longest payload read (bytes): commands are words or numbers.
MAX_PAYLOAD = 64

_TRUE = {"on", "true", "1"}
_FALSE = {"off", "false", "0"}


class CommandError(ValueError):
    """A command that cannot be applied; ``str(err)`` is one line naming the topic."""


@dataclass(frozen=True)
class Command:
    """One parsed command. ``value``: bool (listening, detect), str (sensitivity),
    float seconds (learn_seconds; learn_background with a number) or None (learn_background with PRESS)."""

    name: str
    value: bool | str | float | None
    label: str | None = None


def _text(name: str, payload: bytes) -> str:
    if len(payload) > MAX_PAYLOAD:
        raise CommandError(f"set/{name}: payload of {len(payload)} bytes, expected at most {MAX_PAYLOAD}")
    try:
        return payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise CommandError(f"set/{name}: payload is not UTF-8 text") from None


def _on_off(name: str, text: str) -> bool:
    t = text.lower()
    if t in _TRUE:
        return True
    if t in _FALSE:
        return False
    raise CommandError(f"set/{name}: expected ON or OFF, got {text!r}")


def _seconds(name: str, text: str) -> float:
    lo, hi = LEARN_SECONDS_RANGE
    try:
        v = float(text)
    except ValueError:
        raise CommandError(f"set/{name}: expected seconds ({lo:g}-{hi:g}), got {text!r}") from None
    if not lo <= v <= hi:  # also rejects nan
        raise CommandError(f"set/{name}: expected seconds in [{lo:g}, {hi:g}], got {text!r}")
    return v


def parse_command(name: str, payload: bytes, labels: Sequence[str], sensitivities: Sequence[str]) -> Command:
    """``name`` is the topic below ``<base>/<device>/set/`` (e.g. ``"detect/dog_bark"``).

    Raises :class:`CommandError` for an unknown command, label or value.
    """
    text = _text(name, payload)
    if name == LISTENING:
        return Command(LISTENING, _on_off(name, text))
    if name.startswith(DETECT + "/"):
        label = name[len(DETECT) + 1:]
        if label not in labels:
            raise CommandError(f"set/{name}: unknown label {label!r} (model labels: {', '.join(labels)})")
        return Command(DETECT, _on_off(name, text), label)
    if name == SENSITIVITY:
        if text.lower() not in sensitivities:
            raise CommandError(f"set/{name}: expected one of {', '.join(sensitivities)}, got {text!r}")
        return Command(SENSITIVITY, text.lower())
    if name == LEARN:
        return Command(LEARN, None if text.upper() in ("PRESS", "") else _seconds(name, text))
    if name == LEARN_SECONDS:
        return Command(LEARN_SECONDS, _seconds(name, text))
    if name == TEACH_NAME:
        return Command(TEACH_NAME, text)  # checked as a sound name where it is used (edge.detect.taught)
    if name == TEACH:
        if text.upper() in ("PRESS", ""):
            return Command(TEACH, None)
        lo, hi = TEACH_SECONDS_RANGE
        try:
            v = float(text)
        except ValueError:
            v = float("nan")
        if not lo <= v <= hi:
            raise CommandError(f"set/{name}: expected PRESS or seconds in [{lo:g}, {hi:g}], got {text!r}")
        return Command(TEACH, v)
    raise CommandError(f"set/{name}: unknown command (known: {LISTENING}, {DETECT}/<label>, {SENSITIVITY}, "
                       f"{LEARN}, {LEARN_SECONDS}, {TEACH_NAME}, {TEACH})")

"""Which clip licences a model or a scene set may use: ``all``, or ``commercial`` (no NC / Sampling+ clips).

Shared by the training recipe (``edge train --licence``) and the soundscape
generator (``edge eval-stream --make --licence``), so both draw the same clips.
"""

from __future__ import annotations

#: licence strings (manifest column ``license``) that forbid commercial use
NON_COMMERCIAL_PREFIXES = ("CC-BY-NC", "CC-Sampling+")
LICENCE_FILTERS = ("all", "commercial")


def commercial_ok(licence: str) -> bool:
    """True when a clip under ``licence`` may be used commercially."""
    return not licence.startswith(NON_COMMERCIAL_PREFIXES)


def check_filter(which: str) -> None:
    """Raise ValueError (one line) unless ``which`` is one of :data:`LICENCE_FILTERS`."""
    if which not in LICENCE_FILTERS:
        raise ValueError(f"licence filter must be 'all' or 'commercial', got {which!r}")


def licence_allows(licence: str, which: str) -> bool:
    """True when a clip under ``licence`` passes the filter ``which`` (checked with :func:`check_filter`)."""
    return which == "all" or commercial_ok(licence)

"""Which clip licences a model or a scene set may use: ``all``, or ``commercial`` (no NC / Sampling+ clips).

Shared by the training recipe (``edge train --licence``) and the soundscape
generator (``edge eval-stream --make --licence``), so both draw the same clips.
"""

from __future__ import annotations

import re

#: licence families (manifest column ``license``, compared case- and spacing-blind) that allow
#: commercial use; anything else, an empty cell included, does not: the filter fails closed
COMMERCIAL_PREFIXES = ("CC0", "CC-BY-", "ODBL", "GPL", "LGPL", "PDDL", "MIT", "APACHE", "PUBLIC-DOMAIN")
#: words that forbid commercial use wherever they appear ("CC-BY-NC-3.0 (...; clip itself CC0-1.0)")
NON_COMMERCIAL_WORDS = frozenset({"NC", "NONCOMMERCIAL", "NON-COMMERCIAL", "SAMPLING", "SAMPLING+"})
LICENCE_FILTERS = ("all", "commercial")


def _normalise(licence: str) -> str:
    return re.sub(r"[\s_]+", "-", licence.strip().upper())


def commercial_ok(licence: str) -> bool:
    """True when a clip under ``licence`` may be used commercially (unknown or empty: False)."""
    n = _normalise(licence)
    words = set(re.split(r"[^A-Z0-9+]+", n)) | set(re.split(r"[^A-Z0-9+-]+", n))
    if words & NON_COMMERCIAL_WORDS:
        return False
    return n.startswith(COMMERCIAL_PREFIXES)


def check_filter(which: str) -> None:
    """Raise ValueError (one line) unless ``which`` is one of :data:`LICENCE_FILTERS`."""
    if which not in LICENCE_FILTERS:
        raise ValueError(f"licence filter must be 'all' or 'commercial', got {which!r}")


def licence_allows(licence: str, which: str) -> bool:
    """True when a clip under ``licence`` passes the filter ``which`` (checked with :func:`check_filter`)."""
    return which == "all" or commercial_ok(licence)

"""Sound level: mean square of samples -> dBFS."""

from __future__ import annotations

import math

#: Level reported for digital silence, dBFS.
LEVEL_FLOOR_DBFS = -120.0


def level_dbfs(mean_square: float) -> float:
    """20*log10(RMS) from a mean square, floored at -120 dBFS (a full-scale sine is -3 dBFS)."""
    if mean_square <= 0.0:
        return LEVEL_FLOOR_DBFS
    return max(LEVEL_FLOOR_DBFS, 10.0 * math.log10(mean_square))

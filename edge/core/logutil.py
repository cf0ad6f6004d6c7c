"""Logging set-up with a rate limit, so a flapping device cannot fill an SD card."""

from __future__ import annotations

import logging
import sys
import time


class RateLimitFilter(logging.Filter):
    """Lets at most ``burst`` records per message template through per ``period_s``.

    Records are keyed by logger name and the unformatted message, so
    "microphone lost (%s)" repeated with different arguments counts as one
    message. When a window ends with suppressed records, the next record that
    passes carries a "(N similar messages suppressed)" suffix. A record logged
    with ``extra={"always": True}`` (the outcome of a reload) always passes.
    """

    def __init__(self, period_s: float = 60.0, burst: int = 5, max_keys: int = 1024) -> None:
        super().__init__()
        self.period_s = period_s
        self.burst = burst
        self.max_keys = max_keys
        self._windows: dict[tuple[str, str], list[float]] = {}  # key -> [window start, count, suppressed]

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "always", False):  # the answer to an operator's action (a reload): never suppressed
            return True
        key = (record.name, str(record.msg))
        now = time.monotonic()
        w = self._windows.get(key)
        if w is None or now - w[0] >= self.period_s:
            suppressed = int(w[2]) if w is not None else 0
            if len(self._windows) >= self.max_keys and w is None:
                self._windows.clear()  # bounded memory: forget old templates
            self._windows[key] = [now, 1, 0]
            if suppressed:
                record.msg = f"{record.msg} ({suppressed} similar messages suppressed)"
            return True
        if w[1] < self.burst:
            w[1] += 1
            return True
        w[2] += 1
        return False


def setup_logging(level: str = "info", period_s: float = 60.0, burst: int = 5) -> None:
    """Log to stderr (journald picks it up under systemd), one line per record."""
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RateLimitFilter(period_s, burst))
    root.addHandler(handler)
    root.setLevel(level.upper())


def one_line(e: BaseException, last: bool = False) -> str:
    """An exception as one short line for a user message: its first (or ``last``) line, <= 160 chars.

    libsndfile puts the useful part last; most others first.
    """
    msg = str(e).strip()
    return (msg.splitlines()[-1 if last else 0] if msg else type(e).__name__)[:160]

"""``AlertSink``: one alert output as a sink of the listener.

``event`` runs on the processing thread: it looks up the label's rule, applies
the rate limit and queues an :class:`~edge.publish.alerts.worker.Alert`, then
returns (microseconds; no I/O). The output's own thread(s) play it. Nothing an
output does (a device that vanished, a command that fails, a GPIO line that
cannot be claimed) reaches the listener: it is logged, one line per streak.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from edge.core.events import Event
from edge.publish.alerts.rules import RateLimit, RuleBook
from edge.publish.alerts.worker import Alert, AlertQueue, FailureLog, Output, OutputThread, stats
from edge.publish.sinks import BaseSink

log = logging.getLogger("edge.alerts")

#: Seconds ``close`` lets the command output finish what is queued (the offsets of the last events) before it
#: kills what still runs; tones and GPIO rhythms stop at once at shutdown.
CLOSE_GRACE_S = 1.0


class AlertSink(BaseSink):
    """Queues the alerts of one output for its threads.

    Args:
        name: the output's name in rules and logs (``earcon``, ``haptic``, ``led``, ``command``).
        output: what plays an alert (:class:`~edge.publish.alerts.worker.Output`).
        book: the resolved rules.
        states: event states that alert on this output (``("on",)``: onsets; the command: both).
        max_queue, max_delay_s: see :class:`~edge.publish.alerts.worker.AlertQueue`.
        threads: how many alerts may play at once (1 for a device; the command: ``max_running``).
        urgent_thread: one more thread kept for urgent alerts only, so they never wait for a free one.
        close_grace_s: seconds :meth:`close` lets queued alerts finish (0: stop at once).
        clock: ``time.monotonic`` (seconds).
    """

    def __init__(self, name: str, output: Output, book: RuleBook, states: tuple[str, ...] = ("on",),
                 max_queue: int = 8, max_delay_s: float = 5.0, threads: int = 1, urgent_thread: bool = False,
                 close_grace_s: float = 0.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.output = output
        self.book = book
        self.states = states
        self.clock = clock
        self.close_grace_s = close_grace_s
        self.limit = RateLimit(clock)
        self.queue = AlertQueue(max_queue, max_delay_s, clock)
        self.failures = FailureLog(name)
        self.threads = [OutputThread(f"{name}-{i}", self.queue, output, self.failures, prepare=i == 0)
                        for i in range(threads)]
        if urgent_thread:
            self.threads.append(OutputThread(f"{name}-urgent", self.queue, output, self.failures, urgent_only=True,
                                             prepare=False))
        self.queue.on_put = self._preempt
        self._started = False

    def _preempt(self, alert: Alert) -> None:
        for t in self.threads:
            t.preempt_for(alert)

    def start(self) -> None:
        if not self._started:
            self._started = True
            for t in self.threads:
                t.start()

    def event(self, ev: Event) -> None:
        try:
            rule = self.book.rule(ev.label)
            if rule.outputs is not None and self.name not in rule.outputs:
                return
            if not self.limit.admit(ev, rule):
                return
            if ev.state != "on":
                self.queue.end(ev.id)
            if ev.state in self.states:
                now = self.clock()
                self.queue.put(Alert(rule, ev, now, now))
        except Exception:  # a bug here must not stop the listener; say it once per streak
            self.failures.failed(f"cannot queue the alert for {ev.label} {ev.state}")
            log.debug("alert sink %s", self.name, exc_info=True)

    def stats(self) -> dict[str, Any]:
        """Played, interrupted, dropped (queue full / too late), failed, rate-limited, queued now."""
        return {**stats(self.threads, self.queue, self.failures), "rate_limited": self.limit.limited,
                "queued": len(self.queue)}

    def close(self) -> None:
        self.queue.close(keep_due=self.close_grace_s > 0)
        deadline = self.clock() + self.close_grace_s
        for t in self.threads:
            if t.is_alive():
                t.join(max(0.0, deadline - self.clock()))
        busy = [t for t in self.threads if t.is_alive()]
        for t in busy:  # still playing after the grace period: stop now
            t.interrupt.set()
        try:
            self.output.close()
        except Exception as e:  # noqa: BLE001 - closing a vanished device must not mask shutdown
            log.debug("alerts.%s: close: %s", self.name, e)
        for t in busy:
            t.join(0.5)
        s = self.stats()
        if any(s[k] for k in ("played", "failures", "dropped_full", "dropped_late", "rate_limited")):
            log.info("alerts.%s: %d played, %d cut short, %d rate-limited, %d dropped "
                     "(queue full), %d dropped (too late), %d failed", self.name, s["played"], s["interrupted"],
                     s["rate_limited"], s["dropped_full"], s["dropped_late"], s["failures"])

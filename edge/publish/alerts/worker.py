"""The alert queue and the threads that play alerts, so a sink's ``event`` returns at once.

:class:`AlertQueue` holds alerts in priority order with the time each is due
(now, or later for a repeat). A higher-priority alert goes ahead of every
lower one and interrupts one that is playing (when the output can stop
mid-way: tones and GPIO rhythms can, a command cannot). ``urgent`` alerts are
never dropped; others are dropped (and counted) when the queue is full or when
they could not start within ``max_delay_s``. :class:`OutputThread` takes the
next due alert and plays it; an output that fails logs one line per streak of
failures (:class:`FailureLog`) and the thread goes on with the next alert.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from edge.core.events import Event
from edge.core.logutil import one_line
from edge.publish.alerts.patterns import Rule
from edge.publish.alerts.settings import PRIORITIES

log = logging.getLogger("edge.alerts")

URGENT = PRIORITIES.index("urgent")
_seq = itertools.count()


@dataclass
class Alert:
    """One thing to play or run: an event's onset/offset under its rule, or a repeat of an onset.

    ``due`` and ``t_event`` are ``time.monotonic()`` seconds: when it may start, and when its event
    reached the sink (latency is counted from there).
    """

    rule: Rule
    event: Event
    due: float
    t_event: float
    repeat: int = 0  # 0 = the event itself, n = its n-th repeat
    seq: int = field(default_factory=lambda: next(_seq))

    @property
    def priority(self) -> int:
        return PRIORITIES.index(self.rule.priority)

    @property
    def urgent(self) -> bool:
        return self.priority >= URGENT


class Output(Protocol):
    """What an alert output does; every method runs on the output's own thread."""

    #: whether :meth:`play` stops early when ``interrupt`` is set (a higher priority arrived)
    preemptible: bool

    def prepare(self) -> None:
        """Open or check the device once, before the first alert (may raise; logged as a failure)."""

    def play(self, alert: Alert, interrupt: threading.Event) -> None:
        """Play or run ``alert``; raise :class:`OutputFailed` (or any exception) when the output fails."""

    def close(self) -> None:
        """Release the device."""


class OutputFailed(Exception):
    """The output could not do its job; ``str(err)`` is the one line that is logged."""


class FailureLog:
    """One warning when an output starts failing, one info line when it works again; the rest at debug level."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.failing = False
        self.failures = 0

    def failed(self, msg: str) -> None:
        self.failures += 1
        if self.failing:
            log.debug("alerts.%s: %s", self.name, msg)
            return
        self.failing = True
        log.warning("alerts.%s: %s; listening goes on", self.name, msg)

    def ok(self) -> None:
        if self.failing:
            self.failing = False
            log.info("alerts.%s: works again", self.name)


class AlertQueue:
    """Thread-safe queue of :class:`Alert` s: highest priority first, then earliest due, then first in.

    Args:
        max_queue: non-urgent alerts beyond this many: the least urgent, oldest one is dropped.
        max_delay_s: a non-urgent alert still waiting this long after it was due is dropped.
        clock: ``time.monotonic`` (seconds).
    """

    def __init__(self, max_queue: int, max_delay_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_queue = max_queue
        self.max_delay_s = max_delay_s
        self.clock = clock
        self._items: list[Alert] = []
        self._cond = threading.Condition()
        self._closed = False
        self._open: set[str] = set()  # event ids whose repeats are still wanted
        self._busy: set[str] = set()  # event ids with an alert playing: its offset waits (order kept per event)
        self.dropped_full = 0
        self.dropped_late = 0
        #: called (under the lock) with an alert that was just queued: the owner interrupts a lower one
        self.on_put: Callable[[Alert], None] | None = None

    def put(self, alert: Alert) -> None:
        with self._cond:
            if self._closed:
                return
            if alert.rule.repeat_s > 0 and alert.event.state == "on":
                self._open.add(alert.event.id)
            self._items.append(alert)
            waiting = [a for a in self._items if not a.urgent]
            if len(waiting) > self.max_queue:
                victim = min(waiting, key=lambda a: (a.priority, a.due, a.seq))
                self._items.remove(victim)
                self.dropped_full += 1
                log.debug("alerts: queue full, dropped %s %s", victim.rule.label, victim.event.state)
            if self.on_put is not None:
                self.on_put(alert)
            self._cond.notify_all()

    def repeat_after(self, alert: Alert, started: float) -> None:
        """Queue the next repeat of ``alert`` (which started at ``started``) if its event still lasts."""
        with self._cond:
            if self._closed or alert.event.id not in self._open:
                return
        self.put(Alert(alert.rule, alert.event, started + alert.rule.repeat_s, alert.t_event, alert.repeat + 1))

    def end(self, event_id: str) -> None:
        """The event ended: no more repeats of it (a queued one is removed)."""
        with self._cond:
            self._open.discard(event_id)
            self._items = [a for a in self._items if not (a.repeat and a.event.id == event_id)]

    def lasting(self, event_id: str) -> bool:
        with self._cond:
            return event_id in self._open

    def get(self, urgent_only: bool = False) -> Alert | None:
        """The next alert that is due (waits for it); None once closed and nothing is due."""
        with self._cond:
            while True:
                now = self.clock()
                late = [a for a in self._items if not a.urgent and now - a.due > self.max_delay_s]
                for a in late:
                    self._items.remove(a)
                    self.dropped_late += 1
                    log.debug("alerts: %s %s dropped: not started within %g s", a.rule.label, a.event.state,
                              self.max_delay_s)
                mine = [a for a in self._items if (a.urgent or not urgent_only) and a.event.id not in self._busy]
                due = [a for a in mine if a.due <= now]
                if due:
                    best = max(due, key=lambda a: (a.priority, -a.due, -a.seq))
                    self._items.remove(best)
                    self._busy.add(best.event.id)
                    return best
                if self._closed:
                    return None
                wait = min((a.due for a in mine), default=now + 1.0) - now
                self._cond.wait(max(0.0, min(wait, 1.0)))

    def done(self, alert: Alert) -> None:
        """``alert`` (from :meth:`get`) has played: the next alert of its event may start."""
        with self._cond:
            self._busy.discard(alert.event.id)
            self._cond.notify_all()

    def close(self, keep_due: bool = True) -> None:
        """No more alerts are taken; future repeats are dropped, and what is due now too unless ``keep_due``."""
        with self._cond:
            self._closed = True
            now = self.clock()
            self._items = [a for a in self._items if keep_due and a.due <= now]
            self._open.clear()
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)


class OutputThread(threading.Thread):
    """Plays the alerts of one queue on one output, one at a time; a failure is logged, never raised."""

    def __init__(self, name: str, queue: AlertQueue, output: Output, failures: FailureLog,
                 urgent_only: bool = False, prepare: bool = True,
                 on_played: Callable[[Alert, float], None] | None = None) -> None:
        super().__init__(name=f"edge-alert-{name}", daemon=True)
        self.queue = queue
        self.output = output
        self.failures = failures
        self.urgent_only = urgent_only
        self.do_prepare = prepare
        self.on_played = on_played
        self.interrupt = threading.Event()
        self.current: Alert | None = None
        self.played = 0
        self.interrupted = 0

    def preempt_for(self, alert: Alert) -> None:
        """Called under the queue's lock when ``alert`` was queued: stop a less urgent one that is playing."""
        cur = self.current
        if cur is not None and self.output.preemptible and alert.priority > cur.priority and alert.due <= \
                self.queue.clock():
            self.interrupt.set()

    def run(self) -> None:
        if self.do_prepare:
            try:
                self.output.prepare()
            except Exception as e:  # noqa: BLE001 - any failure of an output is logged, never fatal
                self.failures.failed(_describe(e))
        while True:
            alert = self.queue.get(self.urgent_only)
            if alert is None:
                return
            self.interrupt.clear()
            self.current = alert
            started = self.queue.clock()
            try:
                self.output.play(alert, self.interrupt)
            except Exception as e:  # noqa: BLE001
                self.failures.failed(_describe(e))
            else:
                self.failures.ok()
                self.played += 1
                if self.on_played is not None:
                    self.on_played(alert, started)
            finally:
                if self.interrupt.is_set():
                    self.interrupted += 1
                self.current = None
                self.queue.done(alert)
            if alert.event.state == "on" and alert.rule.repeat_s > 0:
                self.queue.repeat_after(alert, started)


def _describe(e: BaseException) -> str:
    if isinstance(e, OutputFailed):
        return str(e)
    return f"{type(e).__name__}: {one_line(e)}"


def stats(threads: list[OutputThread], queue: AlertQueue, failures: FailureLog) -> dict[str, Any]:
    """Counters of one output: played, interrupted, dropped (queue full / too late), failures."""
    return {"played": sum(t.played for t in threads), "interrupted": sum(t.interrupted for t in threads),
            "dropped_full": queue.dropped_full, "dropped_late": queue.dropped_late, "failures": failures.failures}

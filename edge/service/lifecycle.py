"""Process lifecycle of ``edge run``: signals, configuration reload, systemd notification.

* SIGTERM / SIGINT: :meth:`Listener.stop` - capture stops, the audio already
  captured is processed, open events end, and the sinks close (the MQTT
  publisher waits for the outbox to drain, then publishes ``offline``). Exit 0.
* SIGHUP: the configuration file is read again *in the processing loop*
  (between two reads of the ring buffer, so no audio is dropped) and its
  ``detector`` section (thresholds, enabled labels, persistence, ...) applied
  with :meth:`Listener.reconfigure`. *Any* failure (an invalid or unreadable
  file, a named pipe or a device at its path, a bad home-background file, a
  bug) is rejected with one log line and the running configuration is kept:
  the listener never stops listening because of a reload. Files are read
  through :mod:`edge.core.files` (non-blocking, bounded), so a reload cannot
  stall the loop either. Other sections need a restart. A SIGHUP that comes
  while ``edge run`` is still starting (:func:`hold_reloads_until_running`) is
  kept and applied on the first pass of the loop, instead of ending the process
  (the default action of SIGHUP).
* systemd (``Type=notify``): ``READY=1`` once the first inference ran (or the
  microphone was found lost/silent, so the unit does not hang in start-up),
  ``WATCHDOG=1`` every half ``WATCHDOG_USEC`` from the processing loop (a stalled
  loop stops pinging and systemd restarts the service), ``STOPPING=1`` on shutdown.
* Home Assistant (``control``, :class:`edge.service.remote.RemoteControl`): its commands
  are applied in the same place as a reload, and a reload keeps the settings made from
  Home Assistant on top of the file's (they override ``config.yaml`` until changed again).
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from edge.core.errors import EdgeError, describe
from edge.service.config import RESTART_DETECTOR_KEYS, Config
from edge.service.systemd import Notifier

log = logging.getLogger("edge.lifecycle")

#: set by a SIGHUP that came before a :class:`Lifecycle` took the signal over
_startup_hup = threading.Event()


def hold_reloads_until_running() -> None:
    """Called first thing by ``edge run``: a SIGHUP before the listener runs is remembered, not fatal.

    Loading the model and opening the microphone takes a second or more; ``systemctl reload`` or
    ``edge enroll`` followed by a SIGHUP in that time would otherwise kill the listener. The
    :class:`Lifecycle` applies the remembered reload on its first tick.
    """
    _startup_hup.clear()
    signal.signal(signal.SIGHUP, lambda signum, frame: _startup_hup.set())


class Lifecycle:
    """Hooks a :class:`~edge.service.listener.Listener` up to signals and systemd.

    Args:
        listener: the listener to run (its ``on_tick`` is taken over).
        reload_config: returns the freshly loaded configuration (raises ``ConfigError``, or anything else:
            every failure is caught and logged).
        notifier: systemd notifier (default: from the environment; a no-op outside systemd).
        control: settings from Home Assistant (:class:`edge.service.remote.RemoteControl`), or None.
    """

    def __init__(self, listener: Any, reload_config: Callable[[], Config] | None = None,
                 notifier: Notifier | None = None, control: Any = None) -> None:
        self.listener = listener
        self.reload_config = reload_config
        self.control = control
        self.notifier = notifier or Notifier()
        wd = self.notifier.watchdog_s
        self.ping_every_s = wd / 2.0 if wd else None
        if self.ping_every_s is not None and hasattr(listener, "tick_s"):
            # The loop must come round to ping even while no audio arrives (microphone lost).
            listener.tick_s = min(listener.tick_s, self.ping_every_s / 2.0)
        self.ready = False
        self.reloads = 0
        self._reload = threading.Event()
        self._stopping = False
        self._stop_requested = False
        self._next_ping = 0.0
        listener.on_tick = self.tick

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_hup)
        if _startup_hup.is_set():  # it came while starting: the configuration read at start may be stale
            _startup_hup.clear()
            self._reload.set()

    def _on_stop(self, signum: int, frame: Any) -> None:
        # STOPPING=1 is sent from the processing loop (tick / run's end), never
        # from here, so no watchdog ping of the loop can follow it.
        self._stop_requested = True
        self.listener.stop()

    def _on_hup(self, signum: int, frame: Any) -> None:
        self._reload.set()  # the work happens in tick(), on the processing thread

    def _notify_stopping(self) -> None:
        if not self._stopping:
            self._stopping = True
            self.notifier.stopping()

    def tick(self) -> None:
        """Called by the listener on every pass of its processing loop."""
        lis = self.listener
        listening = getattr(lis, "listening", True)
        if not self.ready and (lis.health_state.inferences > 0 or lis.mic != "ok" or not listening):
            self.ready = True
            self.notifier.ready(f"microphone {lis.mic}" if lis.mic != "ok" else
                                "listening" if listening else "not listening (switched off in Home Assistant)")
        if self._stop_requested:
            self._notify_stopping()
        if self.ping_every_s is not None and not self._stopping:  # no pings once STOPPING=1 was sent
            now = time.monotonic()
            if now >= self._next_ping:
                self._next_ping = now + self.ping_every_s
                self.notifier.watchdog()
        if self._reload.is_set():
            self._reload.clear()
            self.reload()
        if self.control is not None:
            self.control.tick()

    def reload(self) -> bool:
        """Reload and apply the detector settings; True if applied."""
        if self.reload_config is None:
            log.warning("SIGHUP: no configuration file to reload", extra={"always": True})
            return False
        old = self.listener.cfg
        try:
            raw = self.reload_config()
            new = self.control.overlay(raw) if self.control is not None else raw
            self.listener.reconfigure(new)  # builds everything first, then swaps: a failure changes nothing
        except Exception as e:  # noqa: BLE001 - whatever went wrong, the always-on job keeps listening
            log.error("config reload rejected, keeping the running configuration: %s", describe(e),
                      extra={"always": True})  # each SIGHUP gets its answer, however many came before
            if not isinstance(e, EdgeError):  # not an expected problem: keep the details for a bug report
                log.debug("config reload failure", exc_info=True)
            return False
        self.reloads += 1
        others = dataclasses.replace(new, detector=old.detector) != old
        kept = [f"detector.{k}" for k in RESTART_DETECTOR_KEYS if getattr(new.detector, k) != getattr(old.detector, k)]
        if others:
            kept.append("other sections")
        log.info("configuration reloaded from %s: detector settings applied%s", new.source_file,
                 f"; changes to {' and '.join(kept)} need a restart" if kept else "", extra={"always": True})
        if self.control is not None:
            self.control.reloaded(raw)
        return True

    def run(self) -> Any:
        """Install the handlers and run the listener to the end; returns its stats."""
        self.install_signal_handlers()
        try:
            return self.listener.run()
        finally:
            if self.control is not None:
                self.control.close()
            self._notify_stopping()

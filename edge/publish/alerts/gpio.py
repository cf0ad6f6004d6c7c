"""Haptic and LED alerts: a rule's rhythm on a GPIO line, through gpiozero.

The line is claimed on first use (at start, and again after a failure), so a
board without GPIO, a missing pin library or a line another program holds
logs one line and the listener goes on; the next alert tries to claim it
again. A vibration motor (through a transistor or a driver) and an LED are
the same thing to the code: a digital output switched on for the pattern's
tones and off for its pauses. ``pin_factory: mock`` (gpiozero's
:class:`~gpiozero.pins.mock.MockFactory`) runs the same code with no hardware.
"""

from __future__ import annotations

import threading
import warnings
from typing import Any

from edge.core.logutil import one_line
from edge.publish.alerts.patterns import on_off
from edge.publish.alerts.settings import GpioConfig
from edge.publish.alerts.worker import Alert, OutputFailed


def make_pin_factory(name: str) -> Any:
    """The gpiozero pin factory registered under ``name`` (lgpio, rpigpio, pigpio, native, mock)."""
    from importlib.metadata import entry_points

    for ep in entry_points(group="gpiozero_pin_factories"):
        if ep.name == name:
            return ep.load()()
    raise OutputFailed(f"gpiozero has no pin factory {name!r}")


class GpioOutput:
    """Switches one GPIO line with the rhythm of a rule's pattern (an :class:`~edge.publish.alerts.worker.Output`).

    Args:
        cfg: the ``alerts.haptic`` or ``alerts.led`` section.
        pin_factory: a gpiozero pin factory object to use (tests pass a ``MockFactory``); None = ``cfg.pin_factory``,
            else gpiozero's default.
    """

    preemptible = True

    def __init__(self, cfg: GpioConfig, pin_factory: Any = None) -> None:
        self.cfg = cfg
        self.factory = pin_factory
        self.device: Any = None

    def _claim(self) -> Any:
        if self.device is not None:
            return self.device
        try:
            from gpiozero import DigitalOutputDevice
        except ImportError:
            raise OutputFailed("gpiozero is not installed (pip install 'edge-listener[hearable]')") from None
        try:
            with warnings.catch_warnings():  # gpiozero warns once per pin library it falls back from
                warnings.simplefilter("ignore")
                factory = self.factory
                if factory is None and self.cfg.pin_factory is not None:
                    factory = self.factory = make_pin_factory(self.cfg.pin_factory)
                self.device = DigitalOutputDevice(self.cfg.pin, active_high=self.cfg.active_high,
                                                  initial_value=False, pin_factory=factory)
        except OutputFailed:
            raise
        except Exception as e:  # noqa: BLE001 - BadPinFactory, GPIOPinInUse, PinInvalidPin, PermissionError...
            raise OutputFailed(f"cannot claim GPIO line {self.cfg.pin}: {type(e).__name__}: {one_line(e)}") from None
        return self.device

    def prepare(self) -> None:
        self._claim()

    def play(self, alert: Alert, interrupt: threading.Event) -> None:
        dev = self._claim()
        try:
            for on, seconds in on_off(alert.rule.steps):
                if on:
                    dev.on()
                else:
                    dev.off()
                if interrupt.wait(seconds):
                    return
        except Exception as e:  # noqa: BLE001 - the line went away under us: claim it afresh next time
            self.close()
            raise OutputFailed(f"GPIO line {self.cfg.pin} failed: {type(e).__name__}: {one_line(e)}") from None
        finally:
            if self.device is not None:
                try:
                    dev.off()
                except Exception:  # noqa: BLE001
                    pass

    def close(self) -> None:
        dev, self.device = self.device, None
        if dev is not None:
            try:
                dev.off()
                dev.close()
            except Exception:  # noqa: BLE001
                pass

"""Haptic and LED alerts through gpiozero: the rhythm on the line (gpiozero's own MockFactory, since no pin exists
here; everything above the pin factory is the real code), and a GPIO that cannot be had."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

gpiozero = pytest.importorskip("gpiozero", reason="needs gpiozero (the 'hearable' / 'test' extra)")
from gpiozero.pins.mock import MockFactory  # noqa: E402

from edge.core.events import Event  # noqa: E402
from edge.publish.alerts.gpio import GpioOutput  # noqa: E402
from edge.publish.alerts.patterns import on_off, parse_pattern  # noqa: E402
from edge.publish.alerts.rules import RuleBook  # noqa: E402
from edge.publish.alerts.settings import AlertRule, GpioConfig  # noqa: E402
from edge.publish.alerts.sink import AlertSink  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
LABELS = ("smoke_alarm", "door_knock", "dog_bark")


def ev(label: str, eid: str, state: str = "on") -> Event:
    return Event(eid, label, state, 1.0, None, time.time(), None, 0.9, 0.8, -20.0, "test")


def runs_on_pin(pin: object, since: float) -> list[tuple[bool, float]]:
    """``(state, seconds)`` runs from the mock pin's recorded state changes after ``since``."""
    states = [(s.timestamp, bool(s.state)) for s in pin.states]  # type: ignore[attr-defined]
    t = 0.0
    changes = []
    for dt, st in states:
        t += dt  # MockPin keeps the time since the previous change
        changes.append((t, st))
    changes = [c for c in changes if c[0] >= since]
    while changes and not changes[0][1]:  # the state the line was in before (off)
        changes.pop(0)
    return [(a[1], b[0] - a[0]) for a, b in zip(changes, changes[1:], strict=False)]


def test_a_vibration_motor_plays_the_labels_rhythm_on_its_gpio_line() -> None:
    factory = MockFactory()
    book = RuleBook({"door_knock": AlertRule(pattern="200:0.1 0:0.12 200:0.2")}, LABELS,
                    {"safety": ("smoke_alarm",)}, "x")
    sink = AlertSink("haptic", GpioOutput(GpioConfig(enabled=True, pin=17), factory), book)
    sink.start()
    try:
        time.sleep(0.1)
        pin = factory.pin(17)
        pin.clear_states()
        sink.event(ev("door_knock", "k"))
        time.sleep(0.7)
    finally:
        sink.close()
    got = runs_on_pin(pin, 0.0)
    want = on_off(parse_pattern("200:0.1 0:0.12 200:0.2"))
    assert [s for s, _ in got] == [s for s, _ in want], got
    for (_, g), (_, w) in zip(got, want, strict=True):
        assert abs(g - w) < 0.03, (got, want)
    assert not pin.state  # off after the pattern
    assert sink.stats()["played"] == 1 and sink.stats()["failures"] == 0


def test_an_active_low_led_is_driven_low_while_on() -> None:
    factory = MockFactory()
    book = RuleBook({}, LABELS, {"safety": ("smoke_alarm",)}, "x")
    out = GpioOutput(GpioConfig(enabled=True, pin=22, active_high=False), factory)
    sink = AlertSink("led", out, book)
    sink.start()
    try:
        time.sleep(0.1)
        pin = factory.pin(22)
        assert pin.state  # idle = off = high
        sink.event(ev("smoke_alarm", "s"))
        time.sleep(0.05)
        assert not pin.state  # the first beep of the smoke pattern: on = low
    finally:
        sink.close()


def test_a_line_another_output_holds_is_one_failure_and_the_other_output_keeps_working() -> None:
    factory = MockFactory()
    book = RuleBook({}, LABELS, {"safety": ("smoke_alarm",)}, "x")
    first = AlertSink("haptic", GpioOutput(GpioConfig(enabled=True, pin=5), factory), book)
    second = AlertSink("led", GpioOutput(GpioConfig(enabled=True, pin=5), factory), book)
    first.start()
    time.sleep(0.1)
    second.start()
    try:
        for i in range(3):
            first.event(ev("smoke_alarm", f"s{i}"))
            second.event(ev("smoke_alarm", f"s{i}"))
            time.sleep(0.7)
    finally:
        first.close()
        second.close()
    assert first.stats()["played"] >= 3 and first.stats()["failures"] == 0
    assert second.stats()["played"] == 0 and second.stats()["failures"] >= 3


def test_without_any_gpio_the_listener_logs_one_line_and_keeps_listening(tmp_path: Path, tiny_model: Path,
                                                                        burst_wav) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("detector: {release_s: 0.1}\nalerts:\n  haptic: {enabled: true, pin: 17}\n"
                   "  rules: {all: {min_interval_s: 0}}\n")
    wav = burst_wav("r.wav", [(1000.0, 0.5, 1.2), (500.0, 2.0, 2.7)], 3.5)
    env = {k: v for k, v in os.environ.items() if k != "GPIOZERO_PIN_FACTORY"}
    env["PYTHONPATH"] = str(ROOT)
    r = subprocess.run([sys.executable, "-m", "edge", "run", "--config", str(cfg), "--source", str(wav), "--model",
                        str(tiny_model), "--realtime"], capture_output=True, text=True, timeout=60, cwd=ROOT, env=env)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 4  # both sounds, onset and offset: listening went on
    warnings = [x for x in r.stderr.splitlines() if "WARNING" in x]
    assert len(warnings) == 1, r.stderr
    assert "alerts.haptic: cannot claim GPIO line 17: BadPinFactory: Unable to load any default pin factory!; " \
        "listening goes on" in warnings[0]
    assert "Traceback" not in r.stderr

"""Local alert outputs: tell the wearer on the device itself, with no hub and no network.

Four outputs, each a sink of the listener (:class:`~edge.publish.alerts.sink.AlertSink`)
with its own thread(s), configured in the ``alerts`` section
(:mod:`edge.publish.alerts.settings`):

* ``earcon`` (:mod:`.earcon`): a short tone pattern per label (or a WAV) on an audio output;
* ``haptic`` and ``led`` (:mod:`.gpio`): the pattern's rhythm on a GPIO line (gpiozero);
* ``command`` (:mod:`.command`): a program per onset/offset with the event JSON on stdin.

Rules (:mod:`.rules`) give each label a pattern, a priority (a higher one
interrupts a lower one and never waits behind it), a rate limit and a repeat
while the sound lasts. :func:`build_alert_sinks` makes the sinks of the enabled
outputs and turns every configuration problem into one :class:`ConfigError` line.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from edge.publish.alerts.settings import AlertsConfig
from edge.publish.alerts.sink import CLOSE_GRACE_S, AlertSink

__all__ = ["AlertSink", "AlertsConfig", "build_alert_sinks", "enabled_outputs"]


def enabled_outputs(cfg: AlertsConfig) -> list[str]:
    """Names of the outputs that are turned on."""
    return [n for n in ("earcon", "haptic", "led", "command") if getattr(cfg, n).enabled]


def build_alert_sinks(cfg: AlertsConfig, labels: Sequence[str], groups: Mapping[str, Collection[str]],
                      source: str, pin_factory: Any = None) -> list[AlertSink]:
    """One sink per enabled output, in the order earcon, haptic, led, command.

    Args:
        cfg: the ``alerts`` section.
        labels: the model's labels (rules may name these and the groups).
        groups: ``{"safety": labels, "alarms": labels}`` (``edge.detect.labels``; passed in by the caller).
        source: the configuration file's name, for error messages.
        pin_factory: a gpiozero pin factory for the GPIO outputs (tests); None = ``pin_factory`` of the config.

    Raises :class:`~edge.core.schema.ConfigError` with one line naming the file and key.
    """
    from edge.core.schema import ConfigError
    from edge.publish.alerts.rules import RuleBook

    where = f"{source}: alerts"
    book = RuleBook(cfg.rules, labels, groups, where)
    sinks: list[AlertSink] = []
    mq, md = cfg.max_queue, cfg.max_delay_s
    if cfg.earcon.enabled:
        from edge.publish.alerts.earcon import EarconOutput, load_wav

        wavs = {r.wav: load_wav(r.wav, f"{where}.rules.{k}.wav") for k, r in cfg.rules.items() if r.wav}
        sinks.append(AlertSink("earcon", EarconOutput(cfg.earcon, wavs), book, max_queue=mq, max_delay_s=md))
    for name in ("haptic", "led"):
        g = getattr(cfg, name)
        if g.enabled:
            if g.pin is None:
                raise ConfigError(f"{where}.{name}.pin: expected the GPIO line (e.g. 17) when {name} is enabled, "
                                  "got null")
            from edge.publish.alerts.gpio import GpioOutput

            sinks.append(AlertSink(name, GpioOutput(g, pin_factory), book, max_queue=mq, max_delay_s=md))
    c = cfg.command
    if c.enabled:
        from edge.publish.alerts.command import CommandOutput, resolve_program

        program = resolve_program(c.argv, f"{where}.command")
        states = tuple({"onset": "on", "offset": "off"}[x] for x in c.run_on)
        sinks.append(AlertSink("command", CommandOutput(c, program), book, states=states,
                               threads=c.max_running, urgent_thread=True, max_queue=mq, max_delay_s=md,
                               close_grace_s=CLOSE_GRACE_S))
    return sinks

"""The ``alerts`` section: local alert outputs (earcon, haptic, LED, command) and the rules that drive them.

Every output is off by default (``profile: hearable`` turns the earcon on). A
rule says, for one label or a group of labels, what the alert looks and sounds
like (``pattern`` / ``wav``), how urgent it is (``priority``), how often it may
fire (``min_interval_s``) and whether it repeats while the sound lasts
(``repeat_s``). Rules are merged field by field from the most specific to the
least: the label's own rule, then its groups (``alarms``, ``safety``), then
``all``; the configuration's rules first, then the built-in ones
(:data:`edge.publish.alerts.patterns.BUILTIN_RULES`). A field left ``null``
takes the next rule's value.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.core.schema import option

#: Priorities, least urgent first. A higher one interrupts a lower one that is playing and goes first in the
#: queue; ``urgent`` alerts are never dropped from a full queue or for waiting too long.
PRIORITIES = ("low", "normal", "high", "urgent")
#: The alert outputs a rule can name.
OUTPUTS = ("earcon", "haptic", "led", "command")
#: What a command can run for: an event's onset (state "on") and its offset (state "off").
STATES = ("onset", "offset")
#: A tone pattern: steps ``HZ:SECONDS`` separated by spaces; ``0:SECONDS`` is a pause.
PATTERN_RE = r"\s*\d+(\.\d+)?:\d*\.?\d+(\s+\d+(\.\d+)?:\d*\.?\d+)*\s*"
PATTERN_SAYS = ("tone steps 'HZ:SECONDS' separated by spaces, in quotes (0:SECONDS = a pause), e.g. "
                "'880:0.12 0:0.06 1320:0.2'")


@dataclass(frozen=True)
class AlertRule:
    """How one label (or group) alerts; ``null`` fields take the next, less specific rule's value."""

    pattern: str | None = option(
        None, "tone pattern of the earcon; haptic and LED play its rhythm (a tone = on, a pause = off)",
        pattern=PATTERN_RE, pattern_says=PATTERN_SAYS, default_says="null = the built-in pattern, distinct per label")
    wav: str | None = option(None, "a WAV file the earcon plays instead of the pattern (mono or stereo, any rate)")
    priority: str | None = option(None, "low | normal | high | urgent: a higher priority interrupts a lower one and "
                                  "is never queued behind it", choices=PRIORITIES,
                                  default_says="null = urgent for safety sounds, else normal")
    min_interval_s: float | None = option(
        None, "rate limit: onsets of this label within this many seconds of its last alert are not alerted "
        "(0 = every onset)", 0.0, 86400.0, default_says="null = 0 for safety sounds, else 10")
    repeat_s: float | None = option(
        None, "alert again every this many seconds while the sound lasts (0 = once)", 0.0, 600.0,
        default_says="null = 3 for safety sounds, else 0")
    outputs: list[str] | None = option(None, "the outputs that alert for it: earcon, haptic, led, command",
                                       choices=OUTPUTS, default_says="null = every enabled output")


@dataclass(frozen=True)
class EarconConfig:
    enabled: bool = option(False, "play a short tone pattern per label on an audio output (an earpiece)")
    device: int | str | None = option(
        None, "output device: index or part of its name (`python -m sounddevice` lists them); null = the "
        "system default")
    volume: float = option(0.5, "peak amplitude of the tones and gain of a WAV (1 = full scale)", 0.0, 1.0)
    sample_rate: int | None = option(None, "Hz to open the output at; null = the device's default rate",
                                     8000, 384000)


@dataclass(frozen=True)
class GpioConfig:
    enabled: bool = option(False, "drive a GPIO line with the rule's rhythm (through gpiozero)")
    pin: int | str | None = option(None, "GPIO line: BCM number (17) or a gpiozero pin name ('GPIO17', "
                                   "'BOARD11')")
    active_high: bool = option(True, "true: the line is high while on; false: low while on")
    pin_factory: str | None = option(
        None, "gpiozero pin library: lgpio, rpigpio, pigpio, native or mock (no hardware); null = gpiozero's "
        "choice ($GPIOZERO_PIN_FACTORY, else the first that loads)",
        choices=("lgpio", "rpigpio", "pigpio", "native", "mock"))


@dataclass(frozen=True)
class CommandConfig:
    enabled: bool = option(False, "run a command per onset/offset with the event JSON on stdin (e.g. to forward "
                           "it to a phone or a display)")
    argv: list[str] = option([], "program and arguments, run without a shell, e.g. [/usr/local/bin/notify, "
                             "--urgent]; EDGE_LABEL, EDGE_STATE and EDGE_PRIORITY are set in its environment")
    run_on: list[str] = option(["onset", "offset"], "run it for onsets, offsets or both", choices=STATES)
    timeout_s: float = option(10.0, "a run still going after this many seconds is killed (and logged)", 0.1, 3600.0)
    max_running: int = option(2, "at most this many runs at once; the rest wait in priority order", 1, 64)


@dataclass(frozen=True)
class AlertsConfig:
    earcon: EarconConfig = option(EarconConfig(), "tone patterns on an audio output")
    haptic: GpioConfig = option(GpioConfig(), "a vibration motor on a GPIO line")
    led: GpioConfig = option(GpioConfig(), "an LED on a GPIO line")
    command: CommandConfig = option(CommandConfig(), "a user command per event")
    rules: dict[str, AlertRule] = option(
        {}, "per label, or group (safety = smoke/CO alarms, glass breaking, baby cry; alarms = smoke/CO; all), "
        "e.g. {door_knock: {pattern: '700:0.1 0:0.1 700:0.1', min_interval_s: 5}}; merged over the built-in "
        "rules (docs/hearable.md)")
    max_queue: int = option(8, "alerts waiting per output beyond this many: the oldest least urgent is dropped",
                            1, 1000)
    max_delay_s: float = option(5.0, "an alert that could not start within this many seconds of its event is "
                                "dropped (urgent ones never are)", 0.1, 600.0)

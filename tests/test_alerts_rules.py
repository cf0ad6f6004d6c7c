"""Alert rules, patterns, rate limits and the priority queue (no device: the parts every output shares)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from edge.core.events import Event
from edge.core.schema import ConfigError
from edge.publish.alerts.patterns import (
    BUILTIN_RULES,
    PatternError,
    auto_pattern,
    on_off,
    parse_pattern,
    pattern_seconds,
    render,
)
from edge.publish.alerts.rules import RateLimit, RuleBook
from edge.publish.alerts.settings import AlertRule
from edge.publish.alerts.sink import AlertSink
from edge.publish.alerts.worker import Alert, AlertQueue

LABELS = ("smoke_alarm", "co_alarm", "glass_breaking", "baby_cry", "door_knock", "dog_bark", "speech")
GROUPS = {"safety": ("smoke_alarm", "glass_breaking", "baby_cry", "co_alarm"), "alarms": ("smoke_alarm", "co_alarm")}


def ev(label: str, state: str = "on", eid: str | None = None) -> Event:
    return Event(eid or f"{label}-1", label, state, 1.0, None if state == "on" else 2.0, 100.0,
                 None if state == "on" else 101.0, 0.9, 0.8, -20.0, "test")


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_a_pattern_parses_into_tone_and_pause_steps() -> None:
    steps = parse_pattern("880:0.12 0:0.06  1320:0.2")
    assert steps == ((880.0, 0.12), (0.0, 0.06), (1320.0, 0.2))
    assert pattern_seconds(steps) == pytest.approx(0.38)


@pytest.mark.parametrize(("text", "says"), [
    ("880", "expected HZ:SECONDS"), ("880:0", "duration must be > 0"), ("20:0.1", "a tone must be 50-12000 Hz"),
    ("0:0.5", "no tone"), ("1000:6 1000:6", "at most 10 s"), ("a:0.1", "expected HZ:SECONDS")])
def test_a_bad_pattern_says_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(PatternError, match=says):
        parse_pattern(text)


def test_a_rhythm_merges_adjacent_tones_and_drops_the_trailing_pause() -> None:
    steps = parse_pattern("660:0.2 880:0.2 0:0.05 1100:0.2 0:0.3")
    assert on_off(steps) == [(True, pytest.approx(0.4)), (False, 0.05), (True, 0.2)]


def test_a_rendered_pattern_has_its_tones_at_their_times_and_no_clicks() -> None:
    sr = 48000
    x = render(parse_pattern("1000:0.1 0:0.05 2000:0.1"), sr, 0.5)
    assert x.shape == (int(0.25 * sr),) and x.dtype == np.float32
    assert np.max(np.abs(x)) == pytest.approx(0.5, abs=0.01)
    first, gap, second = x[: int(0.1 * sr)], x[int(0.1 * sr) : int(0.15 * sr)], x[int(0.15 * sr) :]
    assert not np.any(gap)
    for seg, hz in ((first, 1000.0), (second, 2000.0)):
        spec = np.abs(np.fft.rfft(seg))
        assert abs(np.argmax(spec) * sr / seg.size - hz) < 15
        assert abs(seg[0]) < 1e-3 and abs(seg[-1]) < 0.01  # ramps: starts and ends at zero


def test_built_in_rules_give_every_label_its_own_pattern_and_safety_first() -> None:
    book = RuleBook({}, LABELS, GROUPS, "c.yaml: alerts")
    rules = {lab: book.rule(lab) for lab in LABELS}
    assert len({r.steps for r in rules.values()}) == len(LABELS)  # distinct, taught ones too
    assert len({tuple(on_off(r.steps)) for r in rules.values()}) == len(LABELS)  # and distinct to the touch
    for lab in GROUPS["safety"]:
        assert rules[lab].priority == "urgent" and rules[lab].min_interval_s == 0 and rules[lab].repeat_s == 3.0
    assert rules["door_knock"].priority == "normal" and rules["door_knock"].min_interval_s == 10.0
    assert rules["door_knock"].steps == parse_pattern(str(BUILTIN_RULES["door_knock"]["pattern"]))
    # a label the model did not know when the config was read (a taught sound): still alerts, its own pattern
    taught = book.rule("microwave_beep")
    assert taught.priority == "normal" and taught.steps == parse_pattern(auto_pattern("microwave_beep"))
    assert auto_pattern("microwave_beep") == auto_pattern("microwave_beep") != auto_pattern("kettle")


def test_configured_rules_override_the_built_in_ones_field_by_field_most_specific_first() -> None:
    rules = {"all": AlertRule(min_interval_s=30.0), "safety": AlertRule(pattern="500:0.3", repeat_s=5.0),
             "co_alarm": AlertRule(priority="high"), "door_knock": AlertRule(wav="knock.wav", outputs=["earcon"])}
    book = RuleBook(rules, LABELS, GROUPS, "c.yaml: alerts")
    smoke, co, knock, dog = (book.rule(x) for x in ("smoke_alarm", "co_alarm", "door_knock", "dog_bark"))
    assert smoke.steps == parse_pattern("500:0.3") and smoke.repeat_s == 5.0 and smoke.priority == "urgent"
    assert smoke.min_interval_s == 30.0  # the file's `all` is more specific than any built-in rule
    assert co.priority == "high" and co.steps == parse_pattern("500:0.3")
    assert knock.wav == "knock.wav" and knock.outputs == ("earcon",)
    assert knock.steps == parse_pattern(str(BUILTIN_RULES["door_knock"]["pattern"]))  # the rhythm for a motor
    assert dog.min_interval_s == 30.0 and dog.wav is None


@pytest.mark.parametrize(("rules", "says"), [
    ({"dog_brak": AlertRule()}, "c.yaml: alerts.rules.dog_brak: unknown label or group"),
    ({"door_knock": AlertRule(pattern="880:0")}, "c.yaml: alerts.rules.door_knock.pattern: step '880:0'")])
def test_a_bad_rule_is_a_one_line_error_naming_its_key(rules: dict[str, AlertRule], says: str) -> None:
    with pytest.raises(ConfigError) as e:
        RuleBook(rules, LABELS, GROUPS, "c.yaml: alerts")
    assert str(e.value).startswith(says) and "\n" not in str(e.value)


def test_rate_limit_lets_one_onset_per_interval_and_only_the_offsets_of_admitted_onsets() -> None:
    clock = Clock()
    book = RuleBook({}, LABELS, GROUPS, "x")
    lim = RateLimit(clock)
    knock = book.rule("door_knock")
    assert lim.admit(ev("door_knock", "on", "a"), knock)
    clock.t += 4.0
    assert not lim.admit(ev("door_knock", "on", "b"), knock)  # 4 s after the last: within 10 s
    assert lim.admit(ev("door_knock", "off", "a"), knock)
    assert not lim.admit(ev("door_knock", "off", "b"), knock)
    clock.t += 6.5
    assert lim.admit(ev("door_knock", "on", "c"), knock)
    smoke = book.rule("smoke_alarm")  # min_interval_s 0: every onset
    assert all(lim.admit(ev("smoke_alarm", "on", f"s{i}"), smoke) for i in range(5))
    assert lim.limited == 1


def _alert(book: RuleBook, label: str, t: float, eid: str | None = None) -> Alert:
    return Alert(book.rule(label), ev(label, "on", eid), t, t)


def test_the_queue_hands_out_the_most_urgent_first_then_first_come() -> None:
    clock = Clock()
    book = RuleBook({}, LABELS, GROUPS, "x")
    q = AlertQueue(8, 5.0, clock)
    for i, lab in enumerate(("door_knock", "dog_bark", "speech")):
        q.put(_alert(book, lab, clock.t + 0.001 * i))
    clock.t += 0.01
    q.put(_alert(book, "smoke_alarm", clock.t))
    got = [q.get().rule.label for _ in range(4)]  # type: ignore[union-attr]
    assert got == ["smoke_alarm", "door_knock", "dog_bark", "speech"]


def test_a_full_queue_drops_the_least_urgent_oldest_never_an_urgent_one_and_late_ones_expire() -> None:
    clock = Clock()
    book = RuleBook({"dog_bark": AlertRule(priority="low")}, LABELS, GROUPS, "x")
    q = AlertQueue(2, 5.0, clock)
    q.put(_alert(book, "door_knock", clock.t, "k1"))
    q.put(_alert(book, "dog_bark", clock.t, "d1"))
    q.put(_alert(book, "door_knock", clock.t, "k2"))  # full: the low-priority bark goes
    for i in range(3):
        q.put(_alert(book, "smoke_alarm", clock.t, f"s{i}"))  # urgent ones are never dropped
    assert q.dropped_full == 1 and len(q) == 5
    clock.t += 6.0  # the knocks waited longer than max_delay_s: dropped; the urgent ones still play
    got = [q.get() for _ in range(3)]
    assert [a.rule.label for a in got if a] == ["smoke_alarm"] * 3
    assert q.dropped_late == 2 and len(q) == 0


def test_repeats_are_scheduled_while_the_event_lasts_and_stop_at_its_offset() -> None:
    clock = Clock()
    book = RuleBook({}, LABELS, GROUPS, "x")
    q = AlertQueue(8, 5.0, clock)
    first = _alert(book, "smoke_alarm", clock.t, "s")
    q.put(first)
    assert q.get() is first
    q.done(first)
    q.repeat_after(first, clock.t)
    assert len(q) == 1
    clock.t += 3.0
    again = q.get()
    assert again is not None and again.repeat == 1 and again.event.id == "s"
    q.done(again)
    q.repeat_after(again, clock.t)
    q.end("s")
    assert len(q) == 0 and not q.lasting("s")
    q.repeat_after(again, clock.t)
    assert len(q) == 0


def test_event_returns_at_once_while_the_output_is_busy() -> None:
    from edge.publish.alerts.command import CommandOutput, resolve_program
    from edge.publish.alerts.settings import CommandConfig

    cfg = CommandConfig(enabled=True, argv=["sleep", "1"], max_running=1)
    book = RuleBook({"all": AlertRule(min_interval_s=0.0)}, LABELS, GROUPS, "x")
    sink = AlertSink("command", CommandOutput(cfg, resolve_program(cfg.argv, "x")), book, max_queue=8)
    sink.start()
    try:
        t0 = time.perf_counter()
        for i in range(40):
            sink.event(ev("dog_bark", "on", f"e{i}"))
        assert time.perf_counter() - t0 < 0.05  # 40 queued behind a one-second command, none waited for
        s = sink.stats()
        assert s["queued"] == 8 and s["dropped_full"] in (31, 32)  # bounded: 8 wait (+1 running), the rest dropped
    finally:
        sink.close()

"""The ``alerts`` section and ``profile:``: precedence, one-line errors, and what ``edge doctor`` says."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edge.service.config import HEARABLE_LABELS, PROFILES, Config, load_config, parse_config

ROOT = Path(__file__).resolve().parent.parent


def edge(*args: object, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    e = dict(env or os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "edge", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=e)


def test_no_profile_or_the_default_profile_is_todays_behaviour() -> None:
    assert parse_config({}) == Config() == parse_config({"profile": "default"})
    assert not Config().alerts.earcon.enabled and Config().detector.labels is None


def test_the_hearable_profile_listens_for_safety_knock_and_baby_never_speech_and_needs_no_network() -> None:
    cfg = parse_config({"profile": "hearable"})
    assert cfg.detector.labels == list(HEARABLE_LABELS) and "speech" not in cfg.detector.labels
    assert {"smoke_alarm", "co_alarm", "glass_breaking", "baby_cry", "door_knock"} <= set(cfg.detector.labels)
    assert not cfg.mqtt.enabled and cfg.mqtt.level_interval_s == 0.0
    assert cfg.alerts.earcon.enabled
    assert cfg.audio.block_s == PROFILES["hearable"]["audio.block_s"] == 0.5
    assert cfg.model.hop_s is None  # every block: a longer hop cost real-clip recall (benchmarks/hearable_profile.py)


def test_labels_taught_later_join_the_hearable_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    import edge.service.config as config

    monkeypatch.setattr(config, "HEARABLE_LABELS", (*config.HEARABLE_LABELS, "kettle"))  # what an enrolment does
    assert parse_config({"profile": "hearable"}).detector.labels == [*HEARABLE_LABELS, "kettle"]


def test_the_file_overrides_the_profile_and_the_command_line_overrides_both(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("profile: hearable\nmqtt: {enabled: true, host: broker.lan}\ndetector:\n"
                 "  labels: [smoke_alarm, co_alarm, door_knock, dog_bark]\n")
    cfg = load_config(f, {"audio.block_s": 0.1})
    assert cfg.mqtt.enabled and cfg.mqtt.host == "broker.lan"  # the file's own values
    assert cfg.mqtt.level_interval_s == 0.0  # the profile's, where the file is silent
    assert cfg.detector.labels == ["smoke_alarm", "co_alarm", "door_knock", "dog_bark"]  # the file's list, whole
    assert cfg.audio.block_s == 0.1  # the command line, over the profile's 0.5
    assert cfg.alerts.earcon.enabled


def test_a_profile_does_not_change_the_parsed_input() -> None:
    data = {"profile": "hearable", "alerts": {"command": {"enabled": False}}}
    parse_config(data)
    assert data == {"profile": "hearable", "alerts": {"command": {"enabled": False}}}


def test_a_file_that_sets_the_profiles_keys_to_their_defaults_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="edge.config"):
        cfg = parse_config({"profile": "hearable", "detector": {"labels": None}, "mqtt": {"level_interval_s": 1.0}},
                           "c.yaml")
    assert cfg.detector.labels is None
    msgs = [r.getMessage() for r in caplog.records]
    assert len(msgs) == 1 and "c.yaml: profile hearable: detector.labels, mqtt.level_interval_s set in the file " \
        "to the built-in default" in msgs[0]


@pytest.mark.parametrize(("yaml_text", "message"), [
    ("profile: wearable\n", "profile: expected one of default, hearable, got 'wearable'"),
    ("alerts:\n  rules:\n    door_knock: {pattern: 880:0.1}\n",
     "alerts.rules.door_knock.pattern: expected tone steps 'HZ:SECONDS' separated by spaces, in quotes"),
    ("alerts:\n  rules:\n    door_knock: {pattern: 'beep beep'}\n",
     "alerts.rules.door_knock.pattern: expected tone steps 'HZ:SECONDS' separated by spaces, in quotes"),
    ("alerts:\n  rules:\n    door_knock: {priority: asap}\n",
     "alerts.rules.door_knock.priority: expected one of low, normal, high, urgent, got 'asap'"),
    ("alerts:\n  command: {run_on: [on]}\n", "alerts.command.run_on[0]: expected one of onset, offset, got True"),
    ("alerts:\n  earcon: {volume: 2}\n", "alerts.earcon.volume: expected a number in [0, 1], got 2"),
    ("alerts:\n  buzzer: {enabled: true}\n", "alerts.buzzer: unknown key (known keys: earcon, haptic, led, command"),
])
def test_alert_config_errors_are_one_line_naming_file_and_key(tmp_path: Path, yaml_text: str, message: str) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(yaml_text)
    with pytest.raises(Exception) as e:
        load_config(f)
    assert str(e.value).startswith(f"{f}: {message}"), str(e.value)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(("yaml_text", "message"), [
    ("alerts:\n  earcon: {enabled: true}\n  rules:\n    dog_brak: {min_interval_s: 5}\n",
     "alerts.rules.dog_brak: unknown label or group (labels: low_tone, mid_tone, high_tone; groups: alarms, "
     "safety, all)"),
    ("alerts:\n  earcon: {enabled: true}\n  rules:\n    mid_tone: {pattern: '880:0'}\n",
     "alerts.rules.mid_tone.pattern: step '880:0': the duration must be > 0 s"),
    ("alerts:\n  haptic: {enabled: true}\n",
     "alerts.haptic.pin: expected the GPIO line (e.g. 17) when haptic is enabled, got null"),
    ("alerts:\n  command: {enabled: true}\n", "alerts.command.argv: expected the program and its arguments, got []"),
    ("alerts:\n  command: {enabled: true, argv: [no-such-program-27, x]}\n",
     "alerts.command.argv[0]: no-such-program-27: not found on PATH"),
    ("alerts:\n  command: {enabled: true, argv: [TMP/notes.txt]}\n", "alerts.command.argv[0]: TMP/notes.txt: "
     "not executable"),
    ("alerts:\n  earcon: {enabled: true}\n  rules:\n    safety: {wav: /nonexistent/alarm.wav}\n",
     "alerts.rules.safety.wav: /nonexistent/alarm.wav: audio file not found"),
])
def test_edge_run_refuses_a_bad_alert_setup_in_one_line_with_status_2(tmp_path: Path, tiny_model: Path,
                                                                       burst_wav, yaml_text: str,
                                                                       message: str) -> None:
    f = tmp_path / "c.yaml"
    (tmp_path / "notes.txt").write_text("not a program\n")
    yaml_text, message = yaml_text.replace("TMP", str(tmp_path)), message.replace("TMP", str(tmp_path))
    f.write_text(yaml_text)
    r = edge("run", "--config", f, "--source", burst_wav("x.wav", [], 1.5), "--model", tiny_model)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [f"edge: {f}: {message}"]


def test_doctor_checks_each_alert_output_and_says_what_it_found(tmp_path: Path, tiny_model: Path,
                                                                burst_wav) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(f"audio: {{source: {burst_wav('x.wav', [], 1.5)}}}\nalerts:\n"
                 "  earcon: {enabled: true, device: no-such-earpiece}\n"
                 "  haptic: {enabled: true, pin: 17}\n"
                 "  led: {enabled: true, pin: 27, pin_factory: mock}\n"
                 "  command: {enabled: true, argv: [/bin/true]}\n")
    env = {k: v for k, v in os.environ.items() if k != "GPIOZERO_PIN_FACTORY"}
    r = edge("doctor", "--config", f, "--model", tiny_model, env=env)
    assert r.returncode == 1, r.stdout + r.stderr  # the earpiece is not there, nor a GPIO library for pin 17
    lines = {x.split(":")[0]: x for x in r.stdout.splitlines() if x.startswith(("PASS", "FAIL", "SKIP"))}
    assert lines["FAIL  alerts.earcon"].endswith("no output device whose name contains 'no-such-earpiece'")
    assert lines["FAIL  alerts.haptic"].startswith("FAIL  alerts.haptic: cannot claim GPIO line 17: BadPinFactory")
    assert lines["PASS  alerts.led"] == "PASS  alerts.led: GPIO line 27 claimed and released"
    assert lines["PASS  alerts.command"] == "PASS  alerts.command: /bin/true is executable (not run)"
    assert "Traceback" not in r.stderr


def test_doctor_skips_alerts_when_none_is_enabled(tmp_path: Path, tiny_model: Path, burst_wav) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(f"audio: {{source: {burst_wav('x.wav', [], 1.5)}}}\n")
    r = edge("doctor", "--config", f, "--model", tiny_model)
    assert "SKIP  alerts: no alert output enabled" in r.stdout


def test_the_hearable_profile_with_mqtt_on_and_no_network_queues_the_events_in_the_outbox(
        tmp_path: Path, tiny_model: Path, burst_wav) -> None:
    import socket
    import sqlite3

    with socket.socket() as sock:  # a port nobody listens on: the broker is unreachable
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    f = tmp_path / "c.yaml"
    f.write_text(f"profile: hearable\ndetector: {{labels: null, release_s: 0.1}}\n"
                 f"mqtt: {{enabled: true, host: 127.0.0.1, port: {port}}}\n"
                 f"outbox: {{path: {tmp_path / 'outbox.sqlite'}}}\nalerts: {{earcon: {{enabled: false}}}}\n")
    wav = burst_wav("r.wav", [(1000.0, 0.5, 1.2), (500.0, 2.0, 2.7)], 3.5)
    r = edge("run", "--config", f, "--source", wav, "--model", tiny_model, "--realtime")
    assert r.returncode == 0, r.stderr
    with sqlite3.connect(tmp_path / "outbox.sqlite") as db:
        kinds = [k for (k,) in db.execute("SELECT kind FROM outbox")]
    assert kinds.count("event") == 4  # both sounds, onset and offset: kept for when the broker is back

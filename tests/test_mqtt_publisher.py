"""MqttPublisher against a real mosquitto: topics, retained availability, last will, auth, TLS, config errors."""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from broker import (  # noqa: F401  (pytest fixtures)
    Subscriber,
    free_port,
    mosquitto,
    mosquitto_auth,
    mosquitto_tls,
    test_certs,
)
from mqtt_driver import make_config, make_contract, make_event

from edge.publish.mqtt import MqttPublisher
from edge.service.config import ConfigError

DRIVER = str(Path(__file__).with_name("mqtt_driver.py"))
ROOT = "homesound/testdev"


def _wait(pred, timeout: float = 10.0) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.01)
    return False


def test_event_state_level_status_round_trip(mosquitto, tmp_path: Path) -> None:  # noqa: F811
    sub = Subscriber(mosquitto.host, mosquitto.port, "homesound/#").start()
    cfg = make_config(mosquitto.port, tmp_path / "o.sqlite", level_interval_s=0.05)
    pub = MqttPublisher(cfg, make_contract())
    pub.start()
    try:
        assert sub.wait_for(lambda ms: any(m.topic == f"{ROOT}/availability" and m.payload == b"online" for m in ms))
        on, off = make_event(1, "rt", "on", "smoke_alarm"), make_event(1, "rt", "off", "smoke_alarm")
        pub.event(on)
        pub.event(off)
        pub.level(-23.456, [("speech", 0.7), ("dog_bark", 0.2), ("co_alarm", 0.1), ("smoke_alarm", 0.01)], 12.5)
        pub.status({"uptime_s": 3.0, "rtf": 0.05, "cpu_percent": 7.0, "dropped_samples": 0})
        assert sub.wait_for(lambda ms: len([m for m in ms if m.topic == f"{ROOT}/event"]) == 2)
        assert sub.wait_for(lambda ms: any(m.topic == f"{ROOT}/status" for m in ms))
        assert sub.wait_for(lambda ms: any(m.topic == f"{ROOT}/level" for m in ms))
        # OFF first: at connect, before "online", every label's true state (no event is open at start).
        assert sub.wait_for(lambda ms: [m.payload for m in ms if m.topic == f"{ROOT}/smoke_alarm"]
                            == [b"OFF", b"ON", b"OFF"])

        events = [json.loads(m.payload) for m in sub.on(f"{ROOT}/event")]
        assert [(e["id"], e["state"]) for e in events] == [("rt-00001", "on"), ("rt-00001", "off")]
        assert events[0] == {**on.to_dict(), "event_type": "smoke_alarm"}
        assert events[1]["model_version"] == "test-1.2.3" and events[1]["duration"] == 0.5
        assert not any(m.retain for m in sub.on(f"{ROOT}/event"))

        level = json.loads(sub.on(f"{ROOT}/level")[0].payload)
        assert level == {"dbfs": -23.5, "t": 12.5, "top": [{"label": "speech", "score": 0.7},
                                                          {"label": "dog_bark", "score": 0.2},
                                                          {"label": "co_alarm", "score": 0.1}]}
        status = json.loads(sub.on(f"{ROOT}/status")[0].payload)
        assert status["model_version"] == "test-1.2.3" and status["rtf"] == 0.05
        assert {"outbox_depth", "outbox_dropped", "uptime_s", "cpu_percent"} <= set(status)
        assert _wait(lambda: pub.outbox.depth() == 0)
    finally:
        pub.close()
    assert sub.wait_for(lambda ms: [m.payload for m in ms if m.topic == f"{ROOT}/availability"][-1:] == [b"offline"])
    sub.stop()

    # A late subscriber sees the retained figures: availability, label state, status.
    late = Subscriber(mosquitto.host, mosquitto.port, "homesound/#").start()
    assert late.wait_for(lambda ms: {m.topic for m in ms if m.retain} >= {
        f"{ROOT}/availability", f"{ROOT}/smoke_alarm", f"{ROOT}/status"})
    assert late.on(f"{ROOT}/availability")[0].payload == b"offline"
    assert late.on(f"{ROOT}/smoke_alarm")[0].payload == b"OFF"
    late.stop()


def test_level_and_status_are_rate_limited_and_level_can_be_disabled(mosquitto, tmp_path: Path) -> None:  # noqa: F811
    sub = Subscriber(mosquitto.host, mosquitto.port, "homesound/#").start()
    pub = MqttPublisher(make_config(mosquitto.port, tmp_path / "o.sqlite", level_interval_s=0.0,
                                    status_interval_s=3600.0), make_contract())
    pub.start()
    try:
        assert sub.wait_for(lambda ms: any(m.topic == f"{ROOT}/availability" for m in ms))
        for i in range(50):
            pub.level(-30.0, [("speech", 0.5)], i * 0.01)
            pub.status({"uptime_s": float(i)})
        pub.event(make_event(0, "rl"))  # a marker: everything sent before it has arrived once it does
        assert sub.wait_for(lambda ms: any(m.topic == f"{ROOT}/event" for m in ms))
        time.sleep(0.2)
        assert sub.on(f"{ROOT}/level") == []
        statuses = [json.loads(m.payload) for m in sub.on(f"{ROOT}/status")]
        assert len(statuses) == 1 and statuses[0]["uptime_s"] == 0.0
    finally:
        pub.close()
        sub.stop()


def test_last_will_marks_device_offline_when_process_is_killed(mosquitto, tmp_path: Path) -> None:  # noqa: F811
    sub = Subscriber(mosquitto.host, mosquitto.port, "homesound/#").start()
    p = subprocess.Popen([sys.executable, DRIVER, "--port", str(mosquitto.port), "--outbox",
                          str(tmp_path / "o.sqlite")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert sub.wait_for(lambda ms: [m.payload for m in ms if m.topic == f"{ROOT}/availability"] == [b"online"])
        os.kill(p.pid, signal.SIGKILL)  # no DISCONNECT: the broker must publish the will
        p.wait()
        assert sub.wait_for(lambda ms: [m.payload for m in ms if m.topic == f"{ROOT}/availability"]
                            == [b"online", b"offline"])
    finally:
        if p.poll() is None:
            p.kill()
        sub.stop()
    late = Subscriber(mosquitto.host, mosquitto.port, f"{ROOT}/availability").start()
    assert late.wait_for(lambda ms: [(m.payload, m.retain) for m in ms] == [(b"offline", True)])
    late.stop()


def test_unreachable_broker_is_logged_once_and_events_queue_until_it_appears(tmp_path: Path, caplog) -> None:  # noqa: ANN001
    from broker import Broker

    caplog.set_level(logging.INFO, logger="edge.mqtt")
    port = free_port()
    pub = MqttPublisher(make_config(port, tmp_path / "o.sqlite"), make_contract())
    pub.start()
    try:
        for i in range(5):
            pub.event(make_event(i, "un"))
        assert _wait(lambda: any("connection refused" in r.getMessage() for r in caplog.records))
        time.sleep(0.5)  # several retries
        msgs = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert msgs == [f"mqtt: broker 127.0.0.1:{port} unreachable: connection refused (check mqtt.host/port)"]
        assert pub.outbox.depth() == 5
        b = Broker(tmp_path / "late-broker", "allow_anonymous true", port=port)
        sub = None
        try:
            b.start()
            sub = Subscriber(b.host, b.port, f"{ROOT}/event").start()
            # the subscriber may connect after the drain: the outbox depth is the ground truth here
            assert _wait(lambda: pub.outbox.depth() == 0)
        finally:
            pub.close()
            if sub:
                sub.stop()
            b.stop()
    finally:
        pub.close()


def test_username_password_right_and_wrong(mosquitto_auth, tmp_path: Path, caplog, monkeypatch) -> None:  # noqa: ANN001, F811
    b = mosquitto_auth
    caplog.set_level(logging.INFO, logger="edge.mqtt")
    bad = MqttPublisher(make_config(b.port, tmp_path / "bad.sqlite", username="edge", password="wrong"),
                        make_contract())
    bad.start()
    try:
        bad.event(make_event(0, "pw"))
        assert _wait(lambda: any("not authorised" in r.getMessage() for r in caplog.records))
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert errors == ["mqtt: connection refused: not authorised (check mqtt.username/password)"]
        assert bad.outbox.depth() == 1 and not bad.connected
    finally:
        bad.close()

    monkeypatch.setenv("EDGE_TEST_MQTT_PW", b.password)
    sub = Subscriber(b.host, b.port, f"{ROOT}/event", username=b.username, password=b.password).start()
    good = MqttPublisher(make_config(b.port, tmp_path / "good.sqlite", username="edge",
                                     password_env="EDGE_TEST_MQTT_PW"), make_contract())
    good.start()
    try:
        good.event(make_event(0, "pw"))
        assert sub.wait_for(lambda ms: len(ms) == 1)
        assert json.loads(sub.messages[0].payload)["id"] == "pw-00000"
    finally:
        good.close()
        sub.stop()


def test_tls_trusted_ca_works_and_untrusted_ca_is_reported(mosquitto_tls, tmp_path: Path, caplog) -> None:  # noqa: ANN001, F811
    b = mosquitto_tls
    caplog.set_level(logging.INFO, logger="edge.mqtt")
    sub = Subscriber(b.host, b.port, f"{ROOT}/event", ca_file=b.ca_file).start()
    good = MqttPublisher(make_config(b.port, tmp_path / "good.sqlite", tls={"enabled": True, "ca_file": b.ca_file}),
                         make_contract())
    good.start()
    try:
        good.event(make_event(0, "tls"))
        assert sub.wait_for(lambda ms: len(ms) == 1)
    finally:
        good.close()
        sub.stop()

    caplog.clear()
    bad = MqttPublisher(make_config(b.port, tmp_path / "bad.sqlite",
                                    tls={"enabled": True, "ca_file": b.other_ca_file}), make_contract())
    bad.start()
    try:
        bad.event(make_event(1, "tls"))
        assert _wait(lambda: any("TLS" in r.getMessage() for r in caplog.records))
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1
        assert errors[0].startswith(
            f"mqtt: TLS certificate verify failed for 127.0.0.1:{b.port} (check mqtt.tls.ca_file)")
        assert bad.outbox.depth() == 1
    finally:
        bad.close()


@pytest.mark.parametrize(
    ("mqtt", "message"),
    [
        ({"username": "u", "password_file": "/nonexistent/pw"}, "mqtt.password_file: file not found: /nonexistent/pw"),
        ({"username": "u", "password_env": "EDGE_TEST_UNSET_VAR"},
         "mqtt.password_env: environment variable EDGE_TEST_UNSET_VAR is not set"),
        ({"tls": {"enabled": True, "ca_file": "/nonexistent/ca.pem"}},
         "mqtt.tls.ca_file: file not found: /nonexistent/ca.pem"),
    ],
)
def test_config_problems_are_one_line_config_errors(tmp_path: Path, monkeypatch, mqtt, message) -> None:  # noqa: ANN001
    monkeypatch.delenv("EDGE_TEST_UNSET_VAR", raising=False)
    pub = MqttPublisher(make_config(free_port(), tmp_path / "o.sqlite", **mqtt), make_contract())
    with pytest.raises(ConfigError) as ei:
        pub.start()
    assert str(ei.value) == f"test-config: {message}"
    pub.close()


def test_password_file_first_line_is_used(mosquitto_auth, tmp_path: Path) -> None:  # noqa: F811
    b = mosquitto_auth
    pw = tmp_path / "pw"
    pw.write_text(b.password + "\nignored\n")
    sub = Subscriber(b.host, b.port, f"{ROOT}/availability", username=b.username, password=b.password).start()
    pub = MqttPublisher(make_config(b.port, tmp_path / "o.sqlite", username="edge", password_file=str(pw)),
                        make_contract())
    pub.start()
    try:
        assert sub.wait_for(lambda ms: any(m.payload == b"online" for m in ms))
    finally:
        pub.close()
        sub.stop()


def test_close_publishes_the_newest_status_before_offline_even_when_rate_limited(mosquitto, tmp_path: Path) -> None:  # noqa: F811
    sub = Subscriber(mosquitto.host, mosquitto.port, "homesound/#").start()
    pub = MqttPublisher(make_config(mosquitto.port, tmp_path / "o.sqlite", status_interval_s=3600.0), make_contract())
    pub.start()
    try:
        pub.status({"uptime_s": 1.0})
        assert sub.wait_for(lambda ms: any(m.topic == f"{ROOT}/status" for m in ms))
        pub.status({"uptime_s": 2.0})  # within the interval: not sent now...
    finally:
        pub.close()  # ...but at shutdown, with an empty outbox
    assert sub.wait_for(lambda ms: [m.payload for m in ms if m.topic == f"{ROOT}/availability"][-1:] == [b"offline"])
    sent = [(m.topic, m.payload) for m in sub.messages if m.topic in (f"{ROOT}/status", f"{ROOT}/availability")]
    statuses = [json.loads(p) for t, p in sent if t.endswith("/status")]
    assert [s["uptime_s"] for s in statuses] == [1.0, 2.0]
    assert sent[-1] == (f"{ROOT}/availability", b"offline")
    sub.stop()


def test_an_error_on_the_network_thread_is_survived_and_delivery_resumes(mosquitto, tmp_path: Path, caplog) -> None:  # noqa: F811, ANN001
    sub = Subscriber(mosquitto.host, mosquitto.port, f"{ROOT}/event").start()
    pub = MqttPublisher(make_config(mosquitto.port, tmp_path / "o.sqlite"), make_contract())
    pub.start()
    real_pending = pub.outbox.pending
    failures = []

    def failing_once(*a, **k):  # noqa: ANN002, ANN003
        if not failures:  # an I/O error reading the outbox, once (we cannot make the disk fail on cue)
            failures.append(1)
            raise sqlite3.OperationalError("disk I/O error")
        return real_pending(*a, **k)

    try:
        assert _wait(lambda: pub.connected)
        pub.outbox.pending = failing_once
        with caplog.at_level(logging.ERROR, logger="edge"):
            for i in range(3):
                pub.event(make_event(i, "thr"))
            assert sub.wait_for(lambda ms: len(ms) == 3, timeout=15), [m.payload for m in sub.messages]
        assert failures == [1]
        assert any("network thread error (OperationalError: disk I/O error)" in r.getMessage() for r in caplog.records)
        assert pub._thread is not None and pub._thread.is_alive()
        assert _wait(lambda: pub.outbox.depth() == 0)
    finally:
        pub.close()
        sub.stop()


def test_an_event_the_outbox_cannot_store_is_still_sent_and_counted(mosquitto, tmp_path: Path) -> None:  # noqa: F811
    sub = Subscriber(mosquitto.host, mosquitto.port, f"{ROOT}/event").start()
    pub = MqttPublisher(make_config(mosquitto.port, tmp_path / "o.sqlite"), make_contract())
    pub.start()

    def disk_full(*a, **k):  # noqa: ANN002, ANN003
        raise sqlite3.OperationalError("database or disk is full")

    try:
        assert _wait(lambda: pub.connected)
        pub.outbox.put = disk_full
        pub.event(make_event(7, "full"))  # must not raise: the listener keeps running
        assert sub.wait_for(lambda ms: len(ms) == 1)
        assert json.loads(sub.messages[0].payload)["id"] == "full-00007"
        assert pub.health()["events_not_stored"] == 1
    finally:
        pub.close()
        sub.stop()

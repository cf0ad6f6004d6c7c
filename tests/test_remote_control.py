"""Control from Home Assistant without Home Assistant: commands over a real mosquitto into a real listener.

(tests/test_homeassistant.py does the same through a real Home Assistant where one is installed.)
Here: command parsing, the settings file and its precedence over config.yaml and a
SIGHUP reload, commands applied on the processing thread only, the label states
reset before ``online`` at a start, and the control entities' discovery payloads.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from broker import Subscriber, mosquitto, publish_once  # noqa: F401  (fixture)
from conftest import bursts
from mqtt_driver import LABELS, make_config, make_contract, make_event
from tinymodel import build_tiny_model

from edge.capture.sources import FileSource
from edge.detect.settings import SENSITIVITIES
from edge.model.classifier import Classifier
from edge.publish.control import CommandError, parse_command
from edge.publish.discovery import Topics, discovery_messages
from edge.publish.mqtt import MqttPublisher
from edge.publish.outbox import Outbox
from edge.service.config import parse_config
from edge.service.lifecycle import Lifecycle
from edge.service.listener import Listener
from edge.service.remote import RemoteControl
from edge.service.runtime_settings import RuntimeSettings
from edge.service.systemd import Notifier

SR = 16000
TINY = ("low_tone", "mid_tone", "high_tone")


def test_commands_parse_and_a_bad_one_is_one_line_naming_its_topic() -> None:
    def p(name: str, payload: bytes):  # noqa: ANN202
        return parse_command(name, payload, TINY, SENSITIVITIES)

    assert (p("listening", b"OFF").name, p("listening", b"off").value, p("listening", b" ON\n").value) == \
        ("listening", False, True)
    c = p("detect/mid_tone", b"OFF")
    assert (c.name, c.label, c.value) == ("detect", "mid_tone", False)
    assert p("sensitivity", b"High").value == "high"
    assert p("learn_background", b"PRESS").value is None and p("learn_background", b"30").value == 30.0
    assert p("learn_seconds", b"120.0").value == 120.0
    bad = {
        ("listening", b"maybe"): "set/listening: expected ON or OFF, got 'maybe'",
        ("detect/unicorn", b"ON"): "set/detect/unicorn: unknown label 'unicorn' (model labels: low_tone, mid_tone, "
                                   "high_tone)",
        ("sensitivity", b"loud"): "set/sensitivity: expected one of low, medium, high, got 'loud'",
        ("learn_seconds", b"5"): "set/learn_seconds: expected seconds in [10, 3600], got '5'",
        ("learn_seconds", b"nan"): "set/learn_seconds: expected seconds in [10, 3600], got 'nan'",
        ("learn_seconds", b"soon"): "set/learn_seconds: expected seconds (10-3600), got 'soon'",
        ("listening", b"\xff\xfe"): "set/listening: payload is not UTF-8 text",
        ("listening", b"O" * 100): "set/listening: payload of 100 bytes, expected at most 64",
        ("reboot", b"now"): "set/reboot: unknown command",
    }
    for (name, payload), msg in bad.items():
        with pytest.raises(CommandError) as e:
            p(name, payload)
        assert str(e.value).startswith(msg) and "\n" not in str(e.value), str(e.value)


def test_settings_from_home_assistant_override_the_file_and_bad_entries_are_ignored(tmp_path: Path,
                                                                                    caplog) -> None:  # noqa: ANN001
    cfg = parse_config({"detector": {"labels": ["low_tone", "mid_tone"], "sensitivity": "high"}})
    rs = RuntimeSettings(sensitivity="low", labels={"high_tone": True, "mid_tone": False})
    out = rs.overlay(cfg, TINY)
    assert out.detector.sensitivity == "low" and out.detector.labels == ["low_tone", "high_tone"]
    assert RuntimeSettings().overlay(cfg, TINY) is cfg  # nothing set from Home Assistant: the file alone
    path = tmp_path / "ha-settings.json"
    rs.save(path)
    assert RuntimeSettings.load(path, TINY) == rs
    path.write_text(json.dumps({"listening": "no", "sensitivity": "max", "labels": {"unicorn": True, "low_tone": 1},
                                "learn_seconds": -3, "home_background": ""}))
    with caplog.at_level(logging.WARNING, logger="edge.control"):
        got = RuntimeSettings.load(path, TINY)
    assert got == RuntimeSettings()
    assert len(caplog.records) == 6 and all(str(path) in r.getMessage() for r in caplog.records)
    path.write_text("{not json")
    assert RuntimeSettings.load(path, TINY) == RuntimeSettings()
    assert RuntimeSettings.load(tmp_path / "missing.json", TINY) == RuntimeSettings()


def _pattern(seconds: float) -> np.ndarray:
    spec = []
    t = 0.2
    while t + 2.0 < seconds:  # low, mid, high tone every 1.5 s
        spec += [(500.0, t, t + 0.4), (1000.0, t + 0.5, t + 0.9), (2000.0, t + 1.0, t + 1.4)]
        t += 1.5
    return bursts(spec, seconds, SR, noise=0.003)


def test_sighup_reload_keeps_the_settings_made_from_home_assistant(tmp_path: Path, tiny_model: Path,
                                                                   wav_writer) -> None:  # noqa: ANN001
    cfg = parse_config({"detector": {"sensitivity": "medium"}, "mqtt": {"enabled": True}})
    clf = Classifier(tiny_model)
    control = RemoteControl(cfg, clf.contract, tmp_path / "ha-settings.json")
    src = FileSource(wav_writer("p.wav", _pattern(3.0), SR))
    listener = Listener(control.overlay(cfg), clf, [control.sink], src)
    control.attach(listener)
    reloaded = parse_config({"detector": {"sensitivity": "high", "labels": ["low_tone"]}, "mqtt": {"enabled": True}},
                            "new.yaml")
    life = Lifecycle(listener, lambda: reloaded, Notifier({}), control=control)
    control.submit("sensitivity", b"low")
    control.submit("detect/high_tone", b"ON")
    life.tick()
    assert listener.cfg.detector.sensitivity == "low"
    assert life.reload()
    # The file's new labels apply, except what Home Assistant set; its sensitivity is overridden.
    assert listener.cfg.detector.sensitivity == "low"
    assert listener.detector.cfg.labels == ("low_tone", "high_tone")
    assert json.loads((tmp_path / "ha-settings.json").read_text())["sensitivity"] == "low"
    control.submit("sensitivity", b"medium")
    life.tick()
    assert listener.cfg.detector.sensitivity == "medium"
    src.stop()


def test_commands_over_mqtt_are_applied_on_the_processing_thread_and_bad_ones_ignored(
        mosquitto, tmp_path: Path, tiny_model: Path, wav_writer, caplog) -> None:  # noqa: ANN001, F811
    cfg = parse_config({"detector": {"release_s": 0.1},
                        "mqtt": {"enabled": True, "host": "127.0.0.1", "port": mosquitto.port, "device_id": "ctl",
                                 "status_interval_s": 60.0, "level_interval_s": 0.0, "reconnect_min_s": 0.05},
                        "outbox": {"path": str(tmp_path / "o.sqlite")}})
    clf = Classifier(tiny_model)
    control = RemoteControl(cfg, clf.contract, tmp_path / "ha-settings.json")
    pub = MqttPublisher(cfg, clf.contract)
    src = FileSource(wav_writer("p.wav", _pattern(16.0), SR), realtime=True)
    listener = Listener(control.overlay(cfg), clf, [pub, control.sink], src)
    control.attach(listener)
    Lifecycle(listener, None, Notifier({}), control=control)  # takes over on_tick: commands applied there
    threads: list[str] = []
    real_set, real_reconf = listener.set_listening, listener.reconfigure
    listener.set_listening = lambda on: (threads.append(threading.current_thread().name), real_set(on))[1]
    listener.reconfigure = lambda new: (threads.append(threading.current_thread().name), real_reconf(new))[1]
    sub = Subscriber(mosquitto.host, mosquitto.port, "homesound/ctl/#").start()
    run = threading.Thread(target=listener.run, name="processing")
    root = "homesound/ctl"

    def onsets(after: float) -> list[str]:
        return [json.loads(m.payload)["label"] for m in sub.on(f"{root}/event")
                if m.t > after and json.loads(m.payload)["state"] == "on"]

    with caplog.at_level(logging.INFO, logger="edge"):
        run.start()
        try:
            assert sub.wait_for(lambda ms: any(m.topic == f"{root}/settings" for m in ms), 10)
            assert json.loads(sub.on(f"{root}/settings")[-1].payload)["labels"] == {lab: True for lab in TINY}
            assert sub.wait_for(lambda ms: any(m.topic == f"{root}/event" for m in ms), 10)
            for topic, payload in (("set/listening", "maybe"), ("set/sensitivity", "loud"), ("set/reboot", "now")):
                publish_once(mosquitto.host, mosquitto.port, f"{root}/{topic}", payload)
            publish_once(mosquitto.host, mosquitto.port, f"{root}/set/detect/mid_tone", "OFF")
            assert sub.wait_for(lambda ms: any(m.topic == f"{root}/settings" and
                                               not json.loads(m.payload)["labels"]["mid_tone"] for m in ms), 5)
            t = time.monotonic() + 0.5
            time.sleep(3.5)
            got = onsets(t)
            assert "mid_tone" not in got and got.count("low_tone") >= 2, got
            publish_once(mosquitto.host, mosquitto.port, f"{root}/set/listening", "OFF")
            assert sub.wait_for(lambda ms: any(m.topic == f"{root}/settings" and
                                               json.loads(m.payload)["listening"] is False for m in ms), 5)
            t = time.monotonic()
            time.sleep(3.0)
            assert onsets(t + 0.5) == [], onsets(t)
            publish_once(mosquitto.host, mosquitto.port, f"{root}/set/listening", "ON")
            t = time.monotonic()
            assert sub.wait_for(lambda ms: any(m.t > t and m.topic == f"{root}/event" for m in ms), 5)
            assert listener.listening and run.is_alive()
        finally:
            listener.stop()
            run.join(10)
            sub.stop()
    assert set(threads) == {"processing"}, threads  # never the network thread
    ignored = [r.getMessage() for r in caplog.records if "command ignored" in r.getMessage()]
    assert len(ignored) == 3, ignored
    saved = json.loads((tmp_path / "ha-settings.json").read_text())
    assert saved["listening"] is True and saved["labels"] == {"mid_tone": False}


def test_a_start_resets_every_label_to_off_before_online_and_an_earlier_runs_event_sets_none(
        mosquitto, tmp_path: Path) -> None:  # noqa: F811
    ob = Outbox(tmp_path / "o.sqlite", 100)
    ob.put(json.dumps(make_event(1, "old", "on", "smoke_alarm").to_dict()))  # a crash left its onset queued
    ob.close()
    sub = Subscriber(mosquitto.host, mosquitto.port, "homesound/testdev/#").start()
    publish_once(mosquitto.host, mosquitto.port, "homesound/testdev/smoke_alarm", "ON", retain=True)
    assert sub.wait_for(lambda ms: any(m.topic.endswith("/smoke_alarm") for m in ms), 5)
    t0 = time.monotonic()
    pub = MqttPublisher(make_config(mosquitto.port, tmp_path / "o.sqlite"), make_contract())
    pub.start()
    try:
        assert sub.wait_for(lambda ms: any(m.topic.endswith("/event") for m in ms), 10)
        pub.event(make_event(2, "new", "on", "co_alarm"))
        assert sub.wait_for(lambda ms: [m.payload for m in ms if m.topic.endswith("/co_alarm")][-1:] == [b"ON"], 5)
    finally:
        pub.close()
        sub.stop()
    order = [(m.topic.rsplit("/", 1)[1], m.payload) for m in sub.messages if m.t > t0]
    online = order.index(("availability", b"online"))
    assert {t for t, p in order[:online] if p == b"OFF"} == set(LABELS), order[:online]
    assert [p for t, p in order if t == "smoke_alarm"] == [b"OFF"], order  # the old onset: sent, no state
    assert [json.loads(p)["id"] for t, p in order if t == "event"] == ["old-00001", "new-00002"]


def test_entity_ids_for_every_version_and_controls_announced_only_with_control() -> None:
    t = Topics("homesound", "kitchen")
    plain = discovery_messages("homeassistant", t, LABELS, "m", "1")
    full = discovery_messages("homeassistant", t, LABELS, "m", "1", sensitivities=SENSITIVITIES)
    extra = {topic: p for topic, p in full if topic not in dict(plain)}
    assert len(extra) == 8 + len(LABELS)  # + teaching a sound: text, button, sensor
    for topic, p in full:  # Home Assistant before 2025.10 reads object_id, newer ones default_entity_id
        assert p["object_id"] == p["unique_id"].replace("-", "_") and \
            p["default_entity_id"] == f"{topic.split('/')[1]}.{p['object_id']}", p
    for topic, p in extra.items():
        component = topic.split("/")[1]
        assert p["default_entity_id"] == f"{component}.{p['object_id']}" and p["object_id"] == p["unique_id"]
        if "command_topic" in p:
            assert p["command_topic"].startswith("homesound/kitchen/set/"), p
        if "state_topic" in p:
            assert p["state_topic"] == "homesound/kitchen/settings"
    names = {p["name"] for p in extra.values()}
    assert {"Listening", "Detect dog bark", "Detect CO alarm", "Sensitivity", "Learn this room's background"} <= names
    assert dict(full)["homeassistant/select/kitchen/sensitivity/config"]["options"] == ["low", "medium", "high"]
    assert dict(full)["homeassistant/switch/kitchen/detect_dog_bark/config"]["entity_category"] == "config"
    assert "entity_category" not in dict(full)["homeassistant/switch/kitchen/listening/config"]


def test_the_learn_button_needs_a_model_with_prototypes(tmp_path: Path, wav_writer, caplog) -> None:  # noqa: ANN001
    model = build_tiny_model(tmp_path / "plain.onnx")
    clf = Classifier(model)
    cfg = parse_config({"mqtt": {"enabled": True}})
    control = RemoteControl(cfg, clf.contract, tmp_path / "ha-settings.json")
    src = FileSource(wav_writer("p.wav", _pattern(3.0), SR))
    listener = Listener(cfg, clf, [control.sink], src)
    control.attach(listener)
    control.submit("learn_background", b"PRESS")
    with caplog.at_level(logging.WARNING, logger="edge.control"):
        control.tick()
    assert control.session is None
    assert any("set/learn_background: the model carries no prototypes" in r.getMessage() for r in caplog.records)
    src.stop()


def test_the_shipped_acl_lets_only_home_assistant_send_commands(tmp_path: Path) -> None:
    import shutil
    import subprocess

    from broker import MOSQUITTO_PASSWD, Broker

    if MOSQUITTO_PASSWD is None:
        pytest.skip("mosquitto_passwd is not installed")
    acl = Path(__file__).resolve().parent.parent / "deploy" / "mosquitto" / "acl"
    pw = tmp_path / "passwd"
    for i, user in enumerate(("edge", "homeassistant")):
        subprocess.run([MOSQUITTO_PASSWD, "-b", *(["-c"] if i == 0 else []), str(pw), user, f"{user}-pw"],
                       check=True, capture_output=True)
    shutil.copy(acl, tmp_path / "acl")
    b = Broker(tmp_path / "b", f"allow_anonymous false\npassword_file {pw}\nacl_file {tmp_path / 'acl'}")
    b.start()
    try:
        ha = Subscriber(b.host, b.port, "homesound/#", username="homeassistant", password="homeassistant-pw").start()
        edge = Subscriber(b.host, b.port, "homesound/kitchen/set/#", username="edge", password="edge-pw").start()

        def send(user: str, topic: str) -> None:
            import paho.mqtt.client as mqtt
            from paho.mqtt.enums import CallbackAPIVersion

            c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
            c.username_pw_set(user, f"{user}-pw")
            c.connect(b.host, b.port)
            c.loop_start()
            c.publish(topic, "OFF", qos=1).wait_for_publish(5)  # a denied publish is acknowledged, then dropped
            c.disconnect()
            c.loop_stop()

        send("edge", "homesound/kitchen/set/listening")  # the listener may not command itself
        send("edge", "homesound/kitchen/smoke_alarm")
        send("homeassistant", "homesound/kitchen/set/detect/dog_bark")
        assert ha.wait_for(lambda ms: any(m.topic == "homesound/kitchen/smoke_alarm" for m in ms), 5)
        assert edge.wait_for(lambda ms: any(m.topic == "homesound/kitchen/set/detect/dog_bark" for m in ms), 5)
        time.sleep(0.3)
        assert [m.topic for m in edge.messages] == ["homesound/kitchen/set/detect/dog_bark"]
        assert "homesound/kitchen/set/listening" not in {m.topic for m in ha.messages}
        ha.stop()
        edge.stop()
    finally:
        b.stop()


def test_status_goes_out_at_connect_and_once_at_shutdown_before_offline(
        mosquitto, tmp_path: Path, tiny_model: Path, wav_writer) -> None:  # noqa: ANN001, F811
    cfg = parse_config({"mqtt": {"enabled": True, "host": "127.0.0.1", "port": mosquitto.port, "device_id": "st",
                                 "status_interval_s": 3600.0, "level_interval_s": 0.0, "reconnect_min_s": 0.05},
                        "outbox": {"path": str(tmp_path / "o.sqlite")}})
    sub = Subscriber(mosquitto.host, mosquitto.port, "homesound/st/#").start()
    src = FileSource(wav_writer("p.wav", _pattern(3.0), SR), realtime=True)
    pub = MqttPublisher(cfg, Classifier(tiny_model).contract)
    Listener(cfg, Classifier(tiny_model), [pub], src).run()  # the file ends after 3 s
    assert sub.wait_for(lambda ms: any(m.payload == b"offline" for m in ms), 10)
    sub.stop()
    seq = [(m.topic.rsplit("/", 1)[1], m.payload) for m in sub.messages if m.topic.endswith(("status", "availability"))]
    kinds = [k for k, _ in seq]
    assert kinds == ["availability", "status", "status", "availability"], kinds  # online, at connect, at the end
    first, last = (json.loads(p) for k, p in seq if k == "status")
    assert first["uptime_s"] < 1.0 and last["audio_s"] >= 2.9, (first, last)

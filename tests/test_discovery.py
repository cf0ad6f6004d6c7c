"""Home Assistant discovery payloads: checked against the documented MQTT schemas, and re-sent on HA restart.

The required/allowed keys below come from the Home Assistant MQTT documentation
(integrations event.mqtt, binary_sensor.mqtt, sensor.mqtt and the discovery
section of mqtt): ``state_topic`` is required for all three platforms,
``event_types`` (a non-empty list) for ``event``; ``device`` needs
``identifiers`` or ``connections`` and only works with a ``unique_id``;
``availability_topic`` must not be combined with ``availability``.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from broker import Subscriber, mosquitto, publish_once  # noqa: F401
from mqtt_driver import LABELS, make_config, make_contract

from edge.publish.discovery import Topics, discovery_messages, sanitize_device_id
from edge.publish.mqtt import MqttPublisher

COMMON_KEYS = {
    "availability", "availability_mode", "availability_template", "availability_topic", "device", "enabled_by_default",
    "encoding", "entity_category", "icon", "json_attributes_template", "json_attributes_topic", "name", "object_id",
    "default_entity_id", "origin", "payload_available", "payload_not_available", "qos", "unique_id", "platform",
    "entity_picture",
}
SCHEMAS = {
    "event": {"required": {"state_topic", "event_types"},
              "optional": {"device_class", "value_template"}},
    "binary_sensor": {"required": {"state_topic"},
                      "optional": {"device_class", "expire_after", "force_update", "off_delay", "payload_off",
                                   "payload_on", "value_template"}},
    "sensor": {"required": {"state_topic"},
               "optional": {"device_class", "expire_after", "force_update", "last_reset_value_template",
                            "options", "suggested_display_precision", "state_class", "unit_of_measurement",
                            "value_template"}},
}
DEVICE_KEYS = {"configuration_url", "connections", "hw_version", "identifiers", "manufacturer", "model", "model_id",
               "name", "serial_number", "suggested_area", "sw_version", "via_device"}
BINARY_SENSOR_CLASSES = {
    "battery", "battery_charging", "carbon_monoxide", "cold", "connectivity", "door", "garage_door", "gas", "heat",
    "light", "lock", "moisture", "motion", "moving", "occupancy", "opening", "plug", "power", "presence", "problem",
    "running", "safety", "smoke", "sound", "tamper", "update", "vibration", "window",
}
STATE_CLASSES = {"measurement", "total", "total_increasing"}
TOPIC_RE = re.compile(r"^homeassistant/(event|binary_sensor|sensor)/([a-zA-Z0-9_-]+)/([a-zA-Z0-9_-]+)/config$")


def _messages() -> list[tuple[str, dict]]:
    return discovery_messages("homeassistant", Topics("homesound", "kitchen"), LABELS, "m-7", "0.1.0")


def test_every_discovery_payload_matches_its_platform_schema() -> None:
    msgs = _messages()
    uids = []
    for topic, p in msgs:
        m = TOPIC_RE.match(topic)
        assert m, topic
        platform = m.group(1)
        schema = SCHEMAS[platform]
        assert schema["required"] <= set(p), (topic, schema["required"] - set(p))
        unknown = set(p) - schema["required"] - schema["optional"] - COMMON_KEYS
        assert not unknown, (topic, unknown)
        assert p["unique_id"] and p["unique_id"].startswith("kitchen_")
        # Entity ids the deploy/ automations rely on: <platform>.<device>_<entity>.
        assert p["default_entity_id"] == f"{platform}.{p['unique_id']}".replace("-", "_")
        uids.append(p["unique_id"])
        assert p["availability_topic"] == "homesound/kitchen/availability" and "availability" not in p
        assert (p["payload_available"], p["payload_not_available"]) == ("online", "offline")
        dev = p["device"]
        assert set(dev) <= DEVICE_KEYS and dev["identifiers"] == ["edge_kitchen"]
        assert {"name", "model", "manufacturer", "sw_version"} <= set(dev) and all(dev.values())
        assert p["origin"]["name"]
        assert json.loads(json.dumps(p)) == p  # plain JSON
        if platform == "event":
            assert p["event_types"] == list(LABELS) and p["event_types"]
            assert p["state_topic"] == "homesound/kitchen/event"
        if platform == "binary_sensor":
            assert (p["payload_on"], p["payload_off"]) == ("ON", "OFF")
            assert p["device_class"] in BINARY_SENSOR_CLASSES
        if platform == "sensor" and p.get("device_class") == "enum":
            # Home Assistant: an enum sensor lists its options and has no state_class or unit.
            assert p["options"] and "state_class" not in p and "unit_of_measurement" not in p
        elif platform == "sensor":
            assert p["state_class"] in STATE_CLASSES
            assert p["value_template"].startswith("{{ value_json.")
    assert len(uids) == len(set(uids)), "unique ids must be unique"
    # the device block is one and the same for all entities
    assert len({json.dumps(p["device"], sort_keys=True) for _, p in msgs}) == 1


def test_entities_cover_event_labels_level_and_health() -> None:
    by_uid = {p["unique_id"]: (t, p) for t, p in _messages()}
    assert "kitchen_sound_event" in by_uid
    classes = {lab: by_uid[f"kitchen_{lab}"][1]["device_class"] for lab in LABELS}
    assert classes["smoke_alarm"] == "smoke" and classes["co_alarm"] == "carbon_monoxide"
    assert classes["glass_breaking"] == "safety" and classes["dog_bark"] == "sound"
    assert by_uid["kitchen_sound_event"][0] == "homeassistant/event/kitchen/sound_event/config"
    level = by_uid["kitchen_level"][1]
    assert level["unit_of_measurement"] == "dB" and level["state_topic"] == "homesound/kitchen/level"
    for key in ("uptime_s", "rtf", "cpu_percent", "dropped_samples", "outbox_depth"):
        s = by_uid[f"kitchen_{key}"][1]
        assert s["state_topic"] == "homesound/kitchen/status" and s["entity_category"] == "diagnostic"


def test_unique_ids_are_stable_across_calls() -> None:
    assert _messages() == _messages()


def test_device_id_is_sanitised() -> None:
    assert sanitize_device_id("Living Room.Pi-4") == "living-room-pi-4"
    assert sanitize_device_id("###") == "edge"


def test_event_payload_carries_event_type_for_home_assistant() -> None:
    from mqtt_driver import make_event

    from edge.publish.mqtt import event_payload

    d = json.loads(event_payload(make_event(3, "x", "on", "co_alarm")))
    assert d["event_type"] == "co_alarm" and d["id"] == "x-00003" and d["state"] == "on"


def test_discovery_is_retained_and_resent_when_home_assistant_comes_online(mosquitto, tmp_path: Path) -> None:  # noqa: F811
    expected = {t for t, _ in discovery_messages("homeassistant", Topics("homesound", "testdev"), LABELS,
                                                 "test-1.2.3", "x")}
    pub = MqttPublisher(make_config(mosquitto.port, tmp_path / "o.sqlite"), make_contract())
    pub.start()
    try:
        sub = Subscriber(mosquitto.host, mosquitto.port, "homeassistant/+/testdev/+/config").start()

        def counts(ms) -> dict[str, int]:  # noqa: ANN001
            c: dict[str, int] = {}
            for m in ms:
                c[m.topic] = c.get(m.topic, 0) + 1
            return c

        assert sub.wait_for(lambda ms: set(counts(ms)) == expected)
        time.sleep(0.2)
        assert all(v == 1 for v in counts(sub.messages).values())
        payload = json.loads(sub.on("homeassistant/event/testdev/sound_event/config")[0].payload)
        assert payload["event_types"] == list(LABELS) and payload["device"]["sw_version"]

        publish_once(mosquitto.host, mosquitto.port, "homeassistant/status", "online")
        assert sub.wait_for(lambda ms: set(counts(ms)) == expected and all(v == 2 for v in counts(ms).values()))
        sub.stop()
        late = Subscriber(mosquitto.host, mosquitto.port, "homeassistant/#").start()
        assert late.wait_for(lambda ms: {m.topic for m in ms if m.retain} == expected)
        late.stop()
    finally:
        pub.close()

"""MQTT topics of one listener and its Home Assistant discovery messages.

Pure functions: given the model's labels and the device identity they return
``(topic, payload)`` pairs; :mod:`edge.publish.mqtt` publishes them retained at every
connect and again whenever Home Assistant announces ``<prefix>/status`` =
``online``. Payloads follow the Home Assistant MQTT integration documentation
(``event.mqtt``, ``binary_sensor.mqtt``, ``sensor.mqtt``): full key names, one
``device`` block shared by all entities, ``availability_topic`` and a
``unique_id`` built from the device id and the entity, so it is stable across
restarts. Discovery topics are ``<prefix>/<component>/<device_id>/<object_id>/config``.
"""

from __future__ import annotations

import json
import re
import socket
from dataclasses import dataclass
from typing import Any

MANUFACTURER = "edge-listener"
MODEL = "Household sound listener"

# Home Assistant binary_sensor device classes for labels whose meaning has one.
BINARY_SENSOR_CLASS: dict[str, str] = {
    "smoke_alarm": "smoke",
    "co_alarm": "carbon_monoxide",
    "glass_breaking": "safety",
}
DEFAULT_BINARY_SENSOR_CLASS = "sound"

# Status JSON keys shown as diagnostic sensors: key -> (name, unit, device_class, state_class).
HEALTH_SENSORS: dict[str, tuple[str, str | None, str | None, str]] = {
    "uptime_s": ("Uptime", "s", "duration", "measurement"),
    "rtf": ("Real-time factor", None, None, "measurement"),
    "cpu_percent": ("CPU", "%", None, "measurement"),
    "dropped_samples": ("Dropped samples", None, None, "total_increasing"),
    "outbox_depth": ("Outbox depth", None, None, "measurement"),
    "outbox_dropped": ("Outbox dropped events", None, None, "total_increasing"),
    "onsets_held_back": ("Unfamiliar sounds held back", None, None, "total_increasing"),
}

# The status JSON's ``mic`` field as an enum diagnostic sensor (see edge.capture.supervisor). While the microphone
# is lost or silent the availability topic stays ``online`` (the process is alive and reporting); this
# sensor and the status topic say what is wrong.
MIC_STATES = ("ok", "lost", "silent")

# Only onsets fire the HA event entity; an offset renders "{}", which HA ignores.
EVENT_VALUE_TEMPLATE = "{% if value_json.state == 'on' %}{{ value }}{% else %}{}{% endif %}"


def sanitize_device_id(name: str) -> str:
    """Lower-case ``name`` and keep only ``[a-z0-9_-]`` (other runs become ``-``); ``"edge"`` if nothing is left."""
    s = re.sub(r"[^a-z0-9_-]+", "-", name.strip().lower()).strip("-")
    return s or "edge"


def default_device_id() -> str:
    """Device id from the host name (first DNS label), sanitised."""
    return sanitize_device_id(socket.gethostname().split(".")[0])


@dataclass(frozen=True)
class Topics:
    """The listener's own topics, all under ``<base>/<device>/``."""

    base: str
    device: str

    @property
    def root(self) -> str:
        return f"{self.base}/{self.device}"

    @property
    def availability(self) -> str:
        return f"{self.root}/availability"

    @property
    def event(self) -> str:
        return f"{self.root}/event"

    @property
    def level(self) -> str:
        return f"{self.root}/level"

    @property
    def status(self) -> str:
        return f"{self.root}/status"

    def state(self, label: str) -> str:
        return f"{self.root}/{label}"


def pretty_label(label: str) -> str:
    """``"smoke_alarm"`` -> ``"Smoke alarm"``."""
    words = label.replace("-", " ").replace("_", " ").split()
    return " ".join(words).capitalize() if words else label


def device_block(device_id: str, model_version: str, sw_version: str) -> dict[str, Any]:
    return {
        "identifiers": [f"edge_{device_id}"],
        "name": f"Sound listener {device_id}",
        "manufacturer": MANUFACTURER,
        "model": f"{MODEL} (model {model_version})",
        "sw_version": sw_version,
    }


def _common(
    topics: Topics, device: dict[str, Any], sw_version: str, unique_id: str, name: str, domain: str
) -> dict[str, Any]:
    return {
        "name": name,
        "unique_id": unique_id,
        # Predictable entity ids (``binary_sensor.<device>_<label>``) for automations;
        # Home Assistant 2025.10+ reads this instead of the deprecated object_id.
        "default_entity_id": f"{domain}.{unique_id.replace('-', '_')}",  # entity ids allow no '-'

        "availability_topic": topics.availability,
        "payload_available": "online",
        "payload_not_available": "offline",
        "device": device,
        "origin": {"name": MANUFACTURER, "sw_version": sw_version},
    }


def discovery_messages(
    prefix: str,
    topics: Topics,
    labels: list[str] | tuple[str, ...],
    model_version: str,
    sw_version: str,
    qos: int = 1,
) -> list[tuple[str, dict[str, Any]]]:
    """Every discovery ``(topic, payload)`` for one listener; publish retained, payload as JSON.

    Entities: one ``event`` (event types = ``labels``), one ``binary_sensor`` per
    label (``ON``/``OFF`` on ``<base>/<device>/<label>``), a level ``sensor``
    (dBFS) and one diagnostic ``sensor`` per :data:`HEALTH_SENSORS` key of the
    status topic.
    """
    dev = topics.device
    device = device_block(dev, model_version, sw_version)
    out: list[tuple[str, dict[str, Any]]] = []

    ev = _common(topics, device, sw_version, f"{dev}_sound_event", "Sound event", "event")
    ev.update(
        {
            "state_topic": topics.event,
            "event_types": list(labels),
            "value_template": EVENT_VALUE_TEMPLATE,
            "qos": qos,
        }
    )
    out.append((f"{prefix}/event/{dev}/sound_event/config", ev))

    for label in labels:
        bs = _common(topics, device, sw_version, f"{dev}_{label}", pretty_label(label), "binary_sensor")
        bs.update(
            {
                "state_topic": topics.state(label),
                "payload_on": "ON",
                "payload_off": "OFF",
                "device_class": BINARY_SENSOR_CLASS.get(label, DEFAULT_BINARY_SENSOR_CLASS),
                "qos": qos,
            }
        )
        out.append((f"{prefix}/binary_sensor/{dev}/{label}/config", bs))

    lv = _common(topics, device, sw_version, f"{dev}_level", "Sound level", "sensor")
    lv.update(
        {
            "state_topic": topics.level,
            "value_template": "{{ value_json.dbfs }}",
            "unit_of_measurement": "dB",
            "state_class": "measurement",
            "json_attributes_topic": topics.level,
            "icon": "mdi:volume-high",
        }
    )
    out.append((f"{prefix}/sensor/{dev}/level/config", lv))

    for key, (name, unit, device_class, state_class) in HEALTH_SENSORS.items():
        s = _common(topics, device, sw_version, f"{dev}_{key}", name, "sensor")
        s.update(
            {
                "state_topic": topics.status,
                "value_template": "{{ value_json." + key + " | default(none) }}",
                "state_class": state_class,
                "entity_category": "diagnostic",
            }
        )
        if unit:
            s["unit_of_measurement"] = unit
        if device_class:
            s["device_class"] = device_class
        out.append((f"{prefix}/sensor/{dev}/{key}/config", s))

    mic = _common(topics, device, sw_version, f"{dev}_mic", "Microphone", "sensor")
    mic.update(
        {
            "state_topic": topics.status,
            "value_template": "{{ value_json.mic }}",
            "device_class": "enum",  # Home Assistant: enum sensors list options and have no state_class/unit
            "options": list(MIC_STATES),
            "entity_category": "diagnostic",
            "icon": "mdi:microphone",
        }
    )
    out.append((f"{prefix}/sensor/{dev}/mic/config", mic))
    return out


def encode(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True)

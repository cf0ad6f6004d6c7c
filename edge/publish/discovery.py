"""MQTT topics of one listener and its Home Assistant discovery messages.

Pure functions: given the model's labels and the device identity they return
``(topic, payload)`` pairs; :mod:`edge.publish.mqtt` publishes them retained at every
connect and again whenever Home Assistant announces ``<prefix>/status`` =
``online``. Payloads follow the Home Assistant MQTT integration documentation
(``event.mqtt``, ``binary_sensor.mqtt``, ``sensor.mqtt``, and for the controls
``switch.mqtt``, ``select.mqtt``, ``number.mqtt``, ``button.mqtt``): full key names, one
``device`` block shared by all entities, ``availability_topic`` and a
``unique_id`` built from the device id and the entity, so it is stable across
restarts. Discovery topics are ``<prefix>/<component>/<device_id>/<object_id>/config``.

Entity ids (``binary_sensor.<device>_<label>``, ...): every payload carries both
``object_id`` (what Home Assistant before 2025.10 reads; 2025.4 was tested) and
``default_entity_id`` (2025.10 and newer; with it present they do not warn about
``object_id``, and from 2026.4 they ignore ``object_id``). Without them Home
Assistant would name the entities after the device, e.g.
``binary_sensor.sound_listener_kitchen_smoke_alarm``.
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

# Controls (see edge.publish.control): the settings topic's JSON keys they show.
LEARN_STATES = ("idle", "learning")
#: Seconds of audio one press of "Learn this room's background" learns from: the number entity's range.
LEARN_SECONDS_RANGE = (10.0, 3600.0)
# Words shown in upper case in entity names ("co_alarm" -> "CO alarm").
_ACRONYMS = {"co": "CO", "tv": "TV"}


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

    @property
    def settings(self) -> str:
        """Retained JSON of the settings Home Assistant can change (see edge.publish.control)."""
        return f"{self.root}/settings"

    @property
    def commands(self) -> str:
        """Prefix of the command topics: ``<root>/set/<name>``."""
        return f"{self.root}/set"

    def command(self, name: str) -> str:
        return f"{self.commands}/{name}"

    def state(self, label: str) -> str:
        return f"{self.root}/{label}"


def pretty_label(label: str) -> str:
    """``"smoke_alarm"`` -> ``"Smoke alarm"``, ``"co_alarm"`` -> ``"CO alarm"``."""
    words = label.replace("-", " ").replace("_", " ").lower().split()
    if not words:
        return label
    words = [_ACRONYMS.get(w, w) for w in words]
    return " ".join([words[0][:1].upper() + words[0][1:], *words[1:]])


def _lower_first(name: str) -> str:
    """``"Dog bark"`` -> ``"dog bark"``; an acronym stays (``"CO alarm"``)."""
    first = name.split(" ", 1)[0]
    return name if first.isupper() and len(first) > 1 else name[:1].lower() + name[1:]


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
    object_id = unique_id.replace("-", "_")  # entity ids allow no '-'
    return {
        "name": name,
        "unique_id": unique_id,
        # Predictable entity ids (``binary_sensor.<device>_<label>``) for automations: Home Assistant
        # before 2025.10 reads object_id, newer versions default_entity_id (and then do not warn
        # about object_id; 2026.4 and newer ignore it).
        "object_id": object_id,
        "default_entity_id": f"{domain}.{object_id}",
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
    sensitivities: tuple[str, ...] | None = None,
    taught: tuple[str, ...] = (),
) -> list[tuple[str, dict[str, Any]]]:
    """Every discovery ``(topic, payload)`` for one listener; publish retained, payload as JSON.

    ``taught``: names of the sounds taught on this device (``edge enroll``): event types and binary
    sensors like the labels (no "Detect" switch: they are always on while taught).

    Entities: one ``event`` (event types = ``labels``), one ``binary_sensor`` per
    label (``ON``/``OFF`` on ``<base>/<device>/<label>``), a level ``sensor``
    (dBFS) and one diagnostic ``sensor`` per :data:`HEALTH_SENSORS` key of the
    status topic. With ``sensitivities`` (the listener takes commands, see
    :mod:`edge.publish.control`) also the controls of :func:`control_messages`.
    """
    dev = topics.device
    device = device_block(dev, model_version, sw_version)
    out: list[tuple[str, dict[str, Any]]] = []

    ev = _common(topics, device, sw_version, f"{dev}_sound_event", "Sound event", "event")
    ev.update(
        {
            "state_topic": topics.event,
            "event_types": [*labels, *taught],
            "value_template": EVENT_VALUE_TEMPLATE,
            "qos": qos,
        }
    )
    out.append((f"{prefix}/event/{dev}/sound_event/config", ev))

    for label in (*labels, *taught):
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
    if sensitivities is not None:
        out += control_messages(prefix, topics, labels, device, sw_version, sensitivities, qos)
    return out


def control_messages(
    prefix: str,
    topics: Topics,
    labels: list[str] | tuple[str, ...],
    device: dict[str, Any],
    sw_version: str,
    sensitivities: tuple[str, ...],
    qos: int = 1,
) -> list[tuple[str, dict[str, Any]]]:
    """The entities that change the listener's settings, all showing the retained ``<root>/settings`` JSON.

    A ``switch`` "Listening" (``<root>/set/listening``, ON/OFF), a ``switch`` per label
    "Detect <label>" (``<root>/set/detect/<label>``), a ``select`` "Sensitivity"
    (``<root>/set/sensitivity``), a ``button`` "Learn this room's background"
    (``<root>/set/learn_background``), a ``number`` "Background learning time" in s
    (``<root>/set/learn_seconds``) and a diagnostic ``sensor`` "Background learning"
    (``idle``/``learning``, progress as attributes); a ``text`` "Sound to teach" (``<root>/set/teach_name``), a
    ``button`` "Teach it (one example)" (``<root>/set/teach``: the next seconds of audio are one example of
    that sound) and a diagnostic ``sensor`` "Teaching" (``idle``/``listening``, name and examples as attributes).
    """
    dev = topics.device
    out: list[tuple[str, dict[str, Any]]] = []

    def entity(component: str, key: str, name: str, **fields: Any) -> None:
        p = _common(topics, device, sw_version, f"{dev}_{key}", name, component)
        p.update(fields)
        out.append((f"{prefix}/{component}/{dev}/{key}/config", p))

    on_off = {"payload_on": "ON", "payload_off": "OFF", "state_topic": topics.settings, "qos": qos}
    entity("switch", "listening", "Listening", command_topic=topics.command("listening"),
           value_template="{{ 'ON' if value_json.listening else 'OFF' }}", icon="mdi:ear-hearing", **on_off)
    for label in labels:
        entity("switch", f"detect_{label}", f"Detect {_lower_first(pretty_label(label))}",
               command_topic=topics.command(f"detect/{label}"),
               value_template="{{ 'ON' if value_json.labels['" + label + "'] else 'OFF' }}",
               entity_category="config", icon="mdi:tag-outline", **on_off)
    entity("select", "sensitivity", "Sensitivity", command_topic=topics.command("sensitivity"),
           state_topic=topics.settings, value_template="{{ value_json.sensitivity }}", options=list(sensitivities),
           entity_category="config", icon="mdi:tune-variant", qos=qos)
    entity("button", "learn_background", "Learn this room's background",
           command_topic=topics.command("learn_background"), payload_press="PRESS", entity_category="config",
           icon="mdi:school-outline", qos=qos)
    lo, hi = LEARN_SECONDS_RANGE
    entity("number", "learn_seconds", "Background learning time", command_topic=topics.command("learn_seconds"),
           state_topic=topics.settings, value_template="{{ value_json.learn_seconds }}", min=lo, max=hi, step=10,
           mode="box", unit_of_measurement="s", device_class="duration", entity_category="config",
           icon="mdi:timer-outline", qos=qos)
    entity("text", "teach_name", "Sound to teach", command_topic=topics.command("teach_name"),
           state_topic=topics.settings, value_template="{{ value_json.teaching.name or '' }}", min=0, max=40,
           pattern="^([a-z][a-z0-9_]{0,39})?$", mode="text", entity_category="config", icon="mdi:tag-plus-outline",
           qos=qos)
    entity("button", "teach", "Teach it (one example)", command_topic=topics.command("teach"), payload_press="PRESS",
           entity_category="config", icon="mdi:ear-hearing", qos=qos)
    entity("sensor", "teaching", "Teaching", state_topic=topics.settings,
           value_template="{{ value_json.teaching.state }}", device_class="enum", options=["idle", "listening"],
           json_attributes_topic=topics.settings, json_attributes_template="{{ value_json.teaching | tojson }}",
           entity_category="diagnostic", icon="mdi:ear-hearing")
    entity("sensor", "background_learning", "Background learning", state_topic=topics.settings,
           value_template="{{ value_json.learning.state }}", device_class="enum", options=list(LEARN_STATES),
           json_attributes_topic=topics.settings, json_attributes_template="{{ value_json.learning | tojson }}",
           entity_category="diagnostic", icon="mdi:school-outline")
    return out


def removal_topics(prefix: str, topics: Topics, names: tuple[str, ...] | list[str]) -> list[str]:
    """Retained topics to clear (publish an empty retained payload) when taught sounds are removed: each
    one's binary_sensor discovery config (Home Assistant then deletes the entity) and its state."""
    dev = topics.device
    return [t for n in names for t in (f"{prefix}/binary_sensor/{dev}/{n}/config", topics.state(n))]


def encode(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True)

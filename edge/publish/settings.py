"""Settings of the publish stage: ``output`` (stdout), ``mqtt`` (broker, TLS, discovery), ``outbox``, ``privacy``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from edge.core.schema import option

# A topic prefix we publish under: no wildcards (paho refuses to publish to them, on the
# network thread, long after start), no NUL, no empty level ("a//b", leading or trailing "/").
TOPIC = r"[^+#/\x00]+(/[^+#/\x00]+)*"
TOPIC_SAYS = "an MQTT topic without wildcards (+ #) or empty levels, e.g. 'home/sound'"


@dataclass(frozen=True)
class OutputConfig:
    stdout: bool | None = option(None, "JSON lines on stdout: true/false; null = on when MQTT is off")


@dataclass(frozen=True)
class TlsConfig:
    enabled: bool = option(False, "connect with TLS")
    ca_file: str | None = option(None, "CA bundle (PEM) to verify the broker; null = system CAs")
    cert_file: str | None = option(None, "client certificate (PEM), optional")
    key_file: str | None = option(None, "client private key (PEM), optional")
    insecure: bool = option(False, "skip certificate verification (not recommended)")


@dataclass(frozen=True)
class DiscoveryConfig:
    enabled: bool = option(True, "publish Home Assistant MQTT discovery messages")
    prefix: str = option("homeassistant", "Home Assistant discovery prefix", pattern=TOPIC, pattern_says=TOPIC_SAYS)


@dataclass(frozen=True)
class MqttConfig:
    enabled: bool = option(False, "publish events to an MQTT broker")
    host: str = option("localhost", "broker host name or address")
    port: int = option(1883, "broker TCP port", 1, 65535)
    client_id: str | None = option(None, 'MQTT client id; null = "edge-<device_id>"')
    keepalive: int = option(60, "keep-alive interval in seconds", 5, 3600)
    qos: int = option(1, "QoS of event messages", 0, 2)
    base_topic: str = option("homesound", "topics are <base_topic>/<device_id>/...", pattern=TOPIC,
                             pattern_says=TOPIC_SAYS)
    device_id: str | None = option(None, "[a-z0-9_-]+; null = derived from the host name", pattern=r"[a-z0-9_-]+")
    username: str | None = option(None, "broker user name; null = anonymous")
    password: str | None = option(None, "password in clear text; prefer password_file or password_env")
    password_file: str | None = option(None, "file whose first line is the password")
    password_env: str | None = option(None, "name of an environment variable holding the password")
    tls: TlsConfig = option(TlsConfig(), "TLS to the broker")
    discovery: DiscoveryConfig = option(DiscoveryConfig(), "Home Assistant discovery")
    level_interval_s: float = option(1.0, "seconds between level messages; 0 = off", 0.0, 3600.0)
    status_interval_s: float = option(30.0, "seconds between status/health reports (also for --verbose)",
                                      1.0, 3600.0)
    reconnect_min_s: float = option(1.0, "first reconnect delay in seconds; doubles with jitter", 0.01, 3600.0)
    reconnect_max_s: float = option(60.0, "longest reconnect delay in seconds", 0.01, 3600.0)


@dataclass(frozen=True)
class OutboxConfig:
    path: str | None = option(None, "SQLite outbox file; null = $STATE_DIRECTORY or ~/.local/state/edge")
    max_events: int = option(10000, "oldest queued events are dropped (and counted) beyond this many",
                             1, 10_000_000)


@dataclass(frozen=True)
class PrivacyConfig:
    capture_clips: bool = option(False, "save a short audio clip around each event to disk (off: audio never "
                                 "leaves memory)")
    clips_dir: str | None = option(None, "directory for clips; null = <state dir>/clips")
    max_clips: int = option(50, "oldest clips are deleted beyond this count", 1, 100000)
    clip_s: float = option(5.0, "seconds of audio per clip", 0.5, 60.0)


class PublishConfig(Protocol):
    """The part of the configuration the publish stage reads (``edge.service.config.Config`` has it)."""

    @property
    def mqtt(self) -> MqttConfig: ...

    @property
    def outbox(self) -> OutboxConfig: ...

    @property
    def privacy(self) -> PrivacyConfig: ...

    @property
    def source_file(self) -> str: ...

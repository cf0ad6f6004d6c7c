"""MQTT publisher: events, states, level and health to a broker, for Home Assistant.

:class:`MqttPublisher` is a :class:`edge.publish.sinks.Sink`. The processing thread only
writes to the durable :class:`edge.publish.outbox.Outbox` (events) or to a one-slot
mailbox (level, status) and returns; one background thread owns the paho client
(manual ``loop()``), connects, reconnects with exponential back-off and jitter,
and sends the outbox in order, deleting a row only when its PUBACK arrives.
Because every paho call happens on that one thread, a message id (``mid``) is
always registered before its acknowledgement can be processed.

Topics (``<base>/<device>/...``, see README.md, "MQTT and Home Assistant"): ``availability`` (retained,
last will ``offline``), ``event`` (JSON per onset/offset, QoS from config),
``<label>`` (``ON``/``OFF``, retained), ``level`` (JSON, rate-limited) and
``status`` (retained health JSON, rate-limited).

At every connect, before ``online``: the ``ON``/``OFF`` state of every label as of the
events sent so far (all ``OFF`` after a start: no event is open then, whatever a
crashed run left retained), then ``online``, discovery, and a fresh status (asked
from the processing loop through :attr:`MqttPublisher.status_wanted`; again when Home
Assistant announces ``online``). With :meth:`MqttPublisher.enable_control` it also
takes commands on ``<base>/<device>/set/#`` (see :mod:`edge.publish.control`) and
publishes the current settings, retained, on ``<base>/<device>/settings``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge.core import lazy
from edge.core.events import Event
from edge.core.files import FileProblem, read_text, regular_file
from edge.core.schema import ConfigError
from edge.model.contract import ModelContract
from edge.publish.discovery import Topics, default_device_id, discovery_messages, encode, removal_topics
from edge.publish.outbox import Outbox
from edge.publish.paho_client import CallbackAPIVersion, MQTTErrorCode, mqtt  # paho without OpenSSL until TLS
from edge.publish.settings import MqttConfig, PublishConfig, TlsConfig

log = logging.getLogger("edge.mqtt")

WINDOW = 100            # outbox messages in flight (sent, not yet acknowledged)
LOOP_TIMEOUT_S = 1.0    # network thread's idle wake-up period (s); new work wakes it at once (see _kick)
FLUSH_TIMEOUT_S = 3.0   # close(): how long to wait for outstanding acknowledgements (s)
OFFLINE_TIMEOUT_S = 2.0  # close(): how long to wait for the broker to take "offline" (s)

# MQTT 3.1.1 CONNACK 4/5 and their MQTT 5 equivalents.
_AUTH_CODES = {4, 5, 134, 135}


def sw_version() -> str:
    """The package's version (``edge.__version__``, the distribution's: tests/test_lean_imports.py checks).

    Not ``importlib.metadata.version``: that imports ``email``, ``zipfile`` and more, ~3 MB of
    resident memory for one string.
    """
    from edge import __version__

    return __version__


#: a password file holds one line
MAX_PASSWORD_FILE_BYTES = 64 * 1024


def resolve_password(m: MqttConfig, source: str = "config") -> str | None:
    """The broker password from ``password``, ``password_file`` (first line) or ``password_env``."""
    if m.password is not None:
        return m.password
    if m.password_file is not None:
        p = Path(m.password_file).expanduser()
        try:
            lines = read_text(p, MAX_PASSWORD_FILE_BYTES).splitlines()  # regular file, bounded, never blocks
        except FileProblem as e:
            if e.missing:
                raise ConfigError(f"{source}: mqtt.password_file: file not found: {p}") from None
            raise ConfigError(f"{source}: mqtt.password_file: {e}") from None
        if not lines or not lines[0]:
            raise ConfigError(f"{source}: mqtt.password_file: {p} is empty")
        return lines[0]
    if m.password_env is not None:
        value = os.environ.get(m.password_env)
        if not value:
            raise ConfigError(f"{source}: mqtt.password_env: environment variable {m.password_env} is not set")
        return value
    return None


#: a certificate bundle is a few hundred KiB at most
MAX_PEM_BYTES = 16 * 1024 * 1024


def _configure_tls(client: mqtt.Client, t: TlsConfig, source: str) -> None:
    for key in ("ca_file", "cert_file", "key_file"):
        path = getattr(t, key)
        if path is None:
            continue
        try:
            regular_file(Path(path).expanduser(), MAX_PEM_BYTES)  # ssl reads it by name: a pipe would block it
        except FileProblem as e:
            if e.missing:
                raise ConfigError(f"{source}: mqtt.tls.{key}: file not found: {path}") from None
            raise ConfigError(f"{source}: mqtt.tls.{key}: {e}") from None
    if t.key_file and not t.cert_file:
        raise ConfigError(f"{source}: mqtt.tls.key_file: given without mqtt.tls.cert_file")
    import ssl  # TLS is configured: the deferred module runs now

    try:
        client.tls_set(
            ca_certs=str(Path(t.ca_file).expanduser()) if t.ca_file else None,
            certfile=str(Path(t.cert_file).expanduser()) if t.cert_file else None,
            keyfile=str(Path(t.key_file).expanduser()) if t.key_file else None,
            cert_reqs=ssl.CERT_NONE if t.insecure else ssl.CERT_REQUIRED,
        )
    except (ssl.SSLError, OSError, ValueError) as e:
        raise ConfigError(f"{source}: mqtt.tls: cannot load certificates/keys ({e})") from None
    if t.insecure:
        client.tls_insecure_set(True)
        log.warning("mqtt: TLS certificate verification is OFF (mqtt.tls.insecure: true)")


def describe_connect_error(e: BaseException, host: str, port: int) -> str:
    """One line saying why a connection attempt failed and which setting to check."""
    where = f"{host}:{port}"
    ssl = lazy.loaded("ssl")  # not run yet (no TLS): e cannot be an SSL error, and is not made to load it
    if ssl is not None and isinstance(e, ssl.SSLCertVerificationError):
        why = getattr(e, "verify_message", None) or str(e)
        return f"mqtt: TLS certificate verify failed for {where} (check mqtt.tls.ca_file): {why}"
    if ssl is not None and isinstance(e, ssl.SSLError):
        return f"mqtt: TLS handshake with {where} failed: {e.reason or e} (check mqtt.tls and mqtt.port)"
    if isinstance(e, ConnectionRefusedError):
        return f"mqtt: broker {where} unreachable: connection refused (check mqtt.host/port)"
    if isinstance(e, socket.gaierror):
        return f"mqtt: cannot resolve mqtt.host {host!r} ({e.strerror})"
    if isinstance(e, TimeoutError):
        return f"mqtt: broker {where} unreachable: timed out (check mqtt.host/port)"
    if isinstance(e, OSError):
        return f"mqtt: broker {where} unreachable: {e.strerror or e} (check mqtt.host/port)"
    return f"mqtt: cannot connect to {where}: {type(e).__name__}: {e}"


def describe_refusal(reason: Any, host: str, port: int) -> str:
    code = getattr(reason, "value", reason)
    if code in _AUTH_CODES:
        return "mqtt: connection refused: not authorised (check mqtt.username/password)"
    return f"mqtt: connection refused by {host}:{port}: {reason}"


def event_payload(ev: Event) -> str:
    """The ``event`` topic JSON: :meth:`Event.to_dict` plus ``event_type`` (= label, for Home Assistant)."""
    d = ev.to_dict()
    d["event_type"] = ev.label
    return json.dumps(d, separators=(",", ":"))


class MqttPublisher:
    """Publishes to MQTT without ever making the caller wait on the network.

    Args:
        cfg: whole configuration (``cfg.mqtt`` and ``cfg.outbox`` are used).
        contract: the model contract (labels for discovery, model version).
        outbox: an already-open outbox (tests); ``None`` = open ``cfg.outbox`` at :meth:`start`.
    """

    def __init__(self, cfg: PublishConfig, contract: ModelContract, outbox: Outbox | None = None) -> None:
        self.cfg = cfg
        self.m = cfg.mqtt
        self.contract = contract
        self.device_id = self.m.device_id or default_device_id()
        self.topics = Topics(self.m.base_topic.rstrip("/"), self.device_id)
        self.client_id = self.m.client_id or f"edge-{self.device_id}"
        self.outbox = outbox
        self._own_outbox = outbox is None
        self._client: mqtt.Client | None = None
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()
        self._wake = threading.Event()
        self._slot_lock = threading.Lock()
        self._status_slot: str | None = None
        self._level_slot: str | None = None
        self._last_status: str | None = None
        self._last_level_t = -1e18
        self._last_status_t = -1e18
        self._last_mic: Any = None  # (mic, listening) of the last status sent
        self._latest_health: dict[str, Any] | None = None
        self._latest_queued: dict[str, Any] | None = None  # the health dict last put in the status slot
        # Set on the network thread at every connect and when Home Assistant comes online: the
        # processing loop (edge.service.listener) answers with a fresh status, past the rate limit.
        self.status_wanted = threading.Event()
        # Retained ON/OFF per label as of the events sent so far; re-sent before "online" at every connect.
        self._label_state: dict[str, str] = {lab: "OFF" for lab in contract.labels}
        self._run_from_seq = 0  # outbox rows up to this seq were queued by an earlier run: no state from them
        # Control from Home Assistant (enable_control): commands in, settings out.
        self.on_command: Callable[[str, bytes], None] | None = None
        self._sensitivities: tuple[str, ...] | None = None
        self._settings_slot: str | None = None
        self._last_settings: str | None = None
        self.unstored = 0  # events the outbox failed to store (disk full, I/O error)
        self._dropped_logged = 0
        # network-thread state
        self._sock_open = False
        self.connected = False
        self._inflight: dict[int, int] = {}  # mid -> outbox seq
        self._early: set[int] = set()        # mids acknowledged inside publish() (QoS 0)
        self._acked: list[int] = []
        self._last_sent_seq = 0
        self._attempt = 0
        self._last_error: str | None = None
        self._ha_status_topic = f"{self.m.discovery.prefix}/status"
        self.connects = 0
        # Sounds taught on this device (edge enroll) and those removed: set by taught(), applied on the
        # network thread (discovery, retained states).
        self._taught: tuple[str, ...] = ()
        self._removed: tuple[str, ...] = ()
        self._taught_slot: tuple[tuple[str, ...], tuple[str, ...]] | None = None

    # ------------------------------------------------------------------ Sink API (processing thread)

    def start(self) -> None:
        """Check credentials/TLS files, open the outbox and start the network thread (never blocks on it)."""
        src = self.cfg.source_file
        password = resolve_password(self.m, src)
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv311, clean_session=True
        )
        if self.m.username is not None:
            client.username_pw_set(self.m.username, password)
        elif password is not None:
            raise ConfigError(f"{src}: mqtt.username: a password is set but no username")
        if self.m.tls.enabled:
            _configure_tls(client, self.m.tls, src)
        client.will_set(self.topics.availability, "offline", qos=1, retain=True)
        client.max_inflight_messages_set(WINDOW)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        if self.outbox is None:
            try:
                self.outbox = Outbox(self.cfg.outbox.path, self.cfg.outbox.max_events)
            except ConfigError as e:  # name the config file, like every other setting's message
                raise ConfigError(f"{src}: {e}") from None
        self._client = client
        depth = self.outbox.depth()
        self._run_from_seq = self.outbox.last_seq()
        if depth:
            log.info("mqtt: %d event(s) waiting in the outbox from a previous run", depth)
        self._thread = threading.Thread(target=self._run, name="mqtt", daemon=True)
        self._thread.start()

    def event(self, ev: Event) -> None:
        """Store the event durably, then let the network thread send it."""
        assert self.outbox is not None, "start() first"
        payload = event_payload(ev)
        try:
            self.outbox.put(payload, created=ev.offset_time or ev.onset_time)
        except sqlite3.Error as e:  # disk full, I/O error, read-only file system: keep listening
            self.unstored += 1
            log.error("mqtt: outbox %s cannot store events (%s); sending without a copy on disk, "
                      "%d event(s) so far", self.outbox.path, e, self.unstored)
            client = self._client
            if self.connected and client is not None:  # paho's publish() is thread-safe; best effort
                client.publish(self.topics.event, payload, qos=self.m.qos)
            return
        if self.outbox.dropped_session != self._dropped_logged:
            self._dropped_logged = self.outbox.dropped_session
            log.warning(
                "mqtt: outbox full (outbox.max_events %d): dropped the oldest event(s), %d dropped so far",
                self.outbox.max_events, self._dropped_logged,
            )
        self._wake.set()
        self._kick()

    def level(self, dbfs: float, top: list[tuple[str, float]], t: float) -> None:
        """Current level (dBFS) and top-3 labels; sent at most every ``mqtt.level_interval_s`` (0 = never)."""
        iv = self.m.level_interval_s
        if iv <= 0:
            return
        now = time.monotonic()
        if now - self._last_level_t < iv:
            return
        self._last_level_t = now
        payload = {
            "dbfs": round(float(dbfs), 1),
            "top": [{"label": lab, "score": round(float(s), 4)} for lab, s in list(top)[:3]],
            "t": round(float(t), 3),
        }
        with self._slot_lock:
            self._level_slot = json.dumps(payload, separators=(",", ":"))
        self._kick()

    def status(self, health: dict[str, Any]) -> None:
        """Health JSON (retained); sent at most every ``mqtt.status_interval_s``, and at once when ``mic`` or
        ``listening`` changes or when :attr:`status_wanted` is set (a connect, Home Assistant online)."""
        self._latest_health = health  # close() sends the newest, rate limit or not
        now = time.monotonic()
        state = (health.get("mic"), health.get("listening"))
        if self.status_wanted.is_set():
            self.status_wanted.clear()
        elif now - self._last_status_t < 0.9 * self.m.status_interval_s and state == self._last_mic:
            return  # slack: a caller on the same period
        self._last_mic = state
        self._last_status_t = now
        self._set_status(health)

    def enable_control(self, on_command: Callable[[str, bytes], None], sensitivities: tuple[str, ...]) -> None:
        """Take commands on ``<base>/<device>/set/#`` and announce the control entities; call before :meth:`start`.

        ``on_command(name, payload)`` runs on the network thread (``name`` is the topic below ``set/``): it must
        only hand the command over (a queue) and return; it is never allowed to raise into the network thread.
        """
        self.on_command = on_command
        self._sensitivities = tuple(sensitivities)

    def taught(self, names: tuple[str, ...], removed: tuple[str, ...]) -> None:
        """The taught sounds now, and those removed: discovery adds their entities and removes the others'."""
        with self._slot_lock:
            self._taught_slot = (tuple(names), tuple(removed))
        self._kick()

    def settings(self, settings: dict[str, Any]) -> None:
        """The current settings as retained JSON on ``<base>/<device>/settings`` (shown by the control entities)."""
        payload = json.dumps(settings, separators=(",", ":"), sort_keys=True)
        with self._slot_lock:
            self._settings_slot = payload
        self._kick()

    def close(self) -> None:
        """Wait (bounded) for outstanding acknowledgements, publish ``offline``, disconnect."""
        if self._thread is None:
            if self._own_outbox and self.outbox is not None:
                self.outbox.close()
            return
        deadline = time.monotonic() + FLUSH_TIMEOUT_S
        try:
            while time.monotonic() < deadline and self.outbox is not None and self.outbox.depth():
                if not self.connected and self._last_error is not None:
                    break  # the broker is known to be unreachable: waiting cannot help, the rows stay queued
                time.sleep(0.02)
            if self.outbox is not None and self.outbox.depth():
                log.warning("mqtt: %d event(s) not yet acknowledged; kept in the outbox for the next start",
                            self.outbox.depth())
        except sqlite3.Error as e:  # a failing disk must not keep "offline" from being sent
            log.error("mqtt: outbox %s unreadable at shutdown (%s)", self.outbox.path if self.outbox else "", e)
        if self._latest_health is not None and self._latest_health is not self._latest_queued:
            # The retained status shows the state at shutdown; once (the last report may have passed already).
            self._set_status(self._latest_health)
        self._closing.set()
        self._kick()
        self._thread.join(timeout=OFFLINE_TIMEOUT_S + 6.0)
        self._thread = None
        if self._own_outbox and self.outbox is not None:
            self.outbox.close()

    def health(self) -> dict[str, Any]:
        """Figures for the status topic: outbox depth and drops, connection state."""
        ob = self.outbox
        depth: int | None
        dropped: int | None
        try:
            depth, dropped = (ob.depth(), ob.dropped) if ob else (0, 0)
        except sqlite3.Error:  # a failing disk: the status still goes out, without these two
            depth = dropped = None
        return {
            "outbox_depth": depth,
            "outbox_dropped": dropped,
            "mqtt_connected": self.connected,
            "events_not_stored": self.unstored,
        }

    def _set_status(self, health: dict[str, Any]) -> None:
        self._latest_queued = health
        d = dict(health)
        d.update(self.health())
        d["model_version"] = self.contract.model_version
        d["device_id"] = self.device_id
        d["time"] = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        with self._slot_lock:
            self._status_slot = json.dumps(d, separators=(",", ":"), default=str)
        self._kick()

    def _kick(self) -> None:
        """Wake the network thread out of ``client.loop()`` now.

        paho's own cross-thread wake-up: a byte on the socket pair its loop
        selects on (what ``publish()`` from another thread does). Idle, the
        thread then sleeps a whole ``LOOP_TIMEOUT_S`` instead of polling.
        """
        pair = getattr(self._client, "_sockpairW", None)
        if pair is not None:
            try:
                pair.send(b"\0")
            except OSError:
                pass  # full (a wake-up is pending anyway) or being replaced on reconnect

    # ------------------------------------------------------------------ network thread

    def _backoff(self) -> float:
        base = min(self.m.reconnect_max_s, self.m.reconnect_min_s * (2 ** min(self._attempt, 30)))
        return base * random.uniform(0.5, 1.0)  # jitter: many listeners do not reconnect in lockstep

    def _report(self, msg: str) -> None:
        if msg != self._last_error:  # one line per distinct problem, not one per retry
            log.error(msg)
            self._last_error = msg

    def _run(self) -> None:
        client = self._client
        assert client is not None
        next_try = 0.0
        while True:
            try:
                if not self._sock_open:
                    if self._closing.is_set():
                        return
                    now = time.monotonic()
                    if now < next_try:
                        self._closing.wait(min(next_try - now, 0.2))
                        continue
                    try:
                        client.connect(self.m.host, self.m.port, self.m.keepalive)
                        self._sock_open = True
                    except Exception as e:  # every failure is reported and retried; the listener keeps queueing
                        self._report(describe_connect_error(e, self.m.host, self.m.port))
                        next_try = time.monotonic() + self._backoff()
                        self._attempt += 1
                        continue
                rc = client.loop(timeout=LOOP_TIMEOUT_S)
                if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    if self.connected:
                        log.warning("mqtt: connection to %s:%d lost (%s); queueing events",
                                    self.m.host, self.m.port, mqtt.error_string(rc))
                    self.connected = False
                    self._sock_open = False
                    next_try = time.monotonic() + self._backoff()
                    self._attempt += 1
                    continue
                self._flush_acks()
                if self._closing.is_set():
                    self._shutdown(client)
                    return
                if self.connected:
                    self._pump()
            except Exception as e:  # a failing outbox or callback must not end delivery for good
                self._report(f"mqtt: network thread error ({type(e).__name__}: {e}); reconnecting, events stay queued")
                self.connected = False
                if self._sock_open:
                    with contextlib.suppress(Exception):
                        client.disconnect()
                self._sock_open = False
                next_try = time.monotonic() + self._backoff()
                self._attempt += 1

    def _publish(self, topic: str, payload: str, qos: int, retain: bool, seq: int | None = None) -> bool:
        assert self._client is not None
        self._early.clear()
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            return False  # not queued by paho (queue full); retried on a later pass
        if seq is not None:
            if info.mid in self._early:
                self._acked.append(seq)
            else:
                self._inflight[info.mid] = seq
        self._early.clear()
        return True

    def _pump(self) -> None:
        assert self.outbox is not None
        room = WINDOW - len(self._inflight)
        if room > 0 and self._wake.is_set():
            self._wake.clear()
            rows = self.outbox.pending(self._last_sent_seq, room)
            if len(rows) == room:
                self._wake.set()  # more behind these; look again once acknowledgements free the window
            for row in rows:
                if not self._publish(self.topics.event, row.payload, self.m.qos, False, seq=row.seq):
                    self._wake.set()
                    break
                self._last_sent_seq = row.seq
                if row.seq <= self._run_from_seq:
                    continue  # an earlier run's event: over by now, and the states were reset at connect
                try:
                    ev = json.loads(row.payload)
                    state = "ON" if ev["state"] == "on" else "OFF"
                    self._label_state[str(ev["label"])] = state
                    self._publish(self.topics.state(ev["label"]), state, self.m.qos, True)
                except (ValueError, KeyError, TypeError):
                    log.warning("mqtt: outbox row %d is not an event; sent as is", row.seq)
        with self._slot_lock:
            status, self._status_slot = self._status_slot, None
            level, self._level_slot = self._level_slot, None
            settings, self._settings_slot = self._settings_slot, None
        if self._apply_taught():
            self._send_discovery()
        if settings is not None:
            self._last_settings = settings
            self._publish(self.topics.settings, settings, 1, True)
        if status is not None:
            self._last_status = status
            self._publish(self.topics.status, status, 1, True)
        if level is not None:
            self._publish(self.topics.level, level, 0, False)

    def _flush_acks(self) -> None:
        if self._acked and self.outbox is not None:
            self.outbox.ack(self._acked)
            self._acked = []
            self._wake.set()

    def _apply_taught(self) -> bool:
        """Network thread: take the taught sounds handed over by :meth:`taught`; True when they changed."""
        with self._slot_lock:
            slot, self._taught_slot = self._taught_slot, None
        if slot is None or slot == (self._taught, self._removed):
            return False
        self._taught, self._removed = slot
        for name in self._taught:
            self._label_state.setdefault(name, "OFF")
        for name in self._removed:
            if name not in self._taught and name not in self.contract.labels:
                self._label_state.pop(name, None)
        return True

    def _send_discovery(self) -> None:
        if not self.m.discovery.enabled:
            return
        self._apply_taught()
        for topic, payload in discovery_messages(
            self.m.discovery.prefix, self.topics, self.contract.labels, self.contract.model_version,
            sw_version(), qos=self.m.qos, sensitivities=self._sensitivities, taught=self._taught,
        ):
            self._publish(topic, encode(payload), 1, True)
        gone = [n for n in self._removed if n not in self._taught and n not in self.contract.labels]
        for topic in removal_topics(self.m.discovery.prefix, self.topics, gone):
            self._publish(topic, "", 1, True)  # an empty retained payload: Home Assistant deletes the entity

    def _shutdown(self, client: mqtt.Client) -> None:
        if self.connected:
            with self._slot_lock:
                status, self._status_slot = self._status_slot, None
            if status is not None:  # before "offline", on the same ordered connection
                client.publish(self.topics.status, status, qos=1, retain=True)
            info = client.publish(self.topics.availability, "offline", qos=1, retain=True)
            deadline = time.monotonic() + OFFLINE_TIMEOUT_S
            while not info.is_published() and time.monotonic() < deadline:
                if client.loop(timeout=LOOP_TIMEOUT_S) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    break
            self._flush_acks()
            client.disconnect()
            client.loop(timeout=0.01)
        self.connected = False
        self._sock_open = False

    # paho callbacks: all run on the network thread, inside client.loop()/publish()

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            self._report(describe_refusal(reason, self.m.host, self.m.port))
            return
        self.connected = True
        self.connects += 1
        self._attempt = 0
        self._last_error = None
        log.info("mqtt: connected to %s:%d as %s (outbox depth %d)", self.m.host, self.m.port, self.client_id,
                 self.outbox.depth() if self.outbox else 0)
        # Before "online": the true state of every label (events still queued follow in order), so a
        # retained ON left by a crash mid-event never shows as a sound heard now; and the settings.
        self._apply_taught()
        for label, state in self._label_state.items():
            self._publish(self.topics.state(label), state, self.m.qos, True)
        with self._slot_lock:
            settings, self._settings_slot = self._settings_slot or self._last_settings, None
        if settings is not None:
            self._last_settings = settings
            self._publish(self.topics.settings, settings, 1, True)
        self._publish(self.topics.availability, "online", 1, True)
        if self.on_command is not None:
            client.subscribe(f"{self.topics.commands}/#", qos=1)
        if self.m.discovery.enabled:
            client.subscribe(self._ha_status_topic, qos=1)
            self._send_discovery()
        if self._last_status is not None:
            with self._slot_lock:
                if self._status_slot is None:
                    self._status_slot = self._last_status
        self.status_wanted.set()  # a fresh one from the processing loop follows at once
        self._wake.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self.connected = False

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        seq = self._inflight.pop(mid, None)
        if seq is None:
            self._early.add(mid)
        else:
            self._acked.append(seq)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        prefix = self.topics.commands + "/"
        if self.on_command is not None and msg.topic.startswith(prefix):
            try:
                self.on_command(msg.topic[len(prefix):], bytes(msg.payload))
            except Exception as e:  # a command must never end delivery
                log.error("mqtt: command on %s not taken (%s: %s)", msg.topic, type(e).__name__, e)
            return
        if msg.topic == self._ha_status_topic and msg.payload.strip().lower() == b"online":
            log.info("mqtt: Home Assistant is online; re-sending discovery")
            self._send_discovery()
            self.status_wanted.set()

"""A real mosquitto for the MQTT tests, on 127.0.0.1 and a free port.

Fixtures (import them explicitly in a test module):

* ``mosquitto``      - anonymous listener, persistence on (so a restart keeps sessions)
* ``mosquitto_auth`` - username/password listener (``mosquitto_passwd``); ``.username``/``.password``
* ``mosquitto_tls``  - TLS listener with a throwaway CA made by openssl; ``.ca_file``, ``.other_ca_file``

:class:`Broker` can be stopped and started again on the same port (fault tests).
Tests skip with a reason when mosquitto or openssl is not installed.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd")
OPENSSL = shutil.which("openssl")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class Broker:
    """One mosquitto process; ``stop()``/``start()`` keep the port and the persistence file."""

    def __init__(self, workdir: Path, extra_conf: str = "", port: int | None = None) -> None:
        if MOSQUITTO is None:
            pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.log = self.dir / "mosquitto.log"
        self.conf = self.dir / "mosquitto.conf"
        lines = []
        if os.geteuid() == 0:
            lines.append("user root")  # mosquitto drops privileges to 'mosquitto' otherwise
        lines += [
            f"listener {self.port} 127.0.0.1",
            "persistence true",
            f"persistence_location {self.dir}/",
            "autosave_interval 1",
            "log_type error",
            "log_type warning",
            "log_type notice",
            f"log_dest file {self.log}",
            "max_queued_messages 100000",
            extra_conf,
        ]
        self.conf.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        assert self.proc is None, "already running"
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                log = self.log.read_text(errors="replace") if self.log.exists() else ""
                self.proc = None
                raise RuntimeError(f"mosquitto exited at start: {err.strip()} {log.strip()[-500:]}")
            if _port_open(self.port):
                return
            time.sleep(0.02)
        raise RuntimeError(f"mosquitto did not open port {self.port} within {timeout} s")

    def stop(self, kill: bool = False) -> None:
        """SIGTERM (mosquitto saves sessions and closes connections) or SIGKILL."""
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class Received:
    topic: str
    payload: bytes
    retain: bool
    t: float  # time.monotonic() at arrival


@dataclass
class Subscriber:
    """A paho client collecting every message under ``topic`` (thread-safe list).

    ``persistent=True`` uses a fixed client id and a non-clean session, so the
    broker queues QoS 1 messages for it while it is disconnected (broker restarts).
    """

    host: str
    port: int
    topic: str = "#"
    persistent: bool = False
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    messages: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.connected = threading.Event()
        cid = f"test-sub-{self.port}-{id(self)}" if self.persistent else ""
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv311,
                                  clean_session=not self.persistent)
        if self.username:
            self.client.username_pw_set(self.username, self.password)
        if self.ca_file:
            self.client.tls_set(ca_certs=self.ca_file)
        self.client.reconnect_delay_set(0.05, 0.5)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_disconnect = lambda *a: self.connected.clear()

    def _on_connect(self, client, userdata, flags, reason, props) -> None:  # noqa: ANN001
        if not reason.is_failure:
            client.subscribe(self.topic, qos=1)
            self.connected.set()

    def _on_message(self, client, userdata, msg) -> None:  # noqa: ANN001
        with self.lock:
            self.messages.append(Received(msg.topic, bytes(msg.payload), bool(msg.retain), time.monotonic()))

    def start(self, timeout: float = 5.0) -> Subscriber:
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()
        assert self.connected.wait(timeout), "test subscriber could not connect"
        time.sleep(0.05)  # SUBACK
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def on(self, topic: str) -> list[Received]:
        with self.lock:
            return [m for m in self.messages if m.topic == topic]

    def wait_for(self, pred, timeout: float = 10.0) -> bool:  # noqa: ANN001
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                msgs = list(self.messages)
            if pred(msgs):
                return True
            time.sleep(0.01)
        return False


def publish_once(host: str, port: int, topic: str, payload: str, retain: bool = False) -> None:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    c.connect(host, port)
    c.loop_start()
    c.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)
    c.disconnect()
    c.loop_stop()


# ---------------------------------------------------------------- certificates


@dataclass(frozen=True)
class Certs:
    ca_file: str
    server_cert: str
    server_key: str
    other_ca_file: str  # a CA that did not sign the server certificate


def _run(*args: str, cwd: Path) -> None:
    subprocess.run(args, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_certs(d: Path) -> Certs:
    """Throwaway CA + server certificate for 127.0.0.1/localhost, and an unrelated CA (EC P-256, 1 day)."""
    if OPENSSL is None:
        pytest.skip("openssl is not installed")
    d.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for name in ("ca", "other-ca"):
        _run(OPENSSL, "req", "-x509", *ec, "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "1",
             "-subj", f"/CN=edge test {name}", cwd=d)
    _run(OPENSSL, "req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost", cwd=d)
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    _run(OPENSSL, "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
         "-out", "server.crt", "-days", "1", "-extfile", "ext.cnf", cwd=d)
    return Certs(str(d / "ca.crt"), str(d / "server.crt"), str(d / "server.key"), str(d / "other-ca.crt"))


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path / "broker", "allow_anonymous true")
    b.start()
    yield b
    b.stop()


@pytest.fixture
def mosquitto_auth(tmp_path: Path) -> Iterator[Broker]:
    if MOSQUITTO_PASSWD is None:
        pytest.skip("mosquitto_passwd is not installed")
    d = tmp_path / "broker-auth"
    d.mkdir()
    pw = d / "passwd"
    _run(MOSQUITTO_PASSWD, "-b", "-c", str(pw), "edge", "s3cret-pw", cwd=d)
    os.chmod(pw, 0o600)
    b = Broker(d, f"allow_anonymous false\npassword_file {pw}")
    b.username, b.password = "edge", "s3cret-pw"  # type: ignore[attr-defined]
    b.start()
    yield b
    b.stop()


@pytest.fixture(scope="session")
def test_certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def mosquitto_tls(tmp_path: Path, test_certs: Certs) -> Iterator[Broker]:
    b = Broker(
        tmp_path / "broker-tls",
        f"allow_anonymous true\ncafile {test_certs.ca_file}\ncertfile {test_certs.server_cert}\n"
        f"keyfile {test_certs.server_key}",
    )
    b.ca_file = test_certs.ca_file  # type: ignore[attr-defined]
    b.other_ca_file = test_certs.other_ca_file  # type: ignore[attr-defined]
    b.start()
    yield b
    b.stop()

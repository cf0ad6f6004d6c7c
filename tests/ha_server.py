"""A real Home Assistant for the tests, headless, on 127.0.0.1 and a free port.

``scripts/setup-homeassistant.sh`` (run by ``.ci/run``) installs it into
``~/.cache/edge-ha/venv`` (``$EDGE_HA_VENV`` overrides): outside the repository, kept
between runs. :func:`unavailable_reason` says why a test must skip (no such venv:
no Python 3.13 or no network for the first install).

:class:`HomeAssistant` writes a fresh configuration directory: ``configuration.yaml``
(http on a free port, the shipped ``deploy/homeassistant/automations.yaml``), and a
pre-seeded MQTT config entry (``.storage/core.config_entries``) pointing at the
tests' mosquitto, so Home Assistant connects at start without a config flow. It
starts ``hass --skip-pip`` (nothing is installed while tests run), creates the owner
through the onboarding API and gets an access token, then talks to the REST API
(``/api/states``, ``/api/services``, ``/api/template``). Only the standard library
is used, so this module runs in the project's own venv.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
HA_VENV = Path(os.environ.get("EDGE_HA_VENV") or Path.home() / ".cache" / "edge-ha" / "venv")
HASS = HA_VENV / "bin" / "hass"
MARKER = HA_VENV / ".edge-ha-version"
AUTOMATIONS = REPO / "deploy" / "homeassistant" / "automations.yaml"


def installed_version() -> str | None:
    try:
        return MARKER.read_text().strip() or None
    except OSError:
        return None


def unavailable_reason() -> str | None:
    """Why the Home Assistant tests cannot run here, or None when they can."""
    if not HASS.exists() or installed_version() is None:
        return (f"no Home Assistant in {HA_VENV} (bash scripts/setup-homeassistant.sh installs it; it needs "
                "Python 3.13 and, the first time, the package index)")
    return None


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


CONFIGURATION = """\
homeassistant:
  name: edge-test
  latitude: 52.5
  longitude: 13.4
  elevation: 30
  unit_system: metric
  time_zone: UTC
  country: DE
  currency: EUR
  language: en
http:
  server_host: 127.0.0.1
  server_port: {port}
logger:
  default: warning
  logs:
    homeassistant.components.mqtt: info
automation: !include automations.yaml
"""


class HomeAssistant:
    """One Home Assistant process with its own configuration directory.

    Args:
        workdir: a fresh directory (the configuration and the log go there).
        mqtt_host / mqtt_port: the broker of the pre-seeded MQTT config entry.
    """

    def __init__(self, workdir: Path, mqtt_host: str, mqtt_port: int) -> None:
        self.dir = workdir
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = self.dir / "home-assistant.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.token: str | None = None
        self.started_s: float | None = None  # seconds from launch until the API answered
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "configuration.yaml").write_text(CONFIGURATION.format(port=self.port))
        shutil.copy(AUTOMATIONS, self.dir / "automations.yaml")
        storage = self.dir / ".storage"
        storage.mkdir(exist_ok=True)
        # Storage minor version 1: Home Assistant migrates it, filling in what newer versions added.
        entry = {"entry_id": "edgetestmqttentry0000000000000", "version": 1, "minor_version": 2, "domain": "mqtt",
                 "title": mqtt_host, "data": {"broker": mqtt_host, "port": mqtt_port},
                 "options": {"discovery": True, "discovery_prefix": "homeassistant"}, "source": "user"}
        (storage / "core.config_entries").write_text(json.dumps(
            {"version": 1, "minor_version": 1, "key": "core.config_entries", "data": {"entries": [entry]}}))

    # -- process ------------------------------------------------------------------------
    def start(self, timeout: float = 240.0) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        env["PATH"] = f"{HA_VENV / 'bin'}:{env.get('PATH', '')}"
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [str(HASS), "--config", str(self.dir), "--skip-pip", "--log-file", str(self.log), "--log-no-color"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=self.dir, start_new_session=True)
        deadline = t0 + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Home Assistant exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                steps = self._request("GET", "/api/onboarding", auth=False, timeout=2)
                if isinstance(steps, list):
                    break
            except (OSError, urllib.error.HTTPError, ValueError):
                pass
            time.sleep(0.5)
        else:
            raise RuntimeError(f"Home Assistant did not answer within {timeout:g} s:\n{self.log_tail()}")
        self._onboard()
        self.wait_running(deadline - time.monotonic())
        self.started_s = time.monotonic() - t0

    def _onboard(self) -> None:
        """The owner account through the onboarding API, then an access token for it."""
        client_id = self.url + "/"
        r = self._request("POST", "/api/onboarding/users", {"client_id": client_id, "name": "Edge Test",
                                                            "username": "edge", "password": "edge-test-pw",
                                                            "language": "en"}, auth=False)
        form = urllib.parse.urlencode({"grant_type": "authorization_code", "code": r["auth_code"],
                                       "client_id": client_id}).encode()
        req = urllib.request.Request(self.url + "/auth/token", data=form, method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            self.token = json.loads(resp.read())["access_token"]

    def wait_running(self, timeout: float) -> None:
        """Until Home Assistant reports state RUNNING (every integration set up) and the MQTT entry is loaded."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                cfg = self._request("GET", "/api/config", timeout=5)
                entries = self._request("GET", "/api/config/config_entries/entry?domain=mqtt", timeout=5)
                if cfg.get("state") == "RUNNING" and [e.get("state") for e in entries] == ["loaded"]:
                    return
            except (OSError, urllib.error.HTTPError, ValueError):
                pass
            time.sleep(0.5)
        raise RuntimeError(f"Home Assistant not running within the time left:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, n: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-n:])

    # -- REST API -----------------------------------------------------------------------
    def _request(self, method: str, path: str, body: Any = None, auth: bool = True, timeout: float = 10) -> Any:
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            ctype = resp.headers.get("Content-Type", "")
        if "json" in ctype:
            return json.loads(raw)
        return raw.decode()

    def states(self) -> dict[str, dict[str, Any]]:
        """Every entity's state object, by entity id."""
        return {s["entity_id"]: s for s in self._request("GET", "/api/states")}

    def state(self, entity_id: str) -> dict[str, Any] | None:
        try:
            return self._request("GET", f"/api/states/{entity_id}")
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise

    def call(self, domain: str, service: str, **data: Any) -> Any:
        """Call a service (``switch.turn_off`` with ``entity_id=...``); returns when Home Assistant has done it."""
        return self._request("POST", f"/api/services/{domain}/{service}", data)

    def template(self, template: str) -> str:
        """Render a template in Home Assistant (device and entity look-ups, e.g. ``device_entities(...)``)."""
        return str(self._request("POST", "/api/template", {"template": template}))

    def wait_state(self, entity_id: str, pred: Any, timeout: float = 10.0) -> dict[str, Any] | None:
        """Poll until ``pred(state_object)`` holds; the last state object (or None) either way."""
        deadline = time.monotonic() + timeout
        st = None
        while True:
            st = self.state(entity_id)
            if st is not None and pred(st):
                return st
            if time.monotonic() >= deadline:
                return st
            time.sleep(0.1)

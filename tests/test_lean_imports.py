"""What the listener does not load: OpenSSL without TLS (deferred imports, edge.core.lazy), importlib.metadata.

Each check runs in a fresh interpreter (what is imported is per process), against a real
mosquitto (tests/broker.py) where a connection is involved.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
from broker import Subscriber, mosquitto, mosquitto_tls, test_certs  # noqa: F401  (pytest fixtures)

import edge

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent

PUBLISH = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from mqtt_driver import make_config, make_contract, make_event
from edge.core import lazy
from edge.publish.mqtt import MqttPublisher

port, outbox, tls = int(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4])
pub = MqttPublisher(make_config(port, outbox, **({"tls": tls} if tls else {})), make_contract())
pub.start()
for i in range(3):
    pub.event(make_event(i, "lean"))
deadline = time.monotonic() + 10
while pub.outbox.depth() and time.monotonic() < deadline:
    time.sleep(0.05)
depth = pub.outbox.depth()
pub.close()
print(json.dumps({"depth": depth, "ssl": lazy.loaded("ssl") is not None,
                  "native": sorted(m for m in ("_ssl", "_hashlib", "email", "http.client") if m in sys.modules)}))
"""


def _publish(port: int, tmp_path: Path, tls: dict[str, object] | None = None) -> dict[str, object]:
    r = subprocess.run([sys.executable, "-c", PUBLISH, str(TESTS), str(port), str(tmp_path / "o.sqlite"),
                        json.dumps(tls)], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_publishing_without_tls_never_loads_openssl(mosquitto, tmp_path: Path) -> None:  # noqa: F811
    sub = Subscriber(mosquitto.host, mosquitto.port, "homesound/testdev/event").start()
    try:
        out = _publish(mosquitto.port, tmp_path)
        assert sub.wait_for(lambda ms: len(ms) >= 3)
    finally:
        sub.stop()
    assert out == {"depth": 0, "ssl": False, "native": []}, out


def test_with_tls_the_deferred_ssl_module_runs_and_delivers(mosquitto_tls, tmp_path: Path) -> None:  # noqa: F811
    b = mosquitto_tls
    sub = Subscriber(b.host, b.port, "homesound/testdev/event", ca_file=b.ca_file).start()
    try:
        out = _publish(b.port, tmp_path, {"enabled": True, "ca_file": b.ca_file})
        assert sub.wait_for(lambda ms: len(ms) >= 3)
    finally:
        sub.stop()
    assert out["depth"] == 0 and out["ssl"] is True and "_ssl" in out["native"], out


DEFER = r"""
import json, sys
from edge.core import lazy
out = {"deferred": lazy.defer("wave", "ssl", "json", "no_such_module_xyz", stand_ins=lazy.SSL_STAND_INS)}
import wave, ssl
out["placeholder"] = lazy.loaded("wave") is None and "_ssl" not in sys.modules
out["stand_in_not_oserror"] = not issubclass(ssl.SSLWantReadError, OSError)
out["still_deferred"] = lazy.loaded("ssl") is None and "_ssl" not in sys.modules
from wave import Wave_read                     # an attribute read: the real import runs
out["wave_loaded"] = lazy.loaded("wave") is wave.__dict__["_deferred_real"] and wave.Wave_read is Wave_read
out["cert"] = int(ssl.CERT_REQUIRED)             # likewise for ssl
out["real_classes"] = issubclass(ssl.SSLWantReadError, OSError) and "_ssl" in sys.modules
print(json.dumps(out))
"""


def test_a_deferred_module_runs_on_its_first_attribute_read_and_stand_ins_give_way() -> None:
    r = subprocess.run([sys.executable, "-c", DEFER], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    # json is imported by edge already and the unknown name is left to a normal import: not deferred.
    assert out == {"deferred": ["wave", "ssl"], "placeholder": True, "stand_in_not_oserror": True,
                   "still_deferred": True, "wave_loaded": True, "cert": 2, "real_classes": True}, out


def test_the_package_version_is_the_distributions() -> None:
    try:
        dist = version("edge-listener")
    except PackageNotFoundError:
        pytest.skip("edge-listener is not installed (running from a bare checkout)")
    assert edge.__version__ == dist  # MQTT discovery's sw_version reads edge.__version__

"""Helpers for the MQTT tests, and a driver process for the kill tests.

Run as a script it builds the real :class:`edge.publish.mqtt.MqttPublisher` with its
real outbox, emits ``--events`` events, prints ``ENQUEUED <n>`` once they are
all in the outbox and ``STARTED`` after start(), then waits to be killed (or,
with ``--close``, closes cleanly and prints ``CLOSED``)::

    python tests/mqtt_driver.py --port 1883 --outbox /tmp/o.sqlite --events 20 --run-id a
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.core.events import Event  # noqa: E402
from edge.features.frontend import FrontendParams  # noqa: E402
from edge.model.contract import ModelContract  # noqa: E402
from edge.service.config import Config, parse_config  # noqa: E402

LABELS = ("smoke_alarm", "co_alarm", "glass_breaking", "baby_crying", "dog_bark", "speech")


def make_contract(labels: tuple[str, ...] = LABELS, version: str = "test-1.2.3") -> ModelContract:
    return ModelContract(labels=labels, frontend=FrontendParams(), block_frames=8, window_blocks=4, cache_dim=16,
                         embedding_dim=16, model_version=version)


def make_config(port: int, outbox: str | Path, **mqtt: Any) -> Config:
    m: dict[str, Any] = {"enabled": True, "host": "127.0.0.1", "port": port, "device_id": "testdev",
                         "reconnect_min_s": 0.05, "reconnect_max_s": 0.5, "level_interval_s": 0.0}
    m.update(mqtt)
    return parse_config({"mqtt": m, "outbox": {"path": str(outbox)}}, "test-config")


def make_event(i: int, run_id: str = "r", state: str = "on", label: str | None = None) -> Event:
    t0 = 1_700_000_000.0 + i
    return Event(id=f"{run_id}-{i:05d}", label=label or LABELS[i % len(LABELS)], state=state, onset=float(i),
                 offset=None if state == "on" else i + 0.5, onset_time=t0,
                 offset_time=None if state == "on" else t0 + 0.5, score=0.9, mean_score=0.8, level_dbfs=-20.0,
                 model_version="test-1.2.3")


def main(argv: list[str] | None = None) -> int:
    from edge.publish.mqtt import MqttPublisher

    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--outbox", required=True)
    ap.add_argument("--events", type=int, default=0)
    ap.add_argument("--run-id", default="k")
    ap.add_argument("--close", action="store_true")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    pub = MqttPublisher(make_config(a.port, a.outbox), make_contract())
    pub.start()
    print("STARTED", flush=True)
    for i in range(a.events):
        pub.event(make_event(i, a.run_id))
    print(f"ENQUEUED {a.events}", flush=True)
    if a.close:
        pub.close()
        print("CLOSED", flush=True)
        return 0
    while True:
        time.sleep(1)


if __name__ == "__main__":
    raise SystemExit(main())

"""Accelerated soak test: hours of audio through the whole chain, RSS sampled every simulated minute.

Audio comes from a one-minute WAV file (faint noise with two tone bursts, so
two sound events per minute) that a file source reads again and again, as fast
as the listener takes it. Everything downstream is the production path: ring
buffer -> log-mel -> ONNX model -> detector -> MQTT publisher with its SQLite
outbox -> a real mosquitto (started here on a free port unless --port is given),
where a subscriber counts the events that arrive.

Prints one JSON object: hours of audio, wall time, RSS (MB) at the end of the
warm-up, at the end and at its highest after warm-up, the growth figures, and
event counts (produced / delivered / left in the outbox)::

    python benchmarks/soak.py --hours 6                  # the 6-hour run (tiny test model)
    python benchmarks/soak.py --hours 24 --model models/homesound-int8.onnx

Exit status 1 when RSS grew more than --max-growth-mb after warm-up or an event was lost.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one core's worth of BLAS: faster on a busy small board

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from edge.capture.audiofile import open_audio, write_wav  # noqa: E402
from edge.capture.sources import FileSource  # noqa: E402
from edge.model.classifier import Classifier  # noqa: E402
from edge.publish.sinks import BaseSink  # noqa: E402
from edge.service.config import parse_config  # noqa: E402
from edge.service.health import rss_bytes  # noqa: E402
from edge.service.listener import Listener  # noqa: E402

SR = 16000


class LoopedFileSource(FileSource):
    """A :class:`FileSource` that reads its file ``repeats`` times back to back (as fast as possible)."""

    def __init__(self, path: Path, repeats: int, block_s: float = 0.25, buffer_s: float = 10.0) -> None:
        super().__init__(path, block_s=block_s, buffer_s=buffer_s)
        self.repeats = repeats

    def _produce(self) -> None:
        try:
            for _ in range(self.repeats):
                reader = open_audio(self.path)
                try:
                    for block in reader.blocks(self.block):
                        mono = block[:, 0] if block.ndim == 2 else block
                        while not self.ring.wait_for_space(mono.shape[0], 0.1):
                            if self._stop.is_set():
                                return
                        self.ring.write(mono)
                        self.callbacks += 1
                        self._first.set()
                finally:
                    reader.close()
                if self._stop.is_set():
                    return
        except BaseException as e:  # surfaced by the listener
            self.error = e
        finally:
            self._first.set()
            self.ring.close()


def one_minute_wav(path: Path) -> Path:
    """60 s of faint noise with a 1 kHz burst (10-11 s) and a 500 Hz burst (40-40.6 s)."""
    rng = np.random.default_rng(7)
    x = rng.normal(0.0, 0.002, 60 * SR).astype(np.float32)
    t = np.arange(SR) / SR
    x[10 * SR : 11 * SR] += (0.3 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    x[40 * SR : 40 * SR + int(0.6 * SR)] += (0.3 * np.sin(2 * np.pi * 500 * t[: int(0.6 * SR)])).astype(np.float32)
    return write_wav(path, x, SR)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_mosquitto(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = _free_port()
    conf = workdir / "mosquitto.conf"
    lines = (["user root"] if os.geteuid() == 0 else []) + [f"listener {port} 127.0.0.1", "allow_anonymous true",
                                                            "max_queued_messages 100000"]
    conf.write_text("\n".join(lines) + "\n")
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("mosquitto did not start")


class EventCounter:
    """Counts event messages on the broker (a counter only: this process's RSS is what is measured)."""

    def __init__(self, port: int, topic: str) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.count = 0
        self.ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)

        def on_connect(c, u, f, reason, p) -> None:  # noqa: ANN001
            c.subscribe(topic, qos=1)
            self.ready.set()

        def on_message(c, u, msg) -> None:  # noqa: ANN001
            self.count += 1

        self.client.on_connect = on_connect
        self.client.on_message = on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not self.ready.wait(5):
            raise RuntimeError("subscriber could not connect")
        time.sleep(0.1)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class NullSink(BaseSink):
    """Takes everything, keeps nothing (``--no-mqtt``: the pipeline's own memory, without the publisher)."""


def soak(hours: float, model: Path, port: int | None, workdir: Path, warmup_min: float,
         mqtt: bool = True) -> dict[str, object]:
    broker = None
    if port is None and mqtt:
        broker, port = start_mosquitto(workdir)
    try:
        wav = one_minute_wav(workdir / "minute.wav")
        minutes = max(1, int(round(hours * 60)))
        cfg = parse_config({
            "detector": {"release_s": 0.2},
            "mqtt": {"enabled": True, "host": "127.0.0.1", "port": port or 1883, "device_id": "soak",
                     "status_interval_s": 1.0, "level_interval_s": 1.0, "reconnect_min_s": 0.1},
            "outbox": {"path": str(workdir / "outbox.sqlite")},
        }, "soak")
        from edge.publish.mqtt import MqttPublisher

        clf = Classifier(model)
        counter = EventCounter(port, "homesound/soak/event") if mqtt else None
        pub = MqttPublisher(cfg, clf.contract) if mqtt else NullSink()
        samples: list[tuple[float, float]] = []  # (simulated minutes, RSS MB)

        def on_scores(start: float, end: float, scores: np.ndarray) -> None:
            if end >= len(samples) * 60.0:
                samples.append((end / 60.0, rss_bytes() / 2**20))

        source = LoopedFileSource(wav, minutes)
        listener = Listener(cfg, clf, [pub], source, on_scores=on_scores)
        t0 = time.monotonic()
        stats = listener.run()
        wall = time.monotonic() - t0
        samples.append((stats.audio_s / 60.0, rss_bytes() / 2**20))
        produced = 2 * stats.events  # an onset and an offset per event
        deadline = time.monotonic() + 10
        while counter is not None and counter.count < produced and time.monotonic() < deadline:
            time.sleep(0.05)
        delivered = produced
        if counter is not None:
            delivered = counter.count
            counter.close()
        from edge.publish.outbox import Outbox

        ob = Outbox(workdir / "outbox.sqlite", cfg.outbox.max_events)
        left = ob.depth()
        ob.close()
    finally:
        if broker is not None:
            broker.terminate()
            broker.wait(10)
    after = [(m, r) for m, r in samples if m >= warmup_min]
    base = after[0][1]
    mins = np.array([m for m, _ in after])
    rss = np.array([r for _, r in after])
    slope = float(np.polyfit(mins, rss, 1)[0] * 60.0) if len(after) > 2 else 0.0
    return {
        "audio_hours": round(stats.audio_s / 3600.0, 3),
        "wall_s": round(wall, 1),
        "speed_x_realtime": round(stats.audio_s / wall, 1),
        "rss_samples": len(samples),
        "warmup_min": warmup_min,
        "rss_start_mb": round(samples[0][1], 2),
        "rss_after_warmup_mb": round(base, 2),
        "rss_end_mb": round(after[-1][1], 2),
        "rss_max_after_warmup_mb": round(float(rss.max()), 2),
        "growth_mb": round(after[-1][1] - base, 3),
        "max_growth_mb": round(float(rss.max()) - base, 3),
        "slope_mb_per_hour": round(slope, 4),
        "events": stats.events,
        "messages_produced": produced,
        "messages_delivered": delivered,
        "outbox_left": left,
        "dropped_samples": source.ring.lost,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=6.0, help="hours of audio (default 6)")
    ap.add_argument("--model", type=Path, help="ONNX model (default: the tiny test model, built here)")
    ap.add_argument("--port", type=int, help="broker port on 127.0.0.1 (default: start a private mosquitto)")
    ap.add_argument("--warmup-min", type=float, default=10.0, help="simulated minutes of warm-up (default 10)")
    ap.add_argument("--no-mqtt", action="store_true", help="no publisher/outbox/broker (isolates the pipeline)")
    ap.add_argument("--max-growth-mb", type=float, default=1.0, help="allowed RSS growth after warm-up")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="edge-soak-") as d:
        work = Path(d)
        model = a.model
        if model is None:
            from tinymodel import build_tiny_model

            model = build_tiny_model(work / "tiny.onnx")
        r = soak(a.hours, model, a.port, work, a.warmup_min, mqtt=not a.no_mqtt)
    print(json.dumps(r), flush=True)
    ok = (r["max_growth_mb"] <= a.max_growth_mb and r["messages_delivered"] >= r["messages_produced"]
          and r["outbox_left"] == 0)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

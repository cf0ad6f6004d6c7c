import os
import socket
import time

import numpy as np

from edge.service.health import Health, peak_rss_bytes, rss_bytes
from edge.service.systemd import Notifier


def test_health_snapshot_reports_rtf_and_memory_from_real_counters():
    h = Health(model_version="t1")
    h.add_processing(wall_s=0.5, audio_s=100.0)
    h.note_inference()
    big = np.ones(20_000_000, dtype=np.uint8)  # touch 20 MB so RSS must move
    snap = h.snapshot()
    assert snap["rtf"] == 0.005
    assert snap["inferences"] == 1
    assert snap["first_inference_s"] is not None
    assert snap["rss_mb"] >= 20
    assert snap["peak_rss_mb"] >= snap["rss_mb"] - 1
    assert snap["model_version"] == "t1"
    del big
    assert rss_bytes() > 0 and peak_rss_bytes() > 0


def test_cpu_percent_reflects_busy_process():
    h = Health()
    h.snapshot()
    t0 = time.monotonic()
    while time.monotonic() - t0 < 0.6:
        sum(range(1000))
    assert h.snapshot()["cpu_percent"] > 30


def test_notifier_sends_ready_and_watchdog_datagrams(tmp_path):
    path = str(tmp_path / "notify.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    server.settimeout(2)
    try:
        n = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())})
        assert n.enabled and n.watchdog_s == 30.0
        assert n.ready()
        assert server.recv(256).decode() == "READY=1\nSTATUS=listening"
        assert n.watchdog()
        assert server.recv(256).decode() == "WATCHDOG=1"
    finally:
        server.close()


def test_notifier_is_a_no_op_outside_systemd():
    n = Notifier({})
    assert not n.enabled
    assert n.watchdog_s is None
    assert n.ready() is False

"""The durable outbox: order, acknowledgement, bound with counted drops, crash survival, threads."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from edge.publish.outbox import Outbox, default_outbox_path
from edge.service.config import ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_rows_come_back_in_order_and_ack_removes_them(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite", max_events=100)
    seqs = [ob.put(f"m{i}") for i in range(5)]
    assert seqs == sorted(seqs)
    assert [r.payload for r in ob.pending()] == [f"m{i}" for i in range(5)]
    assert [r.payload for r in ob.pending(after_seq=seqs[1], limit=2)] == ["m2", "m3"]
    ob.ack([seqs[0], seqs[2]])
    ob.ack(seqs[0])  # acknowledging twice is harmless
    assert [r.payload for r in ob.pending()] == ["m1", "m3", "m4"]
    assert ob.depth() == 3
    ob.close()


def test_full_outbox_drops_oldest_and_counts_across_reopen(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite", max_events=3)
    for i in range(5):
        ob.put(f"m{i}")
    assert [r.payload for r in ob.pending()] == ["m2", "m3", "m4"]
    assert ob.dropped == 2 and ob.dropped_session == 2
    ob.close()
    ob2 = Outbox(tmp_path / "o.sqlite", max_events=3)
    assert ob2.dropped == 2 and ob2.depth() == 3
    ob2.close()


def test_rows_keep_creation_time_and_survive_reopen(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite")
    ob.put("x", created=1234.5)
    ob.close()
    rows = Outbox(tmp_path / "o.sqlite").pending()
    assert len(rows) == 1 and rows[0].created == 1234.5 and rows[0].payload == "x"


def test_rows_survive_sigkill_of_the_writer(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    code = (
        "import sys, time; sys.path.insert(0, sys.argv[2]);"
        "from edge.publish.outbox import Outbox; ob = Outbox(sys.argv[1]);"
        "[ob.put(f'm{i}') for i in range(50)]; print('DONE', flush=True); time.sleep(60)"
    )
    p = subprocess.Popen([sys.executable, "-c", code, str(path), str(REPO)], stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None and p.stdout.readline().strip() == "DONE"
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    ob = Outbox(path)
    assert [r.payload for r in ob.pending(limit=1000)] == [f"m{i}" for i in range(50)]
    ob.close()


def test_put_and_ack_from_two_threads_lose_nothing(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite", max_events=100000)
    n = 400
    done = threading.Event()
    acked: list[int] = []

    def acker() -> None:
        last = 0
        while not (done.is_set() and ob.depth() == 0):
            rows = ob.pending(last, 50)
            if rows:
                ob.ack([r.seq for r in rows])
                acked.extend(int(r.payload) for r in rows)
                last = rows[-1].seq

    t = threading.Thread(target=acker)
    t.start()
    for i in range(n):
        ob.put(str(i))
    done.set()
    t.join(timeout=30)
    assert acked == list(range(n))
    assert ob.depth() == 0
    ob.close()


def test_default_path_follows_state_directory(monkeypatch, tmp_path: Path) -> None:  # noqa: ANN001
    monkeypatch.setenv("STATE_DIRECTORY", f"{tmp_path}/a:{tmp_path}/b")
    assert default_outbox_path() == tmp_path / "a" / "outbox.sqlite"
    monkeypatch.delenv("STATE_DIRECTORY")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_outbox_path() == tmp_path / ".local" / "state" / "edge" / "outbox.sqlite"


def test_an_unreadable_outbox_file_is_moved_aside_and_a_fresh_one_used(tmp_path: Path, caplog) -> None:  # noqa: ANN001
    # What a worn SD card leaves after a power cut: bytes that are not a database.
    p = tmp_path / "o.sqlite"
    junk = bytes(range(256)) * 20
    p.write_bytes(junk)
    with caplog.at_level("ERROR", logger="edge.outbox"):
        ob = Outbox(p, 10)
    assert ob.quarantined is not None and ob.quarantined.read_bytes() == junk  # kept for inspection
    assert ob.quarantined.name.startswith("o.sqlite.corrupt-")
    assert ob.depth() == 0
    ob.put("after")
    assert [r.payload for r in ob.pending()] == ["after"]
    ob.close()
    assert any("is unreadable" in r.getMessage() and str(ob.quarantined) in r.getMessage() for r in caplog.records)


def test_an_outbox_path_that_cannot_be_opened_is_still_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match=r"^outbox.path: cannot open "):
        Outbox(tmp_path / "file" / "o.sqlite", 10)  # a directory that is a file: nothing is moved
    assert (tmp_path / "file").read_text() == "x"

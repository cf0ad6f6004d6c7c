"""Durable outbox: events wait on disk until the broker has acknowledged them.

Every event is written to a small SQLite database (WAL mode) *before* it is
handed to the network, and deleted only when the broker's PUBACK for it has
arrived. A crash or SIGKILL therefore loses nothing that :meth:`Outbox.put`
returned from: on the next start the rows are sent again, in ``seq`` order,
with their original ids and timestamps. Delivery is at-least-once; subscribers
de-duplicate by event ``id`` (plus ``state``).

The queue is bounded by ``max_events`` rows; beyond that the *oldest* rows are
dropped and counted (the count is persisted and reported in the status topic).

Threads: each thread gets its own SQLite connection (``threading.local``), so
the processing thread (``put``) and the MQTT network thread (``pending``,
``ack``) never share one. Transactions are single statements, so no lock is
held for long; ``busy_timeout`` covers the rare moment two writers meet.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from edge.core.files import FileProblem, check_path, kind
from edge.core.schema import ConfigError

log = logging.getLogger("edge.outbox")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    created  REAL NOT NULL,          -- Unix time (s) the row was written
    kind     TEXT NOT NULL,          -- 'event' (payload = Event JSON)
    payload  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""


def default_outbox_path() -> Path:
    """``$STATE_DIRECTORY/outbox.sqlite`` (systemd ``StateDirectory=``) or ``~/.local/state/edge/outbox.sqlite``."""
    from edge.core.paths import state_dir

    return state_dir() / "outbox.sqlite"


def check_outbox_path(path: str | Path | None, probe: bool = False) -> Path:
    """The outbox file ``path`` would open (None: the default), if the OS can take it and nothing but a
    regular file is there (SQLite would wait forever on a named pipe); else a one-line ConfigError.

    ``probe`` (``edge doctor``): also create its folder and a file in it, as opening the outbox would.
    """
    p = Path(path) if path else default_outbox_path()
    try:
        check_path(p)
        st = os.stat(p)
    except FileProblem as e:
        raise ConfigError(f"outbox.path: {e}") from None
    except FileNotFoundError:
        st = None  # created on open
    except OSError as e:
        raise ConfigError(f"outbox.path: cannot open {p} ({e.strerror or e})") from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"outbox.path: {p}: not a regular file ({kind(st.st_mode)})")
    if probe:
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=".edge-write-check-")
            os.close(fd)
            os.unlink(tmp)
        except OSError as e:
            raise ConfigError(f"outbox.path: cannot open {p} ({e.strerror or e})") from None
    return p


@dataclass(frozen=True)
class Row:
    seq: int
    created: float
    kind: str
    payload: str


class Outbox:
    """A bounded, durable FIFO of serialized messages.

    Args:
        path: SQLite file (created with its parent directory if missing).
        max_events: most rows kept; the oldest beyond this are dropped and counted.
    """

    def __init__(self, path: str | Path | None = None, max_events: int = 10000) -> None:
        self.path = check_outbox_path(path)
        self.max_events = int(max_events)
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._closed = False
        self.dropped_session = 0  # rows dropped by this process (put() is called from one thread)
        #: where an unreadable outbox file was moved aside at start (None: it was fine)
        self.quarantined: Path | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._open()
            except sqlite3.DatabaseError as e:
                if isinstance(e, sqlite3.OperationalError) or not self.path.exists():
                    raise  # cannot open (permissions, missing directory): the user must fix the path
                # Not a database / malformed (power loss on a bad SD card): its rows are gone
                # either way; refusing to start would also lose every event from now on.
                self._quarantine(e)
                self._open()
        except (OSError, sqlite3.Error) as e:
            why = (e.strerror or e) if isinstance(e, OSError) else e  # worded as check_outbox_path words it
            raise ConfigError(f"outbox.path: cannot open {self.path} ({why})") from None

    def _open(self) -> None:
        conn = self._conn()
        conn.executescript(_SCHEMA)
        conn.execute("SELECT count(*) FROM outbox").fetchone()  # reads the table: a damaged file fails here

    def _quarantine(self, err: sqlite3.Error) -> None:
        self.close()
        self._closed = False
        self._local = threading.local()
        stamp = time.strftime("%Y%m%dT%H%M%S")
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            src = Path(str(self.path) + suffix)
            if src.exists():
                os.replace(src, Path(str(aside) + suffix))
        self.quarantined = aside
        log.error("outbox.path: %s is unreadable (%s); moved it to %s and started an empty outbox",
                  self.path, err, aside)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise sqlite3.ProgrammingError("outbox is closed")
            conn = sqlite3.connect(self.path, timeout=5.0, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            # FULL: an event that put() returned from survives power loss, not only a crash.
            conn.execute("PRAGMA synchronous=FULL")
            # A small page cache per connection (256 KiB instead of ~2 MB): the
            # queue is tiny when the broker is up, and RSS must stay flat for months.
            conn.execute("PRAGMA cache_size=-256")
            self._local.conn = conn
            with self._conns_lock:
                self._conns.append(conn)
        return conn

    def put(self, payload: str, kind: str = "event", created: float | None = None) -> int:
        """Append one message; returns its sequence number. Drops the oldest rows beyond ``max_events``."""
        conn = self._conn()
        now = time.time() if created is None else created
        with conn:  # one transaction: insert + trim + drop counter
            conn.execute("BEGIN IMMEDIATE")
            cur = conn.execute("INSERT INTO outbox (created, kind, payload) VALUES (?, ?, ?)", (now, kind, payload))
            seq = int(cur.lastrowid or 0)
            n = conn.execute("SELECT count(*) FROM outbox").fetchone()[0]
            excess = n - self.max_events
            if excess > 0:
                conn.execute(
                    "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox ORDER BY seq LIMIT ?)", (excess,)
                )
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('dropped', ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = value + excluded.value",
                    (excess,),
                )
        if excess > 0:
            self.dropped_session += excess
        return seq

    def pending(self, after_seq: int = 0, limit: int = 100) -> list[Row]:
        """Up to ``limit`` rows with ``seq > after_seq``, oldest first."""
        rows = self._conn().execute(
            "SELECT seq, created, kind, payload FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit)
        ).fetchall()
        return [Row(int(s), float(c), str(k), str(p)) for s, c, k, p in rows]

    def ack(self, seqs: int | list[int]) -> None:
        """The broker has these messages: forget them (no-op for rows already dropped). One transaction."""
        items = [seqs] if isinstance(seqs, int) else list(seqs)
        if not items:
            return
        conn = self._conn()
        with conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in items])

    def last_seq(self) -> int:
        """Sequence number of the newest row waiting (0 if none): rows up to it were queued before now."""
        return int(self._conn().execute("SELECT coalesce(max(seq), 0) FROM outbox").fetchone()[0])

    def depth(self) -> int:
        """Rows waiting for an acknowledgement."""
        return int(self._conn().execute("SELECT count(*) FROM outbox").fetchone()[0])

    @property
    def dropped(self) -> int:
        """Rows dropped (oldest first) because the outbox was full, over the file's lifetime."""
        row = self._conn().execute("SELECT value FROM meta WHERE key = 'dropped'").fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        self._closed = True
        with self._conns_lock:
            conns, self._conns = self._conns, []
        for c in conns:
            try:
                c.close()
            except sqlite3.Error:
                pass

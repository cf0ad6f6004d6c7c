"""The command output: run the user's program per onset/offset with the event JSON on stdin.

No shell: ``argv`` is the program and its arguments as a list. The event is
the JSON object of the event format (docs/architecture.md#event-json) and a
newline on stdin; ``EDGE_LABEL``, ``EDGE_STATE`` (``on``/``off``) and
``EDGE_PRIORITY`` are set in its environment. Each run gets ``timeout_s``;
one still running then is killed with its process group. A run that cannot
start, exits non-zero or times out is logged (one line per streak of
failures) and the next event runs it again.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
from pathlib import Path

from edge.core.logutil import one_line
from edge.core.schema import ConfigError
from edge.publish.alerts.settings import CommandConfig
from edge.publish.alerts.worker import Alert, OutputFailed


def resolve_program(argv: list[str], where: str) -> str:
    """The absolute path of ``argv[0]`` (looked up on PATH without a slash); :class:`ConfigError` if none."""
    if not argv:
        raise ConfigError(f"{where}.argv: expected the program and its arguments, got []")
    prog = argv[0]
    if "/" in prog:
        p = Path(prog)
        if not p.is_file():
            raise ConfigError(f"{where}.argv[0]: {prog}: no such file")
        if not os.access(p, os.X_OK):
            raise ConfigError(f"{where}.argv[0]: {prog}: not executable")
        return str(p)
    found = shutil.which(prog)
    if found is None:
        raise ConfigError(f"{where}.argv[0]: {prog}: not found on PATH")
    return found


class CommandOutput:
    """Runs ``cfg.argv`` for an alert (an :class:`~edge.publish.alerts.worker.Output`; several threads share it)."""

    preemptible = False

    def __init__(self, cfg: CommandConfig, program: str) -> None:
        self.cfg = cfg
        self.argv = [program, *cfg.argv[1:]]
        self.name = Path(cfg.argv[0]).name
        self._running: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()

    def prepare(self) -> None:
        pass

    def play(self, alert: Alert, interrupt: threading.Event) -> None:
        ev = alert.event
        env = dict(os.environ, EDGE_LABEL=ev.label, EDGE_STATE=ev.state, EDGE_PRIORITY=alert.rule.priority)
        try:
            proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, env=env, close_fds=True, start_new_session=True)
        except OSError as e:
            raise OutputFailed(f"cannot run {self.name}: {e.strerror or one_line(e)}") from None
        with self._lock:
            self._running.add(proc)
        try:
            try:
                _, err = proc.communicate((ev.to_json() + "\n").encode(), timeout=self.cfg.timeout_s)
            except subprocess.TimeoutExpired:
                self._kill(proc)
                proc.communicate()
                raise OutputFailed(f"{self.name} ({ev.label} {ev.state}) still running after "
                                   f"{self.cfg.timeout_s:g} s: killed") from None
        finally:
            with self._lock:
                self._running.discard(proc)
        if proc.returncode != 0:
            lines = err.decode("utf-8", "replace").strip().splitlines()
            why = f": {lines[-1][:160]}" if lines else ""
            status = (f"killed by signal {-proc.returncode}" if proc.returncode < 0
                      else f"exit status {proc.returncode}")
            raise OutputFailed(f"{self.name} ({ev.label} {ev.state}) failed with {status}{why}")

    @staticmethod
    def _kill(proc: subprocess.Popen[bytes]) -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            proc.kill()

    def close(self) -> None:
        """Kill what is still running (called after the close grace period)."""
        with self._lock:
            running = list(self._running)
        for proc in running:
            if proc.poll() is None:
                self._kill(proc)

"""systemd readiness and watchdog notification (the sd_notify socket protocol).

No dependency: a datagram to ``$NOTIFY_SOCKET``. Outside systemd every call is
a cheap no-op.
"""

from __future__ import annotations

import os
import socket


class Notifier:
    def __init__(self, env: dict[str, str] | None = None) -> None:
        env = dict(os.environ) if env is None else env
        addr = env.get("NOTIFY_SOCKET", "")
        if addr.startswith("@"):
            addr = "\0" + addr[1:]  # abstract namespace socket
        self._addr = addr or None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        ok_pid = not pid or pid == str(os.getpid())
        #: Seconds between watchdog pings systemd expects (ping at half of it), or None.
        self.watchdog_s = int(usec) / 1e6 if usec.isdigit() and ok_pid else None

    @property
    def enabled(self) -> bool:
        return self._addr is not None

    def notify(self, message: str) -> bool:
        if self._addr is None:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
                # Never block the processing loop on a busy or stuck receiver: a missed ping is better.
                s.setblocking(False)
                s.connect(self._addr)
                s.sendall(message.encode())
            return True
        except OSError:
            return False

    def ready(self, status: str = "listening") -> bool:
        return self.notify(f"READY=1\nSTATUS={status}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")

"""Deferred imports of standard-library modules a dependency imports but the listener rarely uses.

paho-mqtt 2.x imports ``ssl``, ``hashlib`` and ``urllib.request`` (which pulls in
``http.client``, ``email`` and ``ssl`` again) at import time, although a broker without
TLS needs none of them: ``ssl`` and ``hashlib`` load OpenSSL's ``libssl``/``libcrypto``,
megabytes of resident memory in every listener (docs/performance.md).

:func:`defer` puts a placeholder module in ``sys.modules`` for each name not imported yet,
so ``import ssl`` binds the placeholder without running anything. The first time any
attribute of it is read (TLS configured: ``ssl.CERT_REQUIRED``; an ``except ssl.SSLError``
clause reached; ``hashlib.sha1`` for websockets), the real module is imported, under a
lock, and its namespace copied into the placeholder, so every reference works from then
on. Behaviour is the import's; only its time and memory move to the first use.

Why not :class:`importlib.util.LazyLoader`: on Python 3.11 the ``import`` statement
itself reads the module's ``__spec__``, which makes a LazyLoader module execute at once.
The placeholder carries the real ``__spec__`` in its namespace, so that read is free.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import types
from typing import Any

_LOCK = threading.RLock()


class _Deferred(types.ModuleType):
    """A module whose real import runs on the first read of an attribute it does not hold yet."""

    def __getattr__(self, attr: str) -> Any:  # called only for names not in the namespace
        return getattr(self._deferred_load(), attr)

    def _deferred_load(self) -> types.ModuleType:
        with _LOCK:
            real = self.__dict__.get("_deferred_real")
            if real is None:
                name = self.__name__
                if sys.modules.get(name) is self:
                    del sys.modules[name]
                real = importlib.import_module(name)  # sets the parent package's attribute too
                self.__dict__.update(real.__dict__)
                self.__dict__["_deferred_real"] = real
            return real


def defer(*names: str, stand_ins: dict[str, dict[str, Any]] | None = None) -> list[str]:
    """Make each of ``names`` (top-level or dotted) import lazily unless it is imported already.

    Returns the names deferred. A dotted name is also set as an attribute of its (real,
    imported) parent package, as a normal import does, so ``urllib.request.x`` resolves.

    ``stand_ins``: per module name, attributes the placeholder holds until the real import
    replaces them; for exception classes a caller names in ``except`` clauses on a path that
    cannot raise them before the module is really used (see :data:`SSL_STAND_INS`).
    """
    done = []
    with _LOCK:
        for name in names:
            if name in sys.modules:
                continue
            parent, _, child = name.rpartition(".")
            if parent:
                importlib.import_module(parent)
            spec = importlib.util.find_spec(name)
            if spec is None:
                continue  # not there: a normal import raises as usual
            module = _Deferred(name)
            module.__spec__ = spec
            module.__dict__.update((stand_ins or {}).get(name, {}))
            sys.modules[name] = module
            if parent:
                setattr(sys.modules[parent], child, module)
            done.append(name)
    return done


class _NeverRaised(Exception):
    """Stand-in for an exception class of a module not imported yet: nothing raises it."""


#: paho's socket reads and writes (``_sock_recv``/``_sock_send``) end, on every pass, with the
#: BlockingIOError of a drained non-blocking socket, which makes Python evaluate their
#: ``except ssl.SSLWantReadError`` / ``except ssl.SSLWantWriteError`` clauses. Without TLS no
#: socket can raise those (an SSL socket is only made through ``ssl.SSLContext``, whose read
#: imports the real module and replaces these), so the stand-ins never match, as the real
#: classes would not, and the read does not import OpenSSL.
SSL_STAND_INS: dict[str, dict[str, Any]] = {
    "ssl": {"SSLWantReadError": type("SSLWantReadError", (_NeverRaised,), {}),
            "SSLWantWriteError": type("SSLWantWriteError", (_NeverRaised,), {})},
}


def loaded(name: str) -> types.ModuleType | None:
    """The module ``name`` if it has really been imported (a deferred one not used yet: None)."""
    mod = sys.modules.get(name)
    if isinstance(mod, _Deferred):
        real = mod.__dict__.get("_deferred_real")
        return real if isinstance(real, types.ModuleType) else None
    return mod

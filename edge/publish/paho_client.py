"""paho-mqtt imported without OpenSSL: the runtime's one import of paho (``from edge.publish.paho_client import mqtt``).

paho 2.x imports ``ssl``, ``hashlib`` and ``urllib.request`` at import time; a broker
without TLS needs none of them, and ``ssl``/``hashlib`` load OpenSSL (~5 MB resident in
every listener, docs/performance.md). They are deferred here (:func:`edge.core.lazy.defer`)
just before paho is imported, so they run only when first used: TLS configured
(``tls_set`` reads ``ssl``'s attributes), websockets (``hashlib``). The two SSL exception
classes paho names in ``except`` clauses of every socket read get stand-ins until then
(:data:`edge.core.lazy.SSL_STAND_INS`). Anything imported earlier stays as it is.
"""

from __future__ import annotations

from edge.core import lazy

lazy.defer("ssl", "hashlib", "urllib.request", stand_ins=lazy.SSL_STAND_INS)

import paho.mqtt.client as mqtt  # noqa: E402 - after the deferral, which is the point of this module
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode  # noqa: E402

__all__ = ["CallbackAPIVersion", "MQTTErrorCode", "mqtt"]

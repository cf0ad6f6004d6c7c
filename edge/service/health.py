"""Health figures of the running listener, cheap enough to compute every second.

Everything here reads counters the process already keeps (``time.process_time``,
``/proc/self/statm``, ``getrusage``); nothing allocates per sample.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass, field
from typing import Any

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int:
    """Current resident set size of this process in bytes (0 if unknown)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


def peak_rss_bytes() -> int:
    """Peak resident set size of this process in bytes.

    ``VmHWM`` from ``/proc/self/status``: ``ru_maxrss`` would carry over the
    parent's peak across ``exec`` and overstate a freshly started process.
    """
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, IndexError, ValueError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


_libc: Any = None


def trim_heap() -> None:
    """Give freed heap pages back to the OS (glibc ``malloc_trim``); a no-op elsewhere.

    Called once per status period: over days, freed-but-kept pages of the
    allocator's arenas otherwise show up as slow RSS growth.
    """
    global _libc
    if _libc is None:
        import ctypes
        import ctypes.util

        try:
            _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _libc.malloc_trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):
            _libc = False
    if _libc:
        _libc.malloc_trim(0)


def cpu_seconds() -> float:
    """User + system CPU time of this process, seconds.

    ``time.process_time`` rather than ``os.times``: the latter counts in clock
    ticks (10 ms), so a short run could measure 0 s and a ratio of two runs fail.
    """
    return time.process_time()


@dataclass
class Health:
    """Counters updated by the pipeline; :meth:`snapshot` turns them into a report.

    ``rtf`` (real-time factor) = processing wall time / audio time processed,
    over the whole run. ``cpu_percent`` is the process's CPU use (100 = one
    core) since the previous snapshot.
    """

    model_version: str = ""
    started_mono: float = field(default_factory=time.monotonic)
    processing_s: float = 0.0
    audio_s: float = 0.0
    inferences: int = 0
    dropped_samples: int = 0
    input_overflows: int = 0
    events: int = 0
    last_event: str | None = None
    last_event_time: float | None = None
    mic: str = "ok"  # ok | lost (no audio arriving) | silent (only zeros/NaN), see edge.capture.supervisor
    mic_reopens: int = 0
    nonfinite_samples: int = 0  # NaN/inf input samples replaced by 0 before the model
    outbox_depth: int = 0
    outbox_dropped: int = 0
    onsets_held_back: int = 0  # onsets dropped by the familiarity check (edge.detect.familiarity)
    first_inference_s: float | None = None
    _last_cpu: float = field(default_factory=cpu_seconds)
    _last_mono: float = field(default_factory=time.monotonic)
    _cpu_percent: float = 0.0

    def add_processing(self, wall_s: float, audio_s: float) -> None:
        self.processing_s += wall_s
        self.audio_s += audio_s

    def note_inference(self) -> None:
        self.inferences += 1
        if self.first_inference_s is None:
            self.first_inference_s = time.monotonic() - self.started_mono

    def note_event(self, label: str, when: float) -> None:
        self.events += 1
        self.last_event = label
        self.last_event_time = when

    @property
    def rtf(self) -> float:
        return self.processing_s / self.audio_s if self.audio_s > 0 else 0.0

    def _update_cpu(self) -> float:
        now, cpu = time.monotonic(), cpu_seconds()
        dt = now - self._last_mono
        if dt >= 0.5:
            self._cpu_percent = 100.0 * (cpu - self._last_cpu) / dt
            self._last_cpu, self._last_mono = cpu, now
        return self._cpu_percent

    def snapshot(self) -> dict[str, Any]:
        """Health report as plain JSON-able values (units in the key names)."""
        return {
            "uptime_s": round(time.monotonic() - self.started_mono, 1),
            "mic": self.mic,
            "rtf": round(self.rtf, 5),
            "cpu_percent": round(self._update_cpu(), 2),
            "rss_mb": round(rss_bytes() / 2**20, 1),
            "peak_rss_mb": round(peak_rss_bytes() / 2**20, 1),
            "audio_s": round(self.audio_s, 1),
            "dropped_samples": self.dropped_samples,
            "input_overflows": self.input_overflows,
            "nonfinite_samples": self.nonfinite_samples,
            "mic_reopens": self.mic_reopens,
            "outbox_depth": self.outbox_depth,
            "outbox_dropped": self.outbox_dropped,
            "inferences": self.inferences,
            "events": self.events,
            "onsets_held_back": self.onsets_held_back,
            "last_event": self.last_event,
            "last_event_time": self.last_event_time,
            "first_inference_s": None if self.first_inference_s is None else round(self.first_inference_s, 3),
            "model_version": self.model_version,
        }


def format_health_line(h: dict[str, Any]) -> str:
    """One compact console line from a :meth:`Health.snapshot` dict (``edge run --verbose``)."""
    def g(key: str, default: Any = "-") -> Any:
        v = h.get(key)
        return default if v is None else v

    return (f"mic={g('mic')} rtf={g('rtf')} cpu={g('cpu_percent')}% rss={g('rss_mb')}MB "
            f"peak={g('peak_rss_mb')}MB audio={g('audio_s')}s inferences={g('inferences')} events={g('events')} "
            f"dropped={g('dropped_samples')} overflows={g('input_overflows')} nonfinite={g('nonfinite_samples')} "
            f"reopens={g('mic_reopens')} outbox={g('outbox_depth')} last={g('last_event')} uptime={g('uptime_s')}s")

"""Optional, off-by-default capture of a short clip around each detected event.

Privacy: nothing is written unless ``privacy.capture_clips`` is true. Clips
stay in a local folder (default ``<state dir>/clips``), are 16-bit mono WAV at
the model's sample rate, and the folder is bounded: beyond ``max_clips`` the
oldest clips are deleted.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import wave
from pathlib import Path

import numpy as np

from edge.core.events import Event
from edge.core.files import FileProblem, check_path, reason
from edge.core.schema import ConfigError
from edge.publish.settings import PublishConfig

log = logging.getLogger("edge.clips")


def default_clips_dir() -> Path:
    """``$STATE_DIRECTORY/clips`` (systemd ``StateDirectory=``) or ``~/.local/state/edge/clips``."""
    from edge.core.paths import state_dir

    return state_dir() / "clips"


def clips_folder(cfg: PublishConfig) -> Path | None:
    """The folder clips go to, created and checked writable; None when ``privacy.capture_clips`` is off.

    Raises a one-line :class:`ConfigError` naming ``privacy.clips_dir`` when clips cannot be written
    there (a file in the way, a read-only file system, a path the OS cannot take): better refused at
    start than a warning per event.
    """
    p = cfg.privacy
    if not p.capture_clips:
        return None
    where = f"{cfg.source_file}: privacy.clips_dir"
    try:
        folder = check_path(Path(p.clips_dir).expanduser()) if p.clips_dir else default_clips_dir()
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".edge-write-check-")
        os.close(fd)
        os.unlink(probe)
    except FileProblem as e:
        raise ConfigError(f"{where}: {e}") from None
    except FileExistsError:
        raise ConfigError(f"{where}: {folder} exists and is not a folder") from None
    except OSError as e:
        raise ConfigError(f"{where}: cannot write clips to {folder} ({reason(e)})") from None
    return folder


def make_clip_recorder(cfg: PublishConfig, sample_rate: int) -> ClipRecorder | None:
    """A recorder when ``privacy.capture_clips`` is on, else None (the default: nothing is written)."""
    p = cfg.privacy
    folder = clips_folder(cfg)
    if folder is None:
        return None
    log.warning("privacy.capture_clips is on: a %g s clip around each event is saved in %s (at most %d)",
                p.clip_s, folder, p.max_clips)
    return ClipRecorder(folder, sample_rate, p.clip_s, p.max_clips)


class ClipRecorder:
    """Keeps the last ``clip_s`` seconds of audio and writes a clip per event onset.

    The clip is centred on the onset: half of it before, half after. ``feed``
    takes processed (model-rate, mono, float32) audio in order; memory is one
    preallocated history buffer of ``2 * clip_s`` seconds.
    """

    def __init__(self, folder: str | Path, sample_rate: int, clip_s: float = 5.0, max_clips: int = 50) -> None:
        self.folder = Path(folder)
        self.rate = int(sample_rate)
        self.clip_n = int(round(clip_s * sample_rate))
        self.max_clips = max_clips
        self._hist = np.zeros(2 * self.clip_n, dtype=np.float32)
        self._written = 0  # absolute index of the sample after the newest in _hist
        self._pending: list[tuple[int, str]] = []  # (first sample index of clip, file stem)

    def feed(self, samples: np.ndarray) -> None:
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        # Slices of at most one clip, so a pending clip is written before its
        # audio can leave the history buffer.
        for i in range(0, x.shape[0], self.clip_n):
            part = x[i : i + self.clip_n]
            n = part.shape[0]
            self._hist[:-n] = self._hist[n:]
            self._hist[-n:] = part
            self._written += n
            self._flush_ready()

    def trigger(self, ev: Event) -> None:
        """Schedule a clip around ``ev``'s onset (only onsets are captured)."""
        if ev.state != "on":
            return
        start = max(0, int(round(ev.onset * self.rate)) - self.clip_n // 2)
        label = re.sub(r"[^a-z0-9_-]", "_", ev.label.lower())
        self._pending.append((start, f"{ev.onset_time:.3f}_{label}_{ev.id[:8]}"))
        self._flush_ready()

    def _flush_ready(self) -> None:
        still = []
        for start, stem in self._pending:
            end = start + self.clip_n
            if end > self._written:
                still.append((start, stem))
                continue
            oldest = self._written - self._hist.shape[0]
            lo = max(start, oldest)
            seg = self._hist[lo - oldest : end - oldest]
            self._write(stem, seg)
        self._pending = still

    def _write(self, stem: str, seg: np.ndarray) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            path = self.folder / f"{stem}.wav"
            pcm = (np.clip(seg, -1.0, 1.0) * 32767.0).astype("<i2")
            # The file is opened here, not by wave.open(name): when wave opens a name and fails, its
            # half-built writer raises AttributeError from __del__ (a traceback on stderr per event).
            with open(path, "wb") as fh, wave.open(fh, "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(self.rate)
                w.writeframes(pcm.tobytes())
            self._prune()
        except (OSError, wave.Error) as e:  # the folder went away, the disk is full: keep listening
            log.warning("clip capture: cannot write to %s (%s)", self.folder,
                        reason(e) if isinstance(e, OSError) else e)

    def _prune(self) -> None:
        clips = sorted(self.folder.glob("*.wav"), key=lambda p: p.stat().st_mtime)
        for old in clips[: max(0, len(clips) - self.max_clips)]:
            old.unlink(missing_ok=True)

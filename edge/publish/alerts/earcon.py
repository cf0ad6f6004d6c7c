"""Earcons: a short tone pattern (or the user's WAV) per label, played on an audio output through sounddevice.

The stream is opened for each alert and closed after it, so nothing runs (no
callbacks, no wake-ups) between alerts, and an output that vanished and came
back (a Bluetooth earpiece, a restarted sound server) is simply opened again
next time. Opening takes a few milliseconds; the first open of a process is
slower (the sound library loads its plugins), so :meth:`EarconOutput.prepare`
opens it once at start. PortAudio's callback copies the samples; the output's
thread only waits, so a more urgent alert interrupts within 10 ms, and an
output that stops taking samples (a stalled sound server) is given up on after
the sound's length plus a second, logged, and tried afresh next time.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from edge.core.logutil import one_line
from edge.core.schema import ConfigError
from edge.publish.alerts.patterns import MAX_PATTERN_S, Rule, render
from edge.publish.alerts.settings import EarconConfig
from edge.publish.alerts.worker import Alert, OutputFailed

CHUNK_S = 0.01  # seconds between checks for an interrupt while a sound plays
TAIL_S = 0.03  # seconds of silence played after a sound beyond the output latency
STALL_MARGIN_S = 1.0  # seconds beyond a sound's length (and the output latency) before an output counts as stalled


def load_wav(path: str, where: str) -> tuple[np.ndarray, int]:
    """A WAV the user gave, as mono float32 and its rate; :class:`ConfigError` naming ``where`` if unusable."""
    from edge.capture.audiofile import AudioFileError, read_audio

    try:
        data, rate = read_audio(path)
    except FileNotFoundError:
        raise ConfigError(f"{where}: {path}: file not found") from None
    except (AudioFileError, OSError) as e:
        raise ConfigError(f"{where}: {one_line(e)}") from None
    x = data.mean(axis=1, dtype=np.float32) if data.ndim == 2 else data.astype(np.float32)
    if x.size == 0:
        raise ConfigError(f"{where}: {path}: no audio in the file")
    if x.size / rate > MAX_PATTERN_S:
        raise ConfigError(f"{where}: {path}: {x.size / rate:.1f} s long; an earcon is at most {MAX_PATTERN_S:g} s")
    return np.ascontiguousarray(x), int(rate)


def find_output_device(sd: Any, device: int | str | None) -> int | None:
    """An output device index for an index or a (case-insensitive) part of a name; None = the default.

    Raises :class:`OutputFailed` when there is no such output device (now).
    """
    if device is None:
        return None
    devices = sd.query_devices()
    if isinstance(device, int):
        if 0 <= device < len(devices) and devices[device]["max_output_channels"] > 0:
            return device
        raise OutputFailed(f"no output device with index {device}")
    for i, d in enumerate(devices):
        if d["max_output_channels"] > 0 and device.lower() in str(d["name"]).lower():
            return i
    raise OutputFailed(f"no output device whose name contains {device!r}")


class EarconOutput:
    """Plays a rule's sound on the configured output device (an :class:`~edge.publish.alerts.worker.Output`).

    Args:
        cfg: the ``alerts.earcon`` section.
        wavs: WAV path -> ``(mono float32 samples, rate Hz)``, loaded (and checked) when the sinks were built.
    """

    preemptible = True

    def __init__(self, cfg: EarconConfig, wavs: dict[str, tuple[np.ndarray, int]] | None = None) -> None:
        self.cfg = cfg
        self.wavs = dict(wavs or {})
        self._sd: Any = None
        self._sounds: dict[tuple[str, int], np.ndarray] = {}
        self.device_name = ""
        self.latency_s: float | None = None  # the last stream's output latency as PortAudio reports it (s)

    def _sounddevice(self) -> Any:
        if self._sd is None:
            try:
                import sounddevice as sd
            except OSError as e:  # the PortAudio library is missing
                raise OutputFailed(f"cannot load the PortAudio library ({one_line(e)})") from None
            self._sd = sd
        return self._sd

    def _open(self, callback: Any, finished: Any) -> tuple[Any, int, int]:
        """An opened (not started) callback stream, its rate (Hz) and channel count."""
        sd = self._sounddevice()
        try:
            dev = find_output_device(sd, self.cfg.device)
            info = sd.query_devices(dev, "output")
            rate = int(self.cfg.sample_rate or info["default_samplerate"])
            channels = max(1, min(2, int(info["max_output_channels"])))
            self.device_name = str(info["name"])
            stream = sd.OutputStream(device=dev, samplerate=rate, channels=channels, dtype="float32",
                                     # "high": PortAudio's safe buffer (~35 ms on ALSA), so a busy core does not
                                     # starve the output; still far inside an alert's latency budget
                                     latency="high", callback=callback, finished_callback=finished)
        except OutputFailed:
            raise
        except (ValueError, sd.PortAudioError) as e:
            name = self.device_name or (self.cfg.device if self.cfg.device is not None else "the default output")
            raise OutputFailed(f"cannot open {name!r}: {one_line(e)}") from None
        return stream, rate, channels

    def sound(self, rule: Rule, rate: int) -> np.ndarray:
        """The rule's earcon at ``rate`` Hz, mono float32 (cached per label and rate)."""
        key = (rule.label, rate)
        got = self._sounds.get(key)
        if got is None:
            if rule.wav is not None and rule.wav in self.wavs:
                x, wav_rate = self.wavs[rule.wav]
                if wav_rate != rate:
                    import soxr

                    x = soxr.resample(x, wav_rate, rate).astype(np.float32)
                got = np.clip(x * self.cfg.volume, -1.0, 1.0).astype(np.float32)
            else:
                got = render(rule.steps, rate, self.cfg.volume)
            self._sounds[key] = got
        return got

    def prepare(self) -> None:
        """Play 20 ms of silence once: checks the device and loads the sound library's plugins."""
        self._play(lambda rate: np.zeros(int(0.02 * rate), np.float32), threading.Event())

    def play(self, alert: Alert, interrupt: threading.Event) -> None:
        self._play(lambda rate: self.sound(alert.rule, rate), interrupt)

    def _play(self, make: Any, interrupt: threading.Event) -> None:
        """Open a stream, play ``make(rate)`` from its callback, wait until it has played (or ``interrupt``)."""
        sd = self._sounddevice()
        done = threading.Event()
        pos = [0]
        buf: list[np.ndarray] = []

        def callback(out: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
            # PortAudio's thread: copy the next frames, nothing else.
            x = buf[0]
            i = pos[0]
            n = max(0, min(frames, x.shape[0] - i))
            out[:n] = x[i : i + n, None]
            out[n:] = 0.0
            pos[0] = i + n
            if i + n >= x.shape[0]:
                raise sd.CallbackStop  # the stream plays what it has, then finishes

        stream, rate, _ = self._open(callback, done.set)
        try:
            # Silence after the sound, as long as the output's latency: the stream's end must not cut off
            # the last milliseconds still on their way to the speaker.
            x = make(rate)
            self.latency_s = float(stream.latency)
            tail = np.zeros(int((self.latency_s + TAIL_S) * rate), np.float32)
            buf.append(np.concatenate((x, tail)))
            try:
                stream.start()
            except sd.PortAudioError as e:
                raise OutputFailed(f"cannot start {self.device_name!r}: {one_line(e)}") from None
            # The sound's length plus the output's latency and a margin; an output that takes longer
            # (a stalled sound server, a device gone mid-way) is given up on, and said so.
            limit = buf[0].shape[0] / rate + float(stream.latency) + STALL_MARGIN_S
            t0 = time.monotonic()
            while not done.wait(CHUNK_S):
                if interrupt.is_set():
                    return
                if time.monotonic() - t0 > limit:
                    raise OutputFailed(f"{self.device_name!r} stalled: {pos[0] / rate:.2f} of "
                                       f"{buf[0].shape[0] / rate:.2f} s played in {limit:.1f} s")
        finally:
            try:
                stream.abort(ignore_errors=True)
                stream.close(ignore_errors=True)
            except Exception:  # noqa: BLE001 - closing a stream whose device vanished must not mask the failure
                pass

    def close(self) -> None:
        # Nothing to release between alerts. A stream still playing belongs to the output's thread, which
        # aborts it itself within CHUNK_S of its interrupt: calling PortAudio on it from here could race
        # with that thread closing it.
        pass

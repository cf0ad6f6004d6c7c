"""Audio sources: a microphone or a file, both feeding the same ring buffer.

A source owns a :class:`~edge.capture.ring.RingBuffer` of mono float32 samples at
``source.sample_rate`` (Hz). The consumer (:mod:`edge.service.listener`) reads the
ring, resamples to the model rate if needed, and runs the front end. Nothing
but downmixing and copying happens on the producer side, so the audio
callback never blocks, allocates on the normal path or resamples.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edge.capture.audiofile import open_audio
from edge.capture.ring import RingBuffer
from edge.core.errors import EXIT_FAILURE, EXIT_USAGE, EdgeError
from edge.core.logutil import one_line


class SourceError(EdgeError, RuntimeError):
    """The audio source cannot be opened; the message is one line."""

    exit_code = EXIT_FAILURE


class Source(Protocol):
    """What the listener reads: a ring of mono float32 samples at ``sample_rate`` Hz, filled by a producer.

    :class:`MicSource` and :class:`FileSource` are the two sources; the listener supervises (reopens)
    a :class:`MicSource` only.
    """

    kind: str  # "mic" or "file"
    sample_rate: int  # Hz of the samples in the ring
    ring: RingBuffer
    overflows: int  # callbacks the driver flagged as having lost input
    start_wall: float  # Unix time (s) of the first sample
    error: BaseException | None  # what ended the producer, re-raised by the consumer
    #: (ring index, seconds): audio time missing before that index (microphone outages)
    gaps: deque[tuple[int, float]]

    @property
    def finished(self) -> bool:
        """No more samples will come (end of file)."""
        ...

    @property
    def duration_s(self) -> float | None:
        """Length of the recording in seconds; None for a live input."""
        ...

    def start(self) -> None:
        """Start producing (opens the stream / starts the reader thread)."""
        ...

    def stop(self) -> None:
        """Stop producing and close the ring (idempotent)."""
        ...


def _to_mono(block: np.ndarray, channel: int | None, where: str) -> np.ndarray:
    """``(frames, channels)`` -> ``(frames,)``: a picked channel or the mean of all."""
    if block.ndim == 1:
        return block
    if channel is not None:
        if channel >= block.shape[1]:
            raise SourceError(f"{where}: audio.channel {channel} requested but the input has {block.shape[1]}")
        return block[:, channel]
    if block.shape[1] == 1:
        return block[:, 0]
    return block.mean(axis=1, dtype=np.float32)


class FileSource:
    """Streams an audio file into the ring buffer from a producer thread.

    ``realtime=True`` paces the file at its own sample rate, like a microphone;
    otherwise it runs as fast as the consumer can take it and the producer
    waits for free space, so no sample is ever dropped.
    """

    kind = "file"

    def __init__(self, path: str | Path, channel: int | None = None, realtime: bool = False,
                 block_s: float = 0.05, buffer_s: float = 10.0) -> None:
        self.path = Path(path)
        self.reader = open_audio(self.path)  # fails early with AudioFileError
        self.sample_rate = self.reader.sample_rate
        if self.reader.frames == 0:
            self.reader.close()
            raise SourceError(f"{self.path}: no audio (the file holds 0 samples)", exit_code=EXIT_USAGE)
        self.channel = channel
        if channel is not None and channel >= self.reader.channels:
            self.reader.close()
            raise SourceError(  # the file's problem: bad input (2), as for `edge detect`
                f"{self.path}: audio.channel {channel} requested but the file has {self.reader.channels} channel(s)",
                exit_code=EXIT_USAGE)
        self.realtime = realtime
        # Unpaced, nothing waits on a block: large reads keep the reader thread's per-call cost
        # (file read, decode, ring hand-over) out of the way.
        self.block = max(1, int(round((block_s if realtime else max(block_s, 0.5)) * self.sample_rate)))
        # Unpaced, the producer waits for space and nothing is ever dropped, so a ring of
        # audio.buffer_s seconds (sized for a microphone's stalls) would only hold memory.
        ring_s = buffer_s if realtime else min(buffer_s, 2.0)
        self.ring = RingBuffer(max(int(ring_s * self.sample_rate), 2 * self.block))
        self.overflows = 0
        self.callbacks = 0
        self.last_callback = 0.0
        self.start_wall = 0.0
        self.error: BaseException | None = None
        self.gaps: deque[tuple[int, float]] = deque()  # a file has no outages
        self._stop = threading.Event()
        self._first = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def finished(self) -> bool:
        return self.ring.closed

    @property
    def duration_s(self) -> float | None:
        return self.reader.duration_s

    def start(self) -> None:
        self.start_wall = time.time()
        self._thread = threading.Thread(target=self._produce, name="edge-file-source", daemon=True)
        self._thread.start()

    def wait_first_callback(self, timeout: float) -> bool:
        return self._first.wait(timeout)

    def _produce(self) -> None:
        t0 = time.monotonic()
        sent = 0
        try:
            for block in self.reader.blocks(self.block):
                if self._stop.is_set():
                    break
                mono = _to_mono(block, self.channel, str(self.path))
                if self.realtime:
                    delay = t0 + sent / self.sample_rate - time.monotonic()
                    if delay > 0 and self._stop.wait(delay):
                        break
                else:
                    while not self.ring.wait_for_space(mono.shape[0], 0.1):
                        if self._stop.is_set():
                            return
                self.ring.write(mono)
                sent += mono.shape[0]
                self.callbacks += 1
                self.last_callback = time.monotonic()
                self._first.set()
        except BaseException as e:  # surfaced by the consumer as a one-line error
            self.error = e
        finally:
            self._first.set()
            self.ring.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.reader.close()
        self.ring.close()


def import_sounddevice() -> Any:
    """The ``sounddevice`` module; :class:`SourceError` (one line) when the PortAudio library is missing."""
    try:
        import sounddevice as sd
    except OSError as e:  # the Python package is there, libportaudio2 is not
        raise SourceError(f"microphone: cannot load the PortAudio library ({one_line(e)}); "
                          "install it (e.g. `sudo apt install libportaudio2`) or use a file source") from None
    return sd


def find_input_device(device: int | str | None) -> int | None:
    """Resolve a device index or a (case-insensitive) name substring to an input device index."""
    sd = import_sounddevice()

    if device is None:
        return None
    devices = sd.query_devices()
    if isinstance(device, int):
        if not (0 <= device < len(devices)) or devices[device]["max_input_channels"] < 1:
            raise SourceError(f"audio.device: no input device with index {device} (see `edge devices`)")
        return device
    matches = [i for i, d in enumerate(devices)
               if d["max_input_channels"] > 0 and device.lower() in str(d["name"]).lower()]
    if not matches:
        raise SourceError(f"audio.device: no input device whose name contains {device!r} (see `edge devices`)")
    return matches[0]


def list_input_devices() -> list[dict[str, Any]]:
    """Input devices as dicts with index, name, channels, default_samplerate, hostapi."""
    import sounddevice as sd

    out = []
    apis = sd.query_hostapis()
    for i, d in enumerate(sd.query_devices()):
        if d["max_input_channels"] > 0:
            out.append({
                "index": i,
                "name": d["name"],
                "channels": d["max_input_channels"],
                "default_samplerate": d["default_samplerate"],
                "hostapi": apis[d["hostapi"]]["name"],
            })
    return out


#: A downmix (``audio.channel: null``) opens every channel of a capture device up to this many.
#: A device reporting more is a sound server's virtual ALSA device (``pulse``, or ``default``
#: through PulseAudio/PipeWire, report 32 or more), which upmixes its stereo or mono source to
#: as many channels as are opened: all 32 cost the server, its client thread and the callback
#: 16x the data of 2 (the listener's largest live cost, docs/performance.md), and their mean lay
#: ~13 dB below the sound (the extra channels are copies of some and silence). Opened at 2, the
#: server delivers the source itself.
DOWNMIX_MAX_CHANNELS = 8


def downmix_channels(device_channels: int) -> int:
    """Channels to open for a downmix of a device reporting ``device_channels`` input channels."""
    return device_channels if device_channels <= DOWNMIX_MAX_CHANNELS else 2


class MicSource:
    """Microphone through ``sounddevice.InputStream``; the callback only copies into the ring.

    Opens at ``preferred_rate`` (the model's rate, or ``audio.sample_rate``); if the
    device refuses that rate, opens at its native rate and the consumer resamples.
    ``overflows`` counts callbacks flagged ``input_overflow`` by PortAudio (audio
    lost inside the driver); ring overruns are counted separately in ``ring.lost``.

    :meth:`reopen` (called by :class:`edge.capture.supervisor.MicSupervisor`) replaces a
    dead stream with a new one at the same rate, writing into the same ring.
    Each stream's callbacks carry a generation number, so a stream that was
    closed but still calls back can never write alongside its successor.
    """

    kind = "mic"

    def __init__(self, device: int | str | None, preferred_rate: int, channel: int | None = None,
                 block_s: float = 0.05, buffer_s: float = 10.0) -> None:
        sd = import_sounddevice()
        self._sd = sd
        self.device_spec = device
        self.device = find_input_device(device)
        try:
            info = sd.query_devices(self.device, "input")
        except (ValueError, sd.PortAudioError) as e:
            raise SourceError(f"microphone: no input device available ({one_line(e)}; see `edge devices`)") from None
        self.device_name = str(info["name"])
        self.device_channels = int(info["max_input_channels"])
        if channel is not None and channel >= self.device_channels:
            raise SourceError(
                f"audio.channel: {channel} requested but {self.device_name!r} has {self.device_channels} channel(s)"
            )
        self.channel = channel
        # Open only the channels we need: one picked channel needs channel+1, a downmix needs all
        # (a sound server's virtual device: 2, see DOWNMIX_MAX_CHANNELS).
        self.open_channels = channel + 1 if channel is not None else downmix_channels(self.device_channels)
        self.sample_rate = self._pick_rate(preferred_rate, float(info["default_samplerate"]))
        self.block = max(1, int(round(block_s * self.sample_rate)))
        self.ring = RingBuffer(max(int(buffer_s * self.sample_rate), 4 * self.block))
        self._scratch = np.zeros(4 * self.block, dtype=np.float32)
        self.overflows = 0
        self.callbacks = 0
        self.last_callback = 0.0
        self.start_wall = 0.0
        self.error: BaseException | None = None
        self.stream_finished = False  # PortAudio ended the current stream (error, device or server gone)
        self.reopens = 0
        #: called (on PortAudio's thread) when PortAudio ends the current stream; the supervisor's wake-up
        self.on_finished: Callable[[], None] | None = None
        # (ring index, seconds): audio time missing before that index (outages); read by the listener.
        self.gaps: deque[tuple[int, float]] = deque(maxlen=64)
        self._gen = 0
        self._first = threading.Event()
        self._stream: Any = None

    def _pick_rate(self, preferred: int, native: float) -> int:
        sd = self._sd
        try:
            sd.check_input_settings(device=self.device, channels=self.open_channels, samplerate=preferred,
                                    dtype="float32")
            return int(preferred)
        except (ValueError, sd.PortAudioError):
            pass
        try:
            sd.check_input_settings(device=self.device, channels=self.open_channels, samplerate=native,
                                    dtype="float32")
        except (ValueError, sd.PortAudioError) as e:
            raise SourceError(
                f"microphone {self.device_name!r}: cannot open at {preferred} Hz or at its native {native:g} Hz "
                f"({one_line(e)})"
            ) from None
        return int(round(native))

    @property
    def finished(self) -> bool:
        return False

    @property
    def duration_s(self) -> float | None:
        return None

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        # Runs on PortAudio's thread: copy and return. No locks, no allocation on the normal path.
        if status.input_overflow:
            self.overflows += 1
        if self.channel is not None:
            self.ring.write(indata[:, self.channel])
        elif indata.shape[1] == 1:
            self.ring.write(indata[:, 0])
        elif frames <= self._scratch.shape[0]:
            out = self._scratch[:frames]
            np.mean(indata, axis=1, out=out)
            self.ring.write(out)
        else:
            self.ring.write(indata.mean(axis=1, dtype=np.float32))
        self.callbacks += 1
        self.last_callback = time.monotonic()
        if not self._first.is_set():
            self._first.set()

    def _open_stream(self) -> None:
        """Open and start a stream of a new generation (raises ValueError / PortAudioError)."""
        self._gen += 1
        gen = self._gen

        def callback(indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
            if gen == self._gen:
                self._callback(indata, frames, time_info, status)

        def finished() -> None:
            if gen == self._gen:
                self.stream_finished = True
                hook = self.on_finished
                if hook is not None:
                    hook()

        self.stream_finished = False
        stream = self._sd.InputStream(device=self.device, channels=self.open_channels, samplerate=self.sample_rate,
                                      blocksize=self.block, dtype="float32", callback=callback,
                                      finished_callback=finished)
        try:
            stream.start()
        except BaseException:
            stream.close(ignore_errors=True)
            raise
        self._stream = stream

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        self._gen += 1  # whatever the old stream still delivers is ignored from now on
        if stream is not None:
            try:
                stream.abort(ignore_errors=True)
                stream.close(ignore_errors=True)
            except Exception:  # closing a stream whose device vanished must not mask the reopen
                pass

    def start(self) -> None:
        sd = self._sd
        try:
            self._open_stream()
        except (ValueError, sd.PortAudioError) as e:
            raise SourceError(f"microphone {self.device_name!r}: cannot start ({one_line(e)})") from None
        except MemoryError:  # cffi builds the audio callback in write+execute memory
            raise SourceError(f"microphone {self.device_name!r}: cannot create the audio callback: this process "
                              "may not map write+execute memory (systemd MemoryDenyWriteExecute=yes? "
                              "set it to no)") from None
        self.start_wall = time.time()

    def reopen(self) -> None:
        """Close the stream, re-initialise PortAudio and open the device again (same rate, same ring).

        Re-initialising makes PortAudio enumerate devices afresh, which is what
        finds a restarted sound server or a re-plugged USB microphone. The
        device is looked up again by its configured name/index. Raises
        :class:`SourceError` (or PortAudio's error) while it is not back.
        """
        sd = self._sd
        self._close_stream()
        if sd._initialized > 0:
            try:
                sd._terminate()
            except Exception:  # a half-dead PortAudio; initialising again is what matters
                pass
        sd._initialize()
        self.device = find_input_device(self.device_spec)
        try:
            self._open_stream()
        except (ValueError, sd.PortAudioError) as e:
            raise SourceError(f"microphone {self.device_name!r}: cannot reopen ({one_line(e)})") from None
        self.reopens += 1

    def wait_first_callback(self, timeout: float) -> bool:
        return self._first.wait(timeout)

    def stop(self) -> None:
        if self._stream is not None:
            try:
                self._stream.stop()
                self._stream.close()
            except Exception:  # stopping a stream whose device vanished must not mask shutdown
                pass
            self._stream = None
        self._gen += 1
        self.ring.close()

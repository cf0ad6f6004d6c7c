"""Reading audio files in chunks: WAV of any rate, channel count and sample format.

WAV (PCM 8/16/24/32-bit integer, 32/64-bit float, plain or WAVE_FORMAT_EXTENSIBLE)
is parsed here with the standard library and numpy, so the runtime needs no
extra package. Other formats (FLAC, OGG, ...) use ``soundfile`` when it is
installed. Samples come out as float32 in [-1, 1], shape ``(frames, channels)``.

Every failure is an :class:`AudioFileError` whose message is one line naming
the file and the problem. The file is opened once, through
:func:`edge.core.files.open_file` (a regular file only: a named pipe or a
device is refused, never waited on), and that open file is what both readers
decode. MP3 is refused (convert it to WAV or FLAC): libmpg123, which decodes
it for libsndfile, prints its own lines on stderr for every damaged frame.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from edge.core.errors import EdgeError
from edge.core.files import FileProblem, open_file, shown_path
from edge.core.logutil import one_line

_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE


class AudioFileError(EdgeError, ValueError):
    """An audio file is missing, unreadable or in an unsupported format."""


class AudioReader:
    """An open audio file. Attributes: ``sample_rate`` (Hz), ``channels``, ``frames`` (per channel)."""

    path: Path
    sample_rate: int
    channels: int
    frames: int

    def blocks(self, n_frames: int) -> Iterator[np.ndarray]:
        """Yield float32 blocks ``(<= n_frames, channels)`` until the end of the file."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate

    def __enter__(self) -> AudioReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class WavReader(AudioReader):
    def __init__(self, path: Path, f: BinaryIO) -> None:
        self.path = path
        self._f = f
        fmt: tuple[int, ...] | None = None
        data_start = data_len = None
        file_len = path.stat().st_size
        header = f.read(12)
        if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            raise AudioFileError(f"{path}: not a WAV file (no RIFF/WAVE header)")
        while True:
            ck = f.read(8)
            if len(ck) < 8:
                break
            cid, size = ck[:4], struct.unpack("<I", ck[4:])[0]
            if cid == b"fmt ":
                body = f.read(size)
                if len(body) < 16:
                    raise AudioFileError(f"{path}: WAV 'fmt ' chunk is truncated")
                tag, ch, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
                if tag == _EXTENSIBLE and len(body) >= 26:
                    tag = struct.unpack("<H", body[24:26])[0]
                fmt = (tag, ch, rate, bits)
            elif cid == b"data":
                data_start = f.tell()
                # Writers that never finalised the header leave 0 or 0xFFFFFFFF: use what is there.
                data_len = min(size, file_len - data_start) if size not in (0, 0xFFFFFFFF) else file_len - data_start
                break
            else:
                f.seek(size + (size & 1), 1)
                continue
            if size & 1:
                f.seek(1, 1)
        if fmt is None:
            raise AudioFileError(f"{path}: WAV file has no 'fmt ' chunk")
        if data_start is None or data_len is None:
            raise AudioFileError(f"{path}: WAV file has no 'data' chunk")
        tag, ch, rate, bits = fmt
        if ch < 1 or rate < 1:
            raise AudioFileError(f"{path}: WAV header has {ch} channels at {rate} Hz")
        check_rate(path, rate)
        if tag == _PCM and bits in (8, 16, 24, 32):
            pass
        elif tag == _FLOAT and bits in (32, 64):
            pass
        else:
            raise _Unsupported(f"{path}: unsupported WAV sample format (format tag {tag}, {bits} bits)", tag=tag)
        self._tag, self._bits = tag, bits
        self.channels, self.sample_rate = ch, rate
        self._frame_bytes = ch * bits // 8
        self.frames = data_len // self._frame_bytes
        self._data_start = data_start

    def _decode(self, raw: bytes) -> np.ndarray:
        bits, tag = self._bits, self._tag
        if tag == _FLOAT:
            x = np.frombuffer(raw, dtype="<f4" if bits == 32 else "<f8").astype(np.float32)
        elif bits == 8:
            x = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
        elif bits == 16:
            x = np.multiply(np.frombuffer(raw, dtype="<i2"), np.float32(1.0 / 32768.0), dtype=np.float32)
        elif bits == 24:
            b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
            v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
            v = np.where(v >= 1 << 23, v - (1 << 24), v)
            x = v.astype(np.float32) / float(1 << 23)
        else:
            x = (np.frombuffer(raw, dtype="<i4").astype(np.float64) / 2147483648.0).astype(np.float32)
        return x.reshape(-1, self.channels)

    def blocks(self, n_frames: int) -> Iterator[np.ndarray]:
        self._f.seek(self._data_start)
        left = self.frames
        while left > 0:
            k = min(n_frames, left)
            raw = self._f.read(k * self._frame_bytes)
            k = len(raw) // self._frame_bytes
            if k == 0:
                return
            left -= k
            yield self._decode(raw[: k * self._frame_bytes])

    def close(self) -> None:
        self._f.close()


#: sample rates (Hz) a recording can plausibly have; outside, the header is broken
MIN_RATE, MAX_RATE = 1000, 768000


def check_rate(path: Path, rate: int) -> None:
    """:class:`AudioFileError` unless ``rate`` (Hz) is between :data:`MIN_RATE` and :data:`MAX_RATE`."""
    if not MIN_RATE <= rate <= MAX_RATE:
        raise AudioFileError(f"{path}: sample rate {rate} Hz in the header is not a real recording's "
                             f"({MIN_RATE}-{MAX_RATE} Hz)")


class _Unsupported(AudioFileError):
    """A WAV variant this parser does not handle (soundfile may); ``tag`` is its format tag."""

    def __init__(self, message: str, tag: int = 0) -> None:
        super().__init__(message)
        self.tag = tag


#: WAV format tags of MPEG audio (decoded by libmpg123, like an .mp3)
_WAV_MPEG_TAGS = (0x50, 0x55)


def is_mp3(magic: bytes) -> bool:
    """Whether the first bytes of a file are an ID3 tag or an MPEG audio frame header (layer I-III)."""
    if magic[:3] == b"ID3":
        return True
    return len(magic) >= 2 and magic[0] == 0xFF and (magic[1] & 0xE0) == 0xE0 and (magic[1] >> 1) & 3 != 0


def _sf_says(e: BaseException) -> str:
    """libsndfile's reason, without soundfile's ``Error opening <file object>:`` in front."""
    return re.sub(r"^Error opening .*?: ", "", one_line(e, last=True))


def _refuse_mp3(path: Path) -> AudioFileError:
    return AudioFileError(f"{path}: MP3 is not supported (convert it to WAV or FLAC, e.g. ffmpeg -i IN.mp3 OUT.wav)")


class SoundfileReader(AudioReader):
    """FLAC, OGG, ... with libsndfile, from the already opened (and checked) file object."""

    def __init__(self, path: Path, sf: Any, f: BinaryIO | None = None) -> None:
        self.path = path
        self._f = f
        try:
            self._sf = sf.SoundFile(f if f is not None else str(path))
        except Exception as e:  # soundfile raises LibsndfileError / RuntimeError / TypeError
            self._close_file()
            raise AudioFileError(f"{path}: cannot read audio ({_sf_says(e)})") from None
        try:
            if str(self._sf.format).upper() == "MPEG" or str(self._sf.subtype).upper().startswith("MPEG"):
                raise _refuse_mp3(path)
            self.sample_rate = int(self._sf.samplerate)
            self.channels = int(self._sf.channels)
            self.frames = int(self._sf.frames)
            if self.channels < 1 or self.frames < 0:
                raise AudioFileError(f"{path}: header says {self.channels} channels, {self.frames} frames")
            check_rate(path, self.sample_rate)
        except BaseException:
            self.close()
            raise

    def blocks(self, n_frames: int) -> Iterator[np.ndarray]:
        try:
            self._sf.seek(0)  # a damaged FLAC can fail already here (LibsndfileError)
        except Exception as e:
            raise AudioFileError(f"{self.path}: cannot decode audio ({_sf_says(e)})") from None
        while True:
            try:
                x = self._sf.read(n_frames, dtype="float32", always_2d=True)
            except Exception as e:  # a truncated or corrupt FLAC/OGG fails mid-file (LibsndfileError)
                raise AudioFileError(f"{self.path}: cannot decode audio ({_sf_says(e)})") from None
            if x.shape[0] == 0:
                return
            yield x

    def _close_file(self) -> None:
        if self._f is not None:
            self._f.close()

    def close(self) -> None:
        try:
            self._sf.close()
        except Exception:  # noqa: BLE001 - closing a damaged file must not hide why it is closed
            pass
        self._close_file()


def open_audio(path: str | Path) -> AudioReader:
    """Open ``path`` for chunked reading. Raises :class:`AudioFileError` (one line)."""
    p = Path(path)
    try:
        f = open_file(p)  # a regular file; a named pipe or a device is refused, never waited on
    except FileProblem as e:
        raise AudioFileError(f"{shown_path(p)}: audio file not found" if e.missing else str(e)) from None
    try:
        magic = f.read(12)
        f.seek(0)
    except OSError as e:
        f.close()
        raise AudioFileError(f"{p}: cannot read ({e.strerror or type(e).__name__})") from None
    unsupported: AudioFileError | None = None
    if magic[:4] == b"RIFF" and magic[8:12] == b"WAVE":
        try:
            return WavReader(p, f)
        except _Unsupported as e:
            if e.tag in _WAV_MPEG_TAGS:
                f.close()
                raise _refuse_mp3(p) from None
            unsupported = e
            f.seek(0)
        except AudioFileError:
            f.close()
            raise
        except (OSError, struct.error, ValueError, OverflowError) as e:
            f.close()
            raise AudioFileError(f"{p}: cannot read WAV ({type(e).__name__})") from None
    elif is_mp3(magic):
        f.close()
        raise _refuse_mp3(p)
    try:
        import soundfile as sf
    except ImportError:
        f.close()
        if unsupported is not None:
            raise unsupported from None
        raise AudioFileError(
            f"{p}: not a WAV file, and reading other formats needs the 'soundfile' package"
        ) from None
    return SoundfileReader(p, sf, f)


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Read a whole file: ``(samples (frames, channels) float32, sample_rate Hz)``."""
    with open_audio(path) as r:
        parts = list(r.blocks(1 << 16))
        rate, ch = r.sample_rate, r.channels
    data = np.concatenate(parts) if parts else np.zeros((0, ch), np.float32)
    return data, rate


def read_mono(path: str | Path, sample_rate: int) -> np.ndarray:
    """A whole file as mono float32 ``(n_samples,)`` at ``sample_rate`` Hz.

    Channels are averaged; another rate is converted with soxr. Errors are
    one-line :class:`AudioFileError` s.
    """
    data, rate = read_audio(path)
    x = data.mean(axis=1, dtype=np.float32) if data.ndim == 2 else data.astype(np.float32)
    if rate != sample_rate:
        import soxr

        x = soxr.resample(x, rate, sample_rate).astype(np.float32)
    return np.ascontiguousarray(x, dtype=np.float32)


def write_wav(path: str | Path, data: np.ndarray, sample_rate: int, sample_format: str = "s16") -> Path:
    """Write ``data`` ((frames,) or (frames, channels), float in [-1, 1]) as a WAV file.

    ``sample_format``: ``u8``, ``s16``, ``s24``, ``s32`` (integer PCM) or ``f32``, ``f64`` (IEEE float).
    Values outside [-1, 1] are clipped for integer formats.
    """
    x = np.asarray(data, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    ch = x.shape[1]
    if sample_format in ("f32", "f64"):
        tag, bits = _FLOAT, 32 if sample_format == "f32" else 64
        raw = x.astype("<f4" if bits == 32 else "<f8").tobytes()
    else:
        bits = {"u8": 8, "s16": 16, "s24": 24, "s32": 32}[sample_format]
        tag = _PCM
        full = float(1 << (bits - 1))
        v = np.clip(np.round(x * full), -full, full - 1).astype(np.int64)
        if bits == 8:
            raw = (v + 128).astype(np.uint8).tobytes()
        elif bits == 24:
            u = (v & 0xFFFFFF).astype(np.uint32)
            raw = np.stack([u & 0xFF, (u >> 8) & 0xFF, (u >> 16) & 0xFF], axis=-1).astype(np.uint8).tobytes()
        else:
            raw = v.astype("<i2" if bits == 16 else "<i4").tobytes()
    block_align = ch * bits // 8
    fmt = struct.pack("<HHIIHH", tag, ch, int(sample_rate), int(sample_rate) * block_align, block_align, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(raw)) + raw
    if len(raw) & 1:
        body += b"\0"
    p = Path(path)
    p.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return p

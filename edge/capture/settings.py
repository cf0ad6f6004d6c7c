"""Settings of the capture stage: ``audio`` (where samples come from) and ``health`` (microphone supervision)."""

from __future__ import annotations

from dataclasses import dataclass

from edge.core.schema import option


@dataclass(frozen=True)
class AudioConfig:
    source: str = option("mic", '"mic" or the path of an audio file (WAV; FLAC etc. need soundfile)')
    device: int | str | None = option(
        None, "input device: index or part of its name (see `edge devices`); null = the system default")
    channel: int | None = option(None, "0-based channel to use; null = downmix all channels", 0, 255)
    sample_rate: int | None = option(
        None, "Hz to open the microphone at; null = the model's rate (if the device refuses a rate, its native "
        "rate is used and the audio resampled)", 8000, 384000)
    block_s: float | None = option(
        None, "seconds of audio per capture callback; null = the model's block (one callback per block, so "
        "the processing thread wakes once per block); unpaced files are read in >= 0.5 s", 0.001, 1.0)
    buffer_s: float = option(10.0, "ring buffer capacity in seconds; older audio is overwritten and counted "
                             "(unpaced files: <= 2 s, never dropped)", 1.0, 600.0)
    realtime: bool = option(False, "file sources: pace at real time (true) or as fast as possible (false)")


@dataclass(frozen=True)
class HealthConfig:
    stall_after_s: float = option(2.0, "no audio callbacks for this many seconds = microphone lost", 0.1, 600.0)
    silent_after_s: float = option(10.0, "only zeros/NaNs for this many seconds = microphone silent", 0.5, 3600.0)
    reopen_max_backoff_s: float = option(30.0, "longest wait between microphone reopen attempts, seconds",
                                         0.1, 3600.0)

"""Sound events: what the detector emits and every sink receives.

One :class:`Event` is emitted when a sound starts (``state == "on"``) and one
when it ends (``state == "off"``); both carry the same ``id``. Times are given
twice: seconds from the start of the stream (exact, from sample indices) and
absolute wall-clock (ISO 8601 UTC, from the stream's start time).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any


def new_event_id() -> str:
    return uuid.uuid4().hex


def iso_utc(ts: float) -> str:
    """Unix time in seconds -> ISO 8601 UTC with milliseconds."""
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Event:
    """An onset or offset of one label.

    Attributes:
        id: unique id shared by the onset and the offset of one sound.
        label: model label, e.g. ``"smoke_alarm"``.
        state: ``"on"`` (onset) or ``"off"`` (offset).
        onset: seconds from stream start at which the sound began.
        offset: seconds from stream start at which it ended (``None`` on an onset).
        onset_time: Unix time (s) of the onset.
        offset_time: Unix time (s) of the offset (``None`` on an onset).
        score: peak score so far, in [0, 1].
        mean_score: mean score over the event so far, in [0, 1].
        level_dbfs: peak level during the event in dBFS: 20*log10(RMS) of the samples, so a
            full-scale square wave is 0 dBFS and a full-scale sine -3 dBFS.
        model_version: version string from the model contract.
    """

    id: str
    label: str
    state: str
    onset: float
    offset: float | None
    onset_time: float
    offset_time: float | None
    score: float
    mean_score: float
    level_dbfs: float
    model_version: str

    @property
    def duration(self) -> float | None:
        return None if self.offset is None else self.offset - self.onset

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["onset"] = round(self.onset, 3)
        d["offset"] = None if self.offset is None else round(self.offset, 3)
        d["duration"] = None if self.offset is None else round(self.offset - self.onset, 3)
        d["onset_iso"] = iso_utc(self.onset_time)
        d["offset_iso"] = None if self.offset_time is None else iso_utc(self.offset_time)
        d["score"] = round(self.score, 4)
        d["mean_score"] = round(self.mean_score, 4)
        d["level_dbfs"] = round(self.level_dbfs, 1)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Event:
        names = cls.__dataclass_fields__
        return cls(**{k: d[k] for k in names})

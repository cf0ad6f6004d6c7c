import wave

import numpy as np

from edge.core.events import Event
from edge.publish.clips import ClipRecorder


def _onset(t: float, label: str = "dog_bark", i: int = 0) -> Event:
    return Event(f"{i:032x}", label, "on", t, None, 1e9 + t, None, 0.9, 0.9, -20.0, "t")


def test_clip_is_written_around_the_onset_with_the_right_samples(tmp_path):
    rate = 1000
    rec = ClipRecorder(tmp_path, rate, clip_s=2.0, max_clips=5)
    ramp = (np.arange(10 * rate) / (10 * rate)).astype(np.float32)
    rec.feed(ramp[:4500])
    rec.trigger(_onset(4.0))
    assert list(tmp_path.glob("*.wav")) == []  # the second half is not there yet
    rec.feed(ramp[4500:])
    (path,) = tmp_path.glob("*.wav")
    with wave.open(str(path)) as w:
        got = np.frombuffer(w.readframes(w.getnframes()), "<i2") / 32767.0
    assert got.shape == (2000,)
    np.testing.assert_allclose(got, ramp[3000:5000], atol=1e-4)


def test_clip_folder_is_bounded(tmp_path):
    rec = ClipRecorder(tmp_path, 1000, clip_s=0.5, max_clips=3)
    for i in range(10):
        rec.feed(np.zeros(1000, np.float32))
        rec.trigger(_onset(i + 0.5, i=i))
        rec.feed(np.zeros(1000, np.float32))
    assert len(list(tmp_path.glob("*.wav"))) == 3


def test_offsets_are_not_captured(tmp_path):
    rec = ClipRecorder(tmp_path, 1000, clip_s=0.5)
    rec.feed(np.zeros(2000, np.float32))
    ev = _onset(0.5)
    rec.trigger(Event(ev.id, ev.label, "off", 0.5, 1.0, ev.onset_time, ev.onset_time + 0.5, 0.9, 0.9, -20, "t"))
    rec.feed(np.zeros(2000, np.float32))
    assert list(tmp_path.glob("*.wav")) == []

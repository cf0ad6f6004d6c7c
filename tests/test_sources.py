import time

import numpy as np
import pytest

from edge.capture.audiofile import read_audio
from edge.capture.sources import FileSource, SourceError


def _drain(src, slow=False):
    got = []
    src.start()
    while True:
        start, x = src.ring.read(3000)
        if x.size:
            got.append((start, x))
            if slow:
                time.sleep(0.002)  # the consumer falls behind a producer that could go much faster
        elif src.ring.closed:
            break
        else:
            src.ring.wait(0.05)
    src.stop()
    return got


def test_fast_file_source_never_drops_samples_even_with_a_small_ring(wav_writer):
    x = np.random.default_rng(0).uniform(-0.5, 0.5, (16000 * 4, 2)).astype(np.float32)
    path = wav_writer("stereo.wav", x, 16000, "f32")
    src = FileSource(path, block_s=0.05, buffer_s=1.0)  # ring holds 1 s of a 4 s file
    got = _drain(src, slow=True)
    starts = [s for s, _ in got]
    data = np.concatenate([c for _, c in got])
    assert src.ring.lost == 0
    assert starts[0] == 0 and all(b == a + c.size for (a, c), b in zip(got[:-1], starts[1:], strict=True))
    assert np.allclose(data, x.mean(axis=1), atol=1e-7)  # downmixed, every sample, in order


def test_file_source_picks_a_channel(wav_writer):
    x = np.stack([np.full(800, 0.25), np.full(800, -0.5)], axis=1)
    src = FileSource(wav_writer("two.wav", x, 8000, "s16"), channel=1)
    data = np.concatenate([c for _, c in _drain(src)])
    assert data.shape == (800,) and np.allclose(data, -0.5)


def test_file_source_rejects_a_channel_the_file_lacks(wav_writer):
    path = wav_writer("mono.wav", np.zeros(100), 8000)
    with pytest.raises(SourceError, match=r"audio.channel 2 requested but the file has 1 channel"):
        FileSource(path, channel=2)


def test_realtime_file_source_is_paced_at_the_file_rate(wav_writer):
    path = wav_writer("half.wav", np.zeros(8000), 16000)  # 0.5 s
    src = FileSource(path, realtime=True, block_s=0.05)
    t0 = time.monotonic()
    data = np.concatenate([c for _, c in _drain(src)])
    elapsed = time.monotonic() - t0
    assert data.shape == (8000,)
    assert elapsed >= 0.4  # as fast as possible would take a few milliseconds


def test_read_audio_and_file_source_agree(wav_writer):
    x = np.random.default_rng(1).uniform(-1, 1, 5000)
    path = wav_writer("m.wav", x, 11025, "s24")
    ref, rate = read_audio(path)
    src = FileSource(path)
    assert src.sample_rate == rate == 11025
    assert np.array_equal(np.concatenate([c for _, c in _drain(src)]), ref[:, 0])

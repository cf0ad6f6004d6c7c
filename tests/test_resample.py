import numpy as np

from edge.capture.resample import Passthrough, make_resampler


def _dominant_hz(x, sr):
    spec = np.abs(np.fft.rfft(x * np.hanning(x.shape[0])))
    return np.argmax(spec) * sr / x.shape[0]


def test_streaming_resample_preserves_frequency_and_length_for_any_chunking():
    sr_in, sr_out = 44100, 16000
    x = (0.5 * np.sin(2 * np.pi * 1000 * np.arange(2 * sr_in) / sr_in)).astype(np.float32)
    rng = np.random.default_rng(0)
    outs = []
    for _ in range(2):
        r = make_resampler(sr_in, sr_out)
        cuts = np.sort(rng.integers(0, x.shape[0], 30))
        parts = [r.push(c) for c in np.split(x, cuts)] + [r.flush()]
        y = np.concatenate(parts)
        assert y.dtype == np.float32
        assert abs(y.shape[0] - 2 * sr_out) <= 1
        assert abs(_dominant_hz(y, sr_out) - 1000) < 2
        outs.append(y)
    n = min(o.shape[0] for o in outs)
    assert np.max(np.abs(outs[0][:n] - outs[1][:n])) < 1e-5  # chunking does not change the output


def test_resampler_keeps_timing_aligned():
    """A click at 1.0 s in 48 kHz audio is at 1.0 s (+- 1 ms) after conversion to 16 kHz."""
    x = np.zeros(96000, np.float32)
    x[48000] = 1.0
    r = make_resampler(48000, 16000)
    y = np.concatenate([r.push(x[:30000]), r.push(x[30000:]), r.flush()])
    assert abs(np.argmax(np.abs(y)) / 16000 - 1.0) <= 0.001


def test_same_rate_is_a_passthrough():
    r = make_resampler(16000, 16000)
    assert isinstance(r, Passthrough)
    x = np.arange(5, dtype=np.float32)
    assert np.array_equal(r.push(x), x) and r.flush().size == 0

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.features.frontend import FrontendParams, IncrementalSTFT, LogMelStream, logmel, power_spectrogram

P = FrontendParams()
SIGNAL = np.random.default_rng(7).uniform(-1, 1, 16000 + 123).astype(np.float32)


def _chunk(signal, cuts):
    edges = sorted({min(c, signal.shape[0]) for c in cuts} | {0, signal.shape[0]})
    return [signal[a:b] for a, b in zip(edges[:-1], edges[1:], strict=True)]


chunkings = st.lists(st.integers(min_value=0, max_value=SIGNAL.shape[0]), max_size=40)


@settings(max_examples=60, deadline=None)
@given(cuts=chunkings, ones=st.integers(min_value=0, max_value=30))
def test_incremental_power_spectra_equal_batch_for_any_chunking(cuts, ones):
    # Some one-sample chunks at the start exercise the "no complete frame yet" path.
    parts = [SIGNAL[i : i + 1] for i in range(ones)] + _chunk(SIGNAL[ones:], cuts)
    stft = IncrementalSTFT(P)
    got = np.concatenate([stft.push(c) for c in parts] + [np.zeros((0, P.n_bins), np.float32)])
    want = power_spectrogram(SIGNAL, P)
    assert got.shape == want.shape
    assert np.max(np.abs(got - want)) <= 1e-5


@settings(max_examples=60, deadline=None)
@given(cuts=chunkings)
def test_incremental_logmel_equals_batch_for_any_chunking(cuts):
    stream = LogMelStream(P)
    got = np.concatenate([stream.push(c) for c in _chunk(SIGNAL, cuts)] + [np.zeros((0, P.n_mels), np.float32)])
    want = logmel(SIGNAL, P)
    assert got.shape == want.shape == (P.n_frames(SIGNAL.shape[0]), P.n_mels)
    assert np.max(np.abs(got - want)) <= 1e-5


def test_single_sample_chunks_equal_batch():
    x = SIGNAL[:2000]
    stream = LogMelStream(P)
    got = np.concatenate([stream.push(x[i : i + 1]) for i in range(x.shape[0])])
    assert np.max(np.abs(got - logmel(x, P))) <= 1e-5

import numpy as np
import pytest

from edge.capture.audiofile import AudioFileError, open_audio, read_audio, write_wav

sf = pytest.importorskip("soundfile")

SR = 22050
# Stereo: a different sine on each channel, within every format's range.
_t = np.arange(SR // 2) / SR
STEREO = np.stack([0.5 * np.sin(2 * np.pi * 440 * _t), -0.25 * np.sin(2 * np.pi * 97 * _t)], axis=1)
# Quantisation step of each format (s32 is limited by the float32 output, not by 2**-31).
STEP = {"u8": 1 / 128, "s16": 1 / 32768, "s24": 1 / 2**23, "s32": 6e-8, "f32": 1e-7, "f64": 1e-7}


@pytest.mark.parametrize("fmt", ["u8", "s16", "s24", "s32", "f32", "f64"])
def test_wav_formats_decode_like_libsndfile_and_like_the_source(tmp_path, fmt):
    path = write_wav(tmp_path / f"x_{fmt}.wav", STEREO, SR, fmt)
    data, rate = read_audio(path)
    assert rate == SR and data.shape == STEREO.shape and data.dtype == np.float32
    assert np.max(np.abs(data - STEREO)) <= STEP[fmt]
    ref, ref_rate = sf.read(str(path), dtype="float32", always_2d=True)  # independent decoder
    assert ref_rate == SR
    assert np.max(np.abs(data - ref)) <= 1e-6


@pytest.mark.parametrize("subtype", ["PCM_24", "FLOAT"])
def test_wav_extensible_multichannel_written_by_libsndfile(tmp_path, subtype):
    x = np.random.default_rng(3).uniform(-0.9, 0.9, (1000, 6)).astype(np.float32)
    path = tmp_path / "six.wav"
    sf.write(str(path), x, 48000, subtype=subtype, format="WAV")  # 6 channels -> WAVE_FORMAT_EXTENSIBLE
    with open_audio(path) as r:
        assert (r.sample_rate, r.channels, r.frames) == (48000, 6, 1000)
        blocks = list(r.blocks(333))
    assert [b.shape[0] for b in blocks] == [333, 333, 333, 1]
    ref, _ = sf.read(str(path), dtype="float32", always_2d=True)
    assert np.max(np.abs(np.concatenate(blocks) - ref)) <= 1e-6


def test_flac_is_read_through_soundfile(tmp_path):
    path = tmp_path / "x.flac"
    sf.write(str(path), STEREO, SR, subtype="PCM_16")
    data, rate = read_audio(path)
    assert rate == SR and data.shape == STEREO.shape
    assert np.max(np.abs(data - STEREO)) <= 2 / 32768


def test_wav_with_unfinalised_data_size_reads_what_is_there(tmp_path):
    path = write_wav(tmp_path / "live.wav", STEREO[:1000], SR, "s16")
    raw = bytearray(path.read_bytes())
    i = raw.index(b"data")
    raw[i + 4 : i + 8] = b"\xff\xff\xff\xff"  # a recorder killed before fixing the header
    path.write_bytes(bytes(raw))
    data, _ = read_audio(path)
    assert data.shape == (1000, 2)


def test_missing_file_error_is_one_line_naming_the_file(tmp_path):
    with pytest.raises(AudioFileError) as e:
        open_audio(tmp_path / "nope.wav")
    assert str(e.value) == f"{tmp_path / 'nope.wav'}: audio file not found"


@pytest.mark.parametrize("content", [b"", b"hello, this is not audio at all" * 10, b"RIFF\x10\x00\x00\x00WAVEfmt "])
def test_garbage_and_truncated_files_give_one_line_errors(tmp_path, content):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(AudioFileError) as e:
        read_audio(path)
    msg = str(e.value)
    assert msg.startswith(str(path) + ": ") and "\n" not in msg


def test_directory_is_not_an_audio_file(tmp_path):
    with pytest.raises(AudioFileError, match="not a regular file"):
        open_audio(tmp_path)


def test_a_flac_cut_short_mid_stream_is_a_one_line_decode_error(tmp_path):
    rng = np.random.default_rng(0)
    full = tmp_path / "full.flac"
    sf.write(str(full), (rng.standard_normal(SR * 20) * 0.3).clip(-1, 1), SR, subtype="PCM_16")
    cut = tmp_path / "cut.flac"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 3])  # the header still claims 20 s
    with pytest.raises(AudioFileError) as e:
        read_audio(cut)
    msg = str(e.value)
    assert msg.startswith(f"{cut}: cannot decode audio (") and "\n" not in msg, msg


@pytest.mark.parametrize("rate", [1, 4_000_000_000])
def test_an_impossible_sample_rate_in_the_header_is_refused(tmp_path, rate):
    path = write_wav(tmp_path / "r.wav", STEREO[:100], SR, "s16")
    raw = bytearray(path.read_bytes())
    i = raw.index(b"fmt ")
    raw[i + 12 : i + 16] = rate.to_bytes(4, "little")
    path.write_bytes(bytes(raw))
    with pytest.raises(AudioFileError, match=rf"sample rate {rate} Hz in the header"):
        open_audio(path)

import io

import numpy as np
import pytest
import soundfile as sf

from mixtape.audio import AudioError, block_rms_db, convert, decode, encode, probe, to_pcm16, window_rms_db

SR = 22050


def tone(seconds=2.0, sr=SR, channels=1, freq=440.0, amp=0.3):
    t = np.arange(int(seconds * sr)) / sr
    x = (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


def encoded(x, sr=SR, fmt="FLAC", subtype="PCM_16"):
    buf = io.BytesIO()
    sf.write(buf, x, sr, format=fmt, subtype=subtype)
    return buf.getvalue()


@pytest.mark.parametrize("fmt, subtype", [("FLAC", "PCM_16"), ("WAV", "PCM_24"), ("OGG", "VORBIS"),
                                          ("MP3", "MPEG_LAYER_III")])
def test_probe_decodes_real_codecs_exactly(fmt, subtype):
    p = probe(encoded(tone(channels=2), fmt=fmt, subtype=subtype), "x")
    assert p.sample_rate == SR and p.channels == 2
    assert abs(p.frames - 2 * SR) <= (2 * 1152 if fmt == "MP3" else 0)
    assert p.container == fmt
    assert -14 < max(p.block_rms_db) < -10  # 0.3 amplitude sine: -13.5 dBFS


def test_truncated_wav_is_caught_although_libsndfile_clamps_it():
    data = encoded(tone(), fmt="WAV")
    with pytest.raises(AudioError) as e:
        probe(data[: len(data) // 2], "cut.wav")
    assert e.value.reason == "truncated" and "cut.wav" in e.value.detail


@pytest.mark.parametrize("data, reason", [
    (b"", "empty_file"),
    (b"this is a text file, not audio" * 3, "undecodable"),
])
def test_bad_bytes_get_a_reason(data, reason):
    with pytest.raises(AudioError) as e:
        probe(data, "bad")
    assert e.value.reason == reason


def test_truncated_flac_is_rejected():
    data = encoded(tone(4.0))
    with pytest.raises(AudioError) as e:
        probe(data[: len(data) // 2], "cut.flac")
    assert e.value.reason in ("undecodable", "truncated")


def test_non_finite_float_wav_is_rejected():
    x = tone()
    x[100] = np.nan
    with pytest.raises(AudioError) as e:
        probe(encoded(x, fmt="WAV", subtype="FLOAT"))
    assert e.value.reason == "non_finite"


def test_block_loudness_sees_silence_and_signal():
    x = np.concatenate([np.zeros(SR, np.float32), tone(1.0)])[None, :]
    levels = block_rms_db(x, SR)
    assert len(levels) == 20
    assert levels[0] == -200.0 and levels[-1] > -20
    assert window_rms_db(levels, 0, 1000) == -200.0
    assert window_rms_db(levels, 1000, 1000) > -20
    assert -20 < window_rms_db(levels, 500, 1000) < -14  # half silent: 3 dB below the tone


def test_convert_downmixes_then_resamples():
    stereo = np.stack([tone(1.0), -tone(1.0)])  # opposite phase: the mono mix is silent
    out = convert(stereo, SR, 16000, 1)
    assert out.shape == (1, 16000) and out.dtype == np.float32 and np.abs(out).max() < 1e-6
    up = convert(tone(1.0)[None, :], SR, 44100, 2)
    assert up.shape == (2, 44100) and np.allclose(up[0], up[1])


def test_encode_round_trips_and_clips():
    x = np.stack([np.linspace(-2, 2, 8000, dtype=np.float32)])
    for fmt in ("flac", "wav"):
        y, sr = decode(encode(x, 8000, fmt))
        assert sr == 8000 and y.shape == x.shape
        assert y.max() <= 1.0 and y.min() >= -1.0
    assert to_pcm16(np.array([[0.5, -1.5, 1.5]], np.float32)).ravel().tolist() == [16384, -32768, 32767]


def test_encoding_is_deterministic():
    x = tone(1.0)[None, :]
    assert encode(x, SR, "flac") == encode(x.copy(), SR, "flac")

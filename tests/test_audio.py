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


@pytest.mark.parametrize("sr,channels,seconds,fmt,subtype", [(16000, 1, 3.01, "FLAC", "PCM_16"),
                                                            (44100, 2, 60.0, "WAV", "PCM_24"),
                                                            (22050, 6, 5.0, "WAV", "FLOAT"),
                                                            (48000, 1, 30.0, "OGG", "VORBIS")])
def test_the_chunked_probe_equals_a_whole_file_decode(sr, channels, seconds, fmt, subtype):
    import math

    x = (0.3 * np.random.default_rng(0).standard_normal((int(sr * seconds) + 7, channels))).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, x, sr, format=fmt, subtype=subtype)
    data = buf.getvalue()
    whole, _ = decode(data, "x")
    p = probe(data, "x")
    assert p.frames == whole.shape[1] and list(p.block_rms_db) == block_rms_db(whole, sr)
    assert p.peak_db == round(20 * math.log10(float(np.abs(whole).max())), 2)
    w = probe(data, "x", (1.0, 2.5, "seconds"))
    assert list(w.block_rms_db) == block_rms_db(whole[:, sr:int(2.5 * sr)], sr) and w.offset_frames == sr


@pytest.mark.parametrize("sr,target,channels,target_channels", [(44100, 16000, 2, 1), (16000, 16000, 1, 1),
                                                                (48000, 22050, 1, 2)])
def test_a_window_decoded_by_seeking_matches_the_whole_file_conversion(sr, target, channels, target_channels):
    from mixtape.rendering import cut, decode_window

    t = np.arange(sr * 20) / sr
    x = np.stack([0.3 * np.sin(2 * np.pi * (440 + 50 * c) * t) for c in range(channels)], axis=1)
    buf = io.BytesIO()
    sf.write(buf, x.astype(np.float32), sr, format="FLAC", subtype="PCM_16")
    data = buf.getvalue()
    whole = convert(decode(data)[0], sr, target, target_channels)
    for start_ms in (0, 1000, 7333, 18500):
        window = decode_window(data, "x", 0, 0, start_ms, 3000, target, target_channels)
        reference = cut(whole, target, start_ms, 3000)
        assert window.shape == reference.shape and np.abs(window - reference).max() < 1e-6


def test_quantising_float32_needs_no_float64_copy_and_gives_the_same_samples():
    rng = np.random.default_rng(3)
    edges = np.array([0.0, 1.0, -1.0, 1.5, -1.5, 0.5 / 32768, 1.5 / 32768, -0.5 / 32768, 32767.5 / 32768], np.float32)
    x = np.concatenate([edges, (rng.standard_normal(100_000) * 0.7).astype(np.float32)])[None, :]
    assert x.dtype == np.float32
    assert np.array_equal(to_pcm16(x), to_pcm16(x.astype(np.float64)))  # the float64 path, as before


@pytest.mark.parametrize("channels", [1, 2, 3, 6, 8])
def test_the_probe_channel_mean_is_numpys_bit_for_bit(channels):
    from mixtape.audio import _channel_mean64

    chunk = np.random.default_rng(channels).standard_normal((50_001, channels)).astype(np.float32)
    assert np.array_equal(_channel_mean64(chunk), chunk.T.mean(axis=0, dtype=np.float64))

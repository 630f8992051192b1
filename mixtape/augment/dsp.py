"""Audio transforms with explicit parameters: pure functions on float32 arrays shaped (channels, frames).

Nothing here draws randomness on its own: noise and synthetic reverbs take a ``seed`` parameter (drawn in
the plan phase from the sample's own generator), so a sample re-renders bit for bit anywhere.
"""

from __future__ import annotations

import math

import numpy as np
import python_stretch.Signalsmith as signalsmith
import soxr

F32 = np.float32


def _generator(seed: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(int(seed)))


def fit_length(audio: np.ndarray, n: int) -> np.ndarray:
    """Exactly ``n`` frames: cut, or pad with silence."""
    if audio.shape[1] >= n:
        return audio[:, :n]
    return np.pad(audio, ((0, 0), (0, n - audio.shape[1])))


def warp(audio: np.ndarray, sr: int, rate: float = 1.0, semitones: float = 0.0, cheaper: bool = False) -> np.ndarray:
    """Time stretch (``rate`` > 1 is faster: ``frames / rate`` out) and pitch shift in one pass.

    Signalsmith Stretch does both on one processor, so combining them costs one analysis/synthesis
    instead of the two (plus a resample) that chaining separate transforms takes. Latency is compensated:
    an onset at t comes out at t / rate. ``cheaper``: Signalsmith's cheaper preset (shorter blocks).
    """
    if rate == 1.0 and semitones == 0.0:
        return audio
    st = signalsmith.Stretch()
    st.preset(audio.shape[0], float(sr), cheaper)
    st.setTimeFactor(float(rate))
    st.setTransposeSemitones(float(semitones))
    out = np.asarray(st.process(np.require(audio, F32, ["C", "W"])))  # the binding refuses read-only arrays
    return out.reshape(audio.shape[0], -1) if out.ndim == 1 else out


def speed(audio: np.ndarray, sr: int, semitones: int) -> np.ndarray:
    """Speed perturbation (tape speed, Kaldi's and Lhotse's ``speed``): tempo and pitch change together by
    ``2 ** (semitones / 12)``, ``frames / factor`` out. One resample, far cheaper than a stretch, and with a
    whole number of semitones the key and chord labels stay exact."""
    if semitones == 0:
        return audio
    factor = 2.0 ** (semitones / 12.0)
    out = soxr.resample(np.ascontiguousarray(audio.T, dtype=F32), sr * factor, sr, quality="HQ")
    return np.ascontiguousarray(out.reshape(-1, audio.shape[0]).T)


def gain(audio: np.ndarray, db: float) -> np.ndarray:
    return audio * F32(10.0 ** (db / 20.0))


def rms(audio: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))


def mix(audio: np.ndarray, partner: np.ndarray, snr_db: float, offset_frames: int = 0) -> np.ndarray:
    """Add ``partner`` (starting ``offset_frames`` into the sample, looped to fill it) scaled so that the
    energy of the sample over the partner's is ``snr_db``. A silent partner leaves the sample as it is."""
    n = audio.shape[1]
    if partner.shape[0] != audio.shape[0]:
        partner = np.broadcast_to(partner.mean(axis=0, keepdims=True), (audio.shape[0], partner.shape[1]))
    bed = np.zeros_like(audio)
    if partner.shape[1] == 0 or offset_frames >= n:
        return audio
    reps = math.ceil((n - offset_frames) / partner.shape[1])
    bed[:, offset_frames:] = np.tile(partner, (1, reps))[:, : n - offset_frames]
    s, p = rms(audio), rms(bed)
    if p == 0.0 or s == 0.0:
        return audio
    scale = s / (p * 10.0 ** (snr_db / 20.0))
    return (audio + bed * F32(scale)).astype(F32)


#: Spectral slope of each noise colour, in dB per octave of power (white 0, pink -3, brown -6, …).
NOISE_SLOPES = {"white": 0.0, "pink": -3.0, "brown": -6.0, "blue": 3.0, "violet": 6.0}


def coloured_noise(shape: tuple[int, int], colour: str, seed: int) -> np.ndarray:
    """Gaussian noise shaped in the frequency domain to the colour's slope, unit RMS."""
    white = _generator(seed).standard_normal(shape)
    if colour == "white":
        out = white
    else:
        spec = np.fft.rfft(white, axis=1)
        f = np.arange(spec.shape[1], dtype=np.float64)
        f[0] = 1.0
        spec *= (f ** (NOISE_SLOPES[colour] / 20.0 / math.log10(2.0)))[None, :]
        spec[:, 0] = 0.0
        out = np.fft.irfft(spec, n=shape[1], axis=1)
    return (out / max(rms(out), 1e-12)).astype(F32)


def add_noise(audio: np.ndarray, snr_db: float, colour: str, seed: int) -> np.ndarray:
    noise = coloured_noise(audio.shape, colour, seed)
    s = rms(audio)
    if s == 0.0:
        return audio
    return (audio + noise * F32(s / 10.0 ** (snr_db / 20.0))).astype(F32)


def biquad(kind: str, sr: int, freq: float, q: float, gain_db: float = 0.0) -> np.ndarray:
    """Second-order sections of one RBJ-cookbook biquad (lowpass, highpass, bandpass, peaking)."""
    freq = min(freq, 0.45 * sr)
    w0 = 2 * math.pi * freq / sr
    alpha = math.sin(w0) / (2 * q)
    cos = math.cos(w0)
    if kind == "lowpass":
        b = [(1 - cos) / 2, 1 - cos, (1 - cos) / 2]
        a = [1 + alpha, -2 * cos, 1 - alpha]
    elif kind == "highpass":
        b = [(1 + cos) / 2, -(1 + cos), (1 + cos) / 2]
        a = [1 + alpha, -2 * cos, 1 - alpha]
    elif kind == "bandpass":
        b = [alpha, 0.0, -alpha]
        a = [1 + alpha, -2 * cos, 1 - alpha]
    elif kind == "peaking":
        amp = 10 ** (gain_db / 40)
        b = [1 + alpha * amp, -2 * cos, 1 - alpha * amp]
        a = [1 + alpha / amp, -2 * cos, 1 - alpha / amp]
    else:
        raise ValueError(f"unknown filter type {kind!r}")
    return np.array([[*(x / a[0] for x in b), 1.0, a[1] / a[0], a[2] / a[0]]])


def filter_(audio: np.ndarray, sr: int, kind: str, freq: float, q: float, gain_db: float = 0.0) -> np.ndarray:
    from scipy import signal  # imported when used: scipy.signal takes 0.6 s to import in every worker

    return signal.sosfilt(biquad(kind, sr, freq, q, gain_db), audio, axis=1).astype(F32)


def synthetic_ir(sr: int, rt60: float, seed: int) -> np.ndarray:
    """A diffuse-tail impulse response: noise decaying by 60 dB over ``rt60`` seconds, unit energy."""
    n = max(1, int(rt60 * sr))
    t = np.arange(n) / sr
    ir = _generator(seed).standard_normal(n) * np.exp(-6.9078 * t / rt60)
    ir[0] = 1.0
    return (ir / np.sqrt(np.sum(ir**2))).astype(F32)[None, :]


def reverb(audio: np.ndarray, ir: np.ndarray, wet: float) -> np.ndarray:
    """Convolve with an impulse response (mono IRs apply to every channel), keep the length, blend
    ``wet`` of the reverberant signal (scaled to the dry RMS) with ``1 - wet`` of the dry."""
    from scipy import signal

    ir = ir.mean(axis=0) if ir.shape[0] != audio.shape[0] else ir
    ir2 = np.broadcast_to(ir if ir.ndim == 2 else ir[None, :], (audio.shape[0], ir.shape[-1]))
    wet_sig = signal.fftconvolve(audio, ir2, axes=1)[:, : audio.shape[1]]
    d, w = rms(audio), rms(wet_sig)
    if w > 0:
        wet_sig = wet_sig * (d / w)
    return ((1 - wet) * audio + wet * wet_sig).astype(F32)


def clip(audio: np.ndarray, threshold: float, soft: bool = False) -> np.ndarray:
    """Hard clipping at ``threshold`` (full scale 1.0), or tanh soft clipping that reaches it smoothly."""
    if soft:
        return (threshold * np.tanh(audio / threshold)).astype(F32)
    return np.clip(audio, -threshold, threshold).astype(F32)


def compress(audio: np.ndarray, sr: int, threshold_db: float, ratio: float, attack_ms: float = 5.0,
             release_ms: float = 80.0) -> np.ndarray:
    """A feed-forward compressor: a peak envelope (one-pole attack/release), gain reduced above the
    threshold by ``ratio``, no make-up gain."""
    from scipy import signal

    level = np.abs(audio).max(axis=0).astype(np.float64)
    a_att = math.exp(-1.0 / (sr * attack_ms / 1000.0))
    a_rel = math.exp(-1.0 / (sr * release_ms / 1000.0))
    # attack-smoothed rise, release-smoothed fall: two one-pole filters, the envelope takes the larger
    rise = signal.lfilter([1 - a_att], [1, -a_att], level)
    fall = signal.lfilter([1 - a_rel], [1, -a_rel], level)
    env = np.maximum(np.maximum(rise, fall), 1e-9)
    env_db = 20 * np.log10(env)
    over = np.maximum(env_db - threshold_db, 0.0)
    gain_db = -over * (1 - 1 / ratio)
    return (audio * (10 ** (gain_db / 20)).astype(F32)[None, :]).astype(F32)

"""The non-learned baseline a trained model must beat: key from averaged chroma, tempo from onset autocorrelation.

Key: the clip's mean chroma is correlated with the 24 rotations of the Krumhansl-Kessler major and minor
profiles; the best-correlated key wins. Tempo: the onset-strength envelope's autocorrelation, weighted by a
log-normal prior around 120 bpm (one octave wide), peaks at the beat period; a parabola through the peak
refines it below one frame. The same statistics, concatenated, form a feature vector that ``mixtape
probe`` can compare with learned embeddings.
"""

from __future__ import annotations

from dataclasses import dataclass

import librosa
import numpy as np

#: Krumhansl & Kessler (1982) probe-tone profiles, tonic first.
KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
HOP = 128
BPM_RANGE = (30.0, 300.0)
BPM_GRID = np.geomspace(40.0, 240.0, 32)  # where the autocorrelation is sampled for the feature vector
PRIOR_BPM, PRIOR_OCTAVES = 120.0, 1.0


def chroma_mean(audio: np.ndarray, sr: int) -> np.ndarray:
    """Mean constant-Q chroma (12,), C first, over as many octaves above C1 as the sample rate allows."""
    octaves = int(max(1, min(7, np.floor(np.log2(0.45 * sr / librosa.note_to_hz("C1"))))))
    chroma = librosa.feature.chroma_cqt(y=audio.astype(np.float32), sr=sr, hop_length=512, bins_per_octave=36,
                                        n_octaves=octaves)
    return chroma.mean(axis=1)


def key_correlations(chroma: np.ndarray) -> np.ndarray:
    """Pearson correlation of a chroma vector with each of the 24 keys (majors C..B, then minors C..B)."""
    out = np.zeros(24)
    for mode, profile in enumerate((KK_MAJOR, KK_MINOR)):
        for tonic in range(12):
            out[mode * 12 + tonic] = np.corrcoef(chroma, np.roll(profile, tonic))[0, 1]
    return np.nan_to_num(out)


def onset_autocorrelation(audio: np.ndarray, sr: int) -> np.ndarray:
    """Normalised autocorrelation of the onset-strength envelope, lags 0..(longest beat period)."""
    env = librosa.onset.onset_strength(y=audio.astype(np.float32), sr=sr, hop_length=HOP)
    env = env - env.mean()
    max_lag = int(np.ceil(60.0 * sr / HOP / BPM_RANGE[0]))
    n = len(env)
    spec = np.fft.rfft(env, 2 * n)
    ac = np.fft.irfft(spec * np.conj(spec))[: n]
    ac = ac / max(ac[0], 1e-12)
    return np.pad(ac, (0, max(0, max_lag + 1 - len(ac))))[: max_lag + 1]


def tempo_from_autocorrelation(ac: np.ndarray, sr: int) -> float:
    fps = sr / HOP
    lags = np.arange(len(ac), dtype=float)
    with np.errstate(divide="ignore"):
        bpm = np.where(lags > 0, 60.0 * fps / np.maximum(lags, 1e-9), np.inf)
    valid = (bpm >= BPM_RANGE[0]) & (bpm <= BPM_RANGE[1])
    prior = np.exp(-0.5 * (np.log2(np.where(valid, bpm, PRIOR_BPM) / PRIOR_BPM) / PRIOR_OCTAVES) ** 2)
    weighted = np.where(valid, np.maximum(ac, 0) * prior, -np.inf)
    k = int(np.argmax(weighted))
    if not np.isfinite(weighted[k]) or weighted[k] <= 0:
        return PRIOR_BPM
    lag = float(k)
    if 0 < k < len(ac) - 1:  # parabolic interpolation of the autocorrelation peak
        a, b, c = ac[k - 1], ac[k], ac[k + 1]
        denom = a - 2 * b + c
        if denom < 0:
            lag = k + 0.5 * (a - c) / denom
    return float(60.0 * fps / lag)


def autocorrelation_features(ac: np.ndarray, sr: int) -> np.ndarray:
    """The autocorrelation sampled at fixed tempi (BPM_GRID), for a fixed-size feature vector."""
    lags = 60.0 * sr / HOP / BPM_GRID
    return np.interp(lags, np.arange(len(ac)), ac)


@dataclass
class ClipEstimate:
    clip_id: str
    key: int  # 24-key index
    tempo: float
    features: np.ndarray


def estimate_clip(clip_id: str, snippets: list[np.ndarray], sr: int) -> ClipEstimate:
    """Averages chroma and autocorrelation over a clip's snippets, then estimates key and tempo."""
    chroma = np.mean([chroma_mean(s, sr) for s in snippets], axis=0)
    ac = np.mean([onset_autocorrelation(s, sr) for s in snippets], axis=0)
    corr = key_correlations(chroma)
    features = np.concatenate([chroma / max(chroma.max(), 1e-9), corr, autocorrelation_features(ac, sr)])
    return ClipEstimate(clip_id, int(np.argmax(corr)), tempo_from_autocorrelation(ac, sr), features)

"""Front-ends computed in torch on the training device: the raw waveform, a log-compressed mel spectrogram, a
log-frequency (semitone-spaced) spectrogram, or chroma.

Log-mel at 64 bands cannot resolve semitones, which key and chord models need: the log-frequency front-end
maps a long-window STFT onto triangular filters centred on equal-tempered pitches (``bins_per_semitone``
per semitone over ``octaves`` octaves from ``f_min``, C2 by default), as Korzeniowski & Widmer's key CNN
reads; chroma folds those semitones into 12 pitch classes.

Computing the spectrogram inside the model (rather than storing it in shards) keeps one dataset usable by
every front-end setting and lets augmentation stay in the waveform domain.
"""

from __future__ import annotations

import librosa
import numpy as np
import torch
from torch import nn

from mixtape.train.config import COMPRESSIONS, KINDS, LOGFREQ_F_MIN, NORMS, FrontendConfig

__all__ = ["COMPRESSIONS", "KINDS", "LOGFREQ_F_MIN", "NORMS", "FrontendConfig", "LogFrequency", "LogMel", "Waveform",
           "logfreq_filterbank", "spectral_frontend"]

class Waveform(nn.Module):
    """(batch, samples) -> (batch, 1, samples), scaled."""

    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.scale = scale

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        x = wave.unsqueeze(1)
        return x * self.scale if self.scale != 1.0 else x


class LogMel(nn.Module):
    """(batch, samples) -> (batch, 1, n_mels, frames): mel power, compressed, optionally normalised."""

    mel_fb: torch.Tensor  # buffers, registered in __init__
    window: torch.Tensor

    def __init__(self, sample_rate: int, config: FrontendConfig | None = None):
        super().__init__()
        cfg = config or FrontendConfig()
        self.config = cfg
        f_max = min(cfg.f_max or sample_rate / 2, sample_rate / 2)
        fb = librosa.filters.mel(sr=sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.f_min, fmax=f_max)
        if cfg.norm == "a_weighting":
            centres = librosa.mel_frequencies(n_mels=cfg.n_mels + 2, fmin=cfg.f_min, fmax=f_max)[1:-1]
            weights = 10.0 ** (librosa.A_weighting(np.maximum(centres, 1.0)) / 10.0)
            fb = fb * weights[:, None]
        self.register_buffer("mel_fb", torch.from_numpy(fb.astype(np.float32)), persistent=False)
        self.register_buffer("window", torch.hann_window(cfg.n_fft), persistent=False)
        # per-band running statistics over all of training (momentum=None is a cumulative average)
        self.band_norm = (nn.BatchNorm1d(cfg.n_mels, affine=False, momentum=None)
                          if cfg.norm == "per_frequency" else None)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return filtered_spectrogram(wave, self.mel_fb, self.window, self.config, self.band_norm)

    def frames(self, samples: int) -> int:
        return samples // self.config.hop + 1


def filtered_spectrogram(wave: torch.Tensor, fb: torch.Tensor, window: torch.Tensor, cfg: FrontendConfig,
                         band_norm: nn.Module | None) -> torch.Tensor:
    """(batch, samples) -> (batch, 1, bands, frames): STFT power through a filterbank, compressed (log1p or
    clipped dB), optionally standardised per band, scaled: every spectral front-end's one recipe."""
    spec = torch.stft(wave, cfg.n_fft, cfg.hop, window=window, center=True, return_complex=True)
    x = torch.matmul(fb, spec.real.pow(2) + spec.imag.pow(2))
    if cfg.compression == "log1p":
        x = torch.log1p(cfg.log_c * x)
    else:
        x = 10.0 * torch.log10(x.clamp_min(1e-10))
        x = torch.maximum(x, x.amax(dim=(1, 2), keepdim=True) - cfg.top_db)
    if band_norm is not None:
        x = band_norm(x)
    if cfg.scale != 1.0:
        x = x * cfg.scale
    return x.unsqueeze(1)


def logfreq_filterbank(sample_rate: int, n_fft: int, f_min: float, octaves: int, per_semitone: int) -> np.ndarray:
    """(bins, n_fft // 2 + 1) triangular filters centred on equal-tempered pitches ``per_semitone`` to a
    semitone, each spanning its neighbours' centres and normalised to unit area; a filter narrower than
    one FFT bin takes the nearest bin whole, so every band hears something."""
    n = 12 * octaves * per_semitone
    centres = f_min * 2.0 ** (np.arange(-1, n + 1) / (12.0 * per_semitone))
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    fb = np.zeros((n, freqs.size), dtype=np.float64)
    for i in range(n):
        lo, mid, hi = centres[i], centres[i + 1], centres[i + 2]
        up = (freqs - lo) / (mid - lo)
        down = (hi - freqs) / (hi - mid)
        fb[i] = np.maximum(0.0, np.minimum(up, down))
        if fb[i].sum() == 0.0:
            fb[i, int(np.argmin(np.abs(freqs - mid)))] = 1.0
        fb[i] /= fb[i].sum()
    fb[:, freqs > sample_rate / 2] = 0.0
    return fb.astype(np.float32)


class LogFrequency(nn.Module):
    """(batch, samples) -> (batch, 1, bands, frames): semitone-spaced power (or, for ``chroma``, its 12 pitch
    classes summed over octaves), compressed like log-mel and optionally normalised per band."""

    fb: torch.Tensor  # buffers, registered in __init__
    window: torch.Tensor

    def __init__(self, sample_rate: int, config: FrontendConfig):
        super().__init__()
        if config.kind not in ("logfreq", "chroma"):
            raise ValueError(f"LogFrequency needs kind logfreq or chroma, not {config.kind!r}")
        if config.norm == "a_weighting":
            raise ValueError("the a_weighting norm is for logmel; use per_frequency or none with logfreq / chroma")
        self.config = config
        f_min = config.f_min or LOGFREQ_F_MIN
        top = f_min * 2.0 ** config.octaves
        if top > sample_rate / 2:
            raise ValueError(f"{config.octaves} octaves from {f_min:g} Hz reach {top:.0f} Hz, above the Nyquist "
                             f"frequency of {sample_rate} Hz audio: use fewer octaves")
        fb = logfreq_filterbank(sample_rate, config.n_fft, f_min, config.octaves, config.bins_per_semitone)
        if config.kind == "chroma":
            # pitch class of each band: band b is semitone b // per_semitone above f_min (C2: class 0 = C)
            offset = round(12 * float(np.log2(f_min / LOGFREQ_F_MIN))) % 12
            classes = (np.arange(fb.shape[0]) // config.bins_per_semitone + offset) % 12
            fold = np.zeros((12, fb.shape[0]), dtype=np.float32)
            fold[classes, np.arange(fb.shape[0])] = 1.0
            fb = fold @ fb
        self.register_buffer("fb", torch.from_numpy(fb.astype(np.float32)), persistent=False)
        self.register_buffer("window", torch.hann_window(config.n_fft), persistent=False)
        self.band_norm = (nn.BatchNorm1d(config.bands, affine=False, momentum=None)
                          if config.norm == "per_frequency" else None)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return filtered_spectrogram(wave, self.fb, self.window, self.config, self.band_norm)

    def frames(self, samples: int) -> int:
        return samples // self.config.hop + 1


def spectral_frontend(sample_rate: int, config: FrontendConfig) -> nn.Module:
    """The spectrogram front-end a config names."""
    return LogMel(sample_rate, config) if config.kind == "logmel" else LogFrequency(sample_rate, config)

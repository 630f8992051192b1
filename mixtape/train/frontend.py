"""Front-ends computed in torch on the training device: the raw waveform or a log-compressed mel spectrogram.

Computing the spectrogram inside the model (rather than storing it in shards) keeps one dataset usable by
every front-end setting and lets augmentation stay in the waveform domain.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import librosa
import numpy as np
import torch
from torch import nn

COMPRESSIONS = ("log1p", "db")
NORMS = ("none", "per_frequency", "a_weighting")


@dataclass(frozen=True)
class FrontendConfig:
    """Options for the log-mel front-end (ignored by waveform models except ``scale``).

    ``compression``: ``log1p`` is ``log(1 + C * mel)`` with ``C = log_c`` (no -inf, keeps quiet detail;
    the small-music-model literature found it learns better than dB), ``db`` is ``10 log10`` clipped to
    ``top_db`` below the maximum. ``norm``: ``per_frequency`` standardises each mel band with statistics
    accumulated over training (frozen at evaluation); ``a_weighting`` weights each band's power by the
    A-curve at its centre frequency (loudness as heard) before compression; ``none`` leaves it. ``scale``
    multiplies the front-end output.
    """

    n_fft: int = 512
    hop: int = 256
    n_mels: int = 64
    f_min: float = 0.0
    f_max: float | None = None
    compression: str = "log1p"
    log_c: float = 1000.0
    top_db: float = 80.0
    norm: str = "per_frequency"
    scale: float = 1.0

    def __post_init__(self) -> None:
        if self.compression not in COMPRESSIONS:
            raise ValueError(f"frontend compression must be one of {', '.join(COMPRESSIONS)}, not {self.compression!r}")
        if self.norm not in NORMS:
            raise ValueError(f"frontend norm must be one of {', '.join(NORMS)}, not {self.norm!r}")
        if self.n_fft < 16 or self.hop < 1 or self.n_mels < 4:
            raise ValueError("frontend needs n_fft >= 16, hop >= 1 and n_mels >= 4")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


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
        cfg = self.config
        spec = torch.stft(wave, cfg.n_fft, cfg.hop, window=self.window, center=True, return_complex=True)
        power = spec.real.pow(2) + spec.imag.pow(2)
        mel = torch.matmul(self.mel_fb, power)
        if cfg.compression == "log1p":
            x = torch.log1p(cfg.log_c * mel)
        else:
            x = 10.0 * torch.log10(mel.clamp_min(1e-10))
            x = torch.maximum(x, x.amax(dim=(1, 2), keepdim=True) - cfg.top_db)
        if self.band_norm is not None:
            x = self.band_norm(x)
        if cfg.scale != 1.0:
            x = x * cfg.scale
        return x.unsqueeze(1)

    def frames(self, samples: int) -> int:
        return samples // self.config.hop + 1

"""Front-ends computed in torch on the training device: log-mel spectrograms with magnitude compression."""

from __future__ import annotations

import librosa
import torch
from torch import nn


class LogMel(nn.Module):
    """Waveform (batch, samples) -> log-compressed mel spectrogram (batch, 1, n_mels, frames).

    Compression is ``log(1 + C * mel)`` (C = ``log_c``), which keeps quiet detail without the -inf of a
    plain log; the research on small music models found it beats dB scaling for learning.
    """

    def __init__(self, sample_rate: int, n_fft: int = 512, hop: int = 256, n_mels: int = 64,
                 f_min: float = 0.0, f_max: float | None = None, log_c: float = 1000.0):
        super().__init__()
        self.n_fft, self.hop, self.log_c = n_fft, hop, log_c
        fb = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=f_min,
                                 fmax=f_max or sample_rate / 2)
        self.register_buffer("mel_fb", torch.from_numpy(fb).float(), persistent=False)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(wave, self.n_fft, self.hop, window=self.window, center=True, return_complex=True)
        power = spec.real.pow(2) + spec.imag.pow(2)
        mel = torch.matmul(self.mel_fb, power)
        return torch.log1p(self.log_c * mel).unsqueeze(1)

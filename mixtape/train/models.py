"""Small models for scarce music data."""

from __future__ import annotations

import torch
from torch import nn

from mixtape.train.frontend import LogMel


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
                         nn.MaxPool2d(2))


class ShortChunkCNN(nn.Module):
    """Log-mel front-end, 3x3 conv blocks, global max+mean pooling over time and frequency, linear head.

    ``width`` scales the channels; width 16 (the default) is ~45k parameters, small enough for a few
    hundred labelled clips. Any input length works, so evaluation can use whole snippets.
    """

    def __init__(self, n_outputs: int, sample_rate: int, width: int = 16, n_mels: int = 64, dropout: float = 0.3):
        super().__init__()
        self.frontend = LogMel(sample_rate, n_mels=n_mels)
        self.input_norm = nn.BatchNorm2d(1)
        chans = [width, 2 * width, 2 * width, 4 * width]
        layers, c = [], 1
        for c_out in chans:
            layers.append(_block(c, c_out))
            c = c_out
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(2 * c, n_outputs)

    def embed(self, wave: torch.Tensor) -> torch.Tensor:
        """The pooled feature vector (batch, 2 x channels) that the head reads: reusable for transfer."""
        x = self.features(self.input_norm(self.frontend(wave))).flatten(2)
        return torch.cat([x.amax(dim=2), x.mean(dim=2)], dim=1)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.embed(wave)))


MODELS = {"shortchunk": ShortChunkCNN}


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)

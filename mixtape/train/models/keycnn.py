"""A small all-convolutional key model over a log-frequency spectrogram, after Korzeniowski & Widmer
("Genre-agnostic key classification with convolutional neural networks", ISMIR 2018): stacks of 5x5
convolutions with ELUs keep pitch relations local and shift-equivariant along the semitone axis (a key is
a pattern that moves with transposition), a dense layer per frame reads where on that axis the patterns
sit, and averaging over time makes the prediction a vote over the whole excerpt.
"""

from __future__ import annotations

import torch
from torch import nn

from mixtape.train.models.layers import Backbone


def _conv(c_in: int, c_out: int, k: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False), nn.BatchNorm2d(c_out), nn.ELU())


class KeyCNN(Backbone):
    """(batch, 1, bands, frames) -> (batch, embed_dim): five 5x5 conv layers of ``width`` channels (one
    frequency pooling after the second), then per frame a dense layer over all channels and bands (where
    in frequency a pattern sits is what tells the keys apart, so frequency is not pooled away), and the
    mean over time. Takes any number of frames; the band count is fixed at construction."""

    def __init__(self, bands: int, width: int = 8, embed_dim: int = 48, layers: int = 5):
        super().__init__()
        blocks: list[nn.Module] = []
        c = 1
        for i in range(layers):
            blocks.append(_conv(c, width, 5))
            c = width
            if i == 1:
                blocks.append(nn.MaxPool2d((2, 1)))
        self.features = nn.Sequential(*blocks)
        self.dense = nn.Sequential(nn.Linear(width * (bands // 2), embed_dim), nn.ELU())
        self.embed_dim = embed_dim

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        x = self.features(spec)  # (batch, width, bands // 2, frames)
        x = x.permute(0, 3, 1, 2).flatten(2)  # (batch, frames, width * bands // 2)
        return self.dense(x).mean(dim=1)

"""The short-chunk CNN baseline: 3x3 convolutions over a log-mel patch (Won et al.'s strongest simple model)."""

from __future__ import annotations

import torch
from torch import nn

from mixtape.train.models.layers import Backbone, max_mean_pool, stack


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
                         nn.MaxPool2d(2))


class ShortChunkCNN(Backbone):
    """(batch, 1, mels, frames) -> (batch, 2 x 4 x width): four 3x3 conv blocks, then global max + mean.

    Global pooling means any input length works, so evaluation can use whole windows of any size.
    """

    def __init__(self, width: int = 16, blocks: int = 4):
        super().__init__()
        self.features, c = stack(_block, 1, [width * 2 ** min(2, (i + 1) // 2) for i in range(blocks)])
        self.embed_dim = 2 * c

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        return max_mean_pool(self.features(spec).flatten(2))

"""The sample-level waveform CNN (Lee et al., 2017): learns its own front-end from raw samples.

Input is 3^(blocks+1) samples: a stride-3 "frame" convolution, then ``blocks`` stages of a 3-tap
convolution and max-pooling by 3, so each stage sees three times the context of the last and the input
collapses to one frame. Longer inputs work too (the final global pooling takes the rest).
"""

from __future__ import annotations

import torch
from torch import nn

from mixtape.train.models.layers import Backbone, max_mean_pool, stack


def _stage(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv1d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm1d(c_out), nn.ReLU(),
                         nn.MaxPool1d(3))


class SampleCNN(Backbone):
    """(batch, 1, samples) -> (batch, 2 x 4 x width)."""

    def __init__(self, width: int = 16, blocks: int = 8):
        super().__init__()
        if blocks < 2:
            raise ValueError("samplecnn needs at least 2 blocks")
        self.input_samples = 3 ** (blocks + 1)
        self.stem = nn.Sequential(nn.Conv1d(1, width, 3, stride=3, bias=False), nn.BatchNorm1d(width), nn.ReLU())
        self.stages, c = stack(_stage, width, [width * 2 ** min(2, 3 * i // blocks) for i in range(blocks)])
        self.embed_dim = 2 * c

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return max_mean_pool(self.stages(self.stem(wave)))

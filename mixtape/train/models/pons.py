"""A musically motivated spectrogram CNN after Pons et al. (2016-2018, the musicnn front-end).

Filter shapes encode musical priors instead of being learned from scarce data: *vertical* filters span a
fraction of the mel axis (90% and 40%) and few frames, so they respond to timbre (spectral envelopes) and
are pitch-invariant after max-pooling over frequency; *horizontal* filters are long in time and one band
tall, applied to the frequency-averaged energy, so they respond to rhythm and tempo. A small 1-D mid-end
with residual connections and global max + mean pooling follow.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from mixtape.train.models.layers import Backbone, max_mean_pool

TIMBRE_HEIGHTS = (0.9, 0.4)
TIMBRE_WIDTHS = (1, 3, 7)
TEMPORAL_LENGTHS = (16, 32, 64)  # frames: 0.25-1 s at a 16 ms hop


class PonsCNN(Backbone):
    """(batch, 1, mels, frames) -> (batch, hidden)."""

    def __init__(self, width: int, n_mels: int, mid: int | None = None, hidden: int | None = None):
        super().__init__()
        mid = mid or 4 * width
        hidden = hidden or 8 * width
        self.timbral = nn.ModuleList(
            nn.Conv2d(1, width, (max(1, int(h * n_mels)), w), padding=(0, w // 2))
            for h in TIMBRE_HEIGHTS for w in TIMBRE_WIDTHS)
        self.temporal = nn.ModuleList(nn.Conv1d(1, width, n, padding=n // 2) for n in TEMPORAL_LENGTHS)
        front = width * (len(self.timbral) + len(self.temporal))
        self.front_norm = nn.BatchNorm1d(front)
        self.mid1 = nn.Sequential(nn.Conv1d(front, mid, 7, padding=3), nn.BatchNorm1d(mid), nn.ReLU())
        self.mid2 = nn.Sequential(nn.Conv1d(mid, mid, 7, padding=3), nn.BatchNorm1d(mid), nn.ReLU())
        pooled = 2 * (front + 2 * mid)
        self.dense = nn.Sequential(nn.Linear(pooled, hidden), nn.BatchNorm1d(hidden), nn.ReLU())
        self.embed_dim = hidden

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        frames = spec.shape[-1]
        timbre = [conv(spec).amax(dim=2)[..., :frames] for conv in self.timbral]  # pool over frequency
        energy = spec.mean(dim=2)  # (batch, 1, frames)
        rhythm = [conv(energy)[..., :frames] for conv in self.temporal]
        front = F.relu(self.front_norm(torch.cat(timbre + rhythm, dim=1)))
        m1 = self.mid1(front)
        m2 = self.mid2(m1) + m1
        feats = torch.cat([front, m1, m2], dim=1)
        return self.dense(max_mean_pool(feats))

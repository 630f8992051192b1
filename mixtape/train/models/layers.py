"""Pieces the model families share."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class Backbone(nn.Module):
    """What every model family is to :class:`MusicModel`: features of ``embed_dim`` per example, so one head
    (and ``mixtape embed``) fits every family."""

    embed_dim: int


def stack(block: Callable[[int, int], nn.Module], c_in: int, channels: list[int]) -> tuple[nn.Sequential, int]:
    """``block(c_in, c_out)`` for each width in turn, each fed by the last; and the final width."""
    layers = []
    for c_out in channels:
        layers.append(block(c_in, c_out))
        c_in = c_out
    return nn.Sequential(*layers), c_in


def max_mean_pool(x: torch.Tensor) -> torch.Tensor:
    """(batch, channels, time) -> (batch, 2 x channels): global max then mean over time, so a model takes
    any input length and keeps both the strongest and the typical response."""
    return torch.cat([x.amax(dim=2), x.mean(dim=2)], dim=1)

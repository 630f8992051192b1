"""Small models for scarce music data: three families, each with a width option and a small preset.

Every model is ``front-end -> backbone -> (embedding) -> dropout -> linear head``; :meth:`MusicModel.embed`
returns the penultimate features that transfer reuses.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from mixtape.train.config import FAMILIES, PRESET_FRONTENDS, PRESETS  # noqa: F401 - their home is config
from mixtape.train.frontend import FrontendConfig, Waveform, spectral_frontend
from mixtape.train.models.keycnn import KeyCNN
from mixtape.train.models.layers import Backbone
from mixtape.train.models.pons import PonsCNN
from mixtape.train.models.samplecnn import SampleCNN
from mixtape.train.models.shortchunk import ShortChunkCNN


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild a model from a checkpoint (stored in it as plain data)."""

    preset: str
    n_outputs: int
    sample_rate: int
    width: int = 0  # 0 = the preset's width
    blocks: int = 8  # samplecnn stages: input is 3^(blocks+1) samples
    dropout: float = 0.3
    frontend: FrontendConfig = field(default_factory=FrontendConfig)

    @property
    def family(self) -> str:
        return PRESETS[self.preset][0]

    @property
    def resolved_width(self) -> int:
        return self.width or PRESETS[self.preset][1]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelSpec:
        return cls(**{**d, "frontend": FrontendConfig(**d.get("frontend", {}))})


class MusicModel(nn.Module):
    def __init__(self, frontend: nn.Module, backbone: Backbone, n_outputs: int, dropout: float):
        super().__init__()
        self.frontend = frontend
        self.backbone = backbone
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(backbone.embed_dim, n_outputs)

    def embed(self, wave: torch.Tensor) -> torch.Tensor:
        """Penultimate features (batch, embed_dim) for a batch of waveforms (batch, samples)."""
        return self.backbone(self.frontend(wave))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.embed(wave)))


def build_model(spec: ModelSpec) -> MusicModel:
    if spec.preset not in PRESETS:
        raise ValueError(f"unknown model {spec.preset!r}; choose one of {', '.join(PRESETS)}")
    width = spec.resolved_width
    if width < 1:
        raise ValueError("model width must be >= 1")
    if spec.family == "samplecnn":
        return MusicModel(Waveform(spec.frontend.scale), SampleCNN(width, spec.blocks), spec.n_outputs, spec.dropout)
    frontend = spectral_frontend(spec.sample_rate, spec.frontend)
    backbone: nn.Module
    if spec.family == "pons":
        backbone = PonsCNN(width, spec.frontend.bands)
    elif spec.family == "keycnn":
        backbone = KeyCNN(spec.frontend.bands, width)
    else:
        if spec.frontend.bands < 16:  # four 2x poolings: 12 chroma bands would pool away
            raise ValueError(f"{spec.preset} pools frequency four times and needs at least 16 bands; the "
                             f"{spec.frontend.kind} front-end has {spec.frontend.bands}: use pons or keycnn")
        backbone = ShortChunkCNN(width)
    return MusicModel(frontend, backbone, spec.n_outputs, spec.dropout)


def input_samples(spec: ModelSpec, crop_seconds: float) -> int:
    """The crop length a model trains on: 3^(blocks+1) for the sample-level CNN, else ``crop_seconds``."""
    if spec.family == "samplecnn":
        return 3 ** (spec.blocks + 1)
    return max(1, round(crop_seconds * spec.sample_rate))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def preset_frontend(preset: str, given: FrontendConfig) -> FrontendConfig:
    """``given``, unless it is the default log-mel and the preset has a front-end of its own."""
    return PRESET_FRONTENDS[preset] if preset in PRESET_FRONTENDS and given == FrontendConfig() else given

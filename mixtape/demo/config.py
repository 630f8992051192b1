"""The demo's settings: the one place their defaults are written (``run_demo`` and ``mixtape demo`` read
them), importable without Beam or torch so ``mixtape demo --help`` starts at once."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DemoConfig:
    out: str = "demo-output"
    #: pieces to render; 260 gives valid and test splits of 30+ pieces each
    clips: int = 260
    #: training steps
    steps: int = 150
    #: seed of the generated collection
    seed: int = 7
    #: Beam direct runner worker processes
    workers: int = 1


DEMO = DemoConfig()

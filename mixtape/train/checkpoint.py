"""Checkpoints: everything needed to resume a run exactly, or to rebuild its model for evaluation.

A checkpoint holds only tensors and plain data (numbers, strings, lists, dicts), so it is loaded with
torch's loader in ``weights_only`` mode: opening a checkpoint cannot execute code, even one from elsewhere.
It is written to a temporary name and renamed, so a run killed while saving keeps its previous checkpoint.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from mixtape.errors import MixtapeError

CHECKPOINT = "checkpoint.pt"
BEST = "best.pt"


class CheckpointError(MixtapeError, RuntimeError):
    pass


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    path = Path(path)
    tmp = path.with_name(f".tmp-{path.name}")
    torch.save(payload, tmp)
    os.replace(tmp, path)  # ok: our temporary checkpoint onto the run's own


def checkpoint_path(run: str | Path, name: str = CHECKPOINT) -> Path:
    """``run`` may be a run folder (its checkpoint.pt) or a checkpoint file."""
    p = Path(run)
    return p / name if p.is_dir() else p


def load_checkpoint(run: str | Path, name: str = CHECKPOINT) -> dict[str, Any]:
    path = checkpoint_path(run, name)
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}: pass a run folder written by `mixtape train` (--out)")
    try:
        # weights_only=True refuses anything but tensors and plain containers, so no code can run
        return torch.load(path, map_location="cpu", weights_only=True)  # ok: own checkpoint, weights only
    except Exception as e:
        raise CheckpointError(f"cannot read checkpoint {path}: {type(e).__name__}: {e}") from e

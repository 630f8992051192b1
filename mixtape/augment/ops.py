"""The registry of augmentation ops: each pairs an audio transform with the label transform it implies.

An op is a pure function ``(audio, sr, params) -> audio`` (audio is float32, shape (channels, frames)) and a
pure function ``(labels, params) -> labels``. Ops that would make a label wrong and cannot update it must
say so in their label function; gain changes no label.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

Params = Mapping[str, Any]
Labels = dict[str, Any]


@dataclass(frozen=True)
class Op:
    name: str
    #: the widest range each parameter may be drawn from (what the spec validator enforces)
    param_ranges: Mapping[str, tuple[float, float]]
    #: the range used when the spec names the op but not the parameter
    default_ranges: Mapping[str, tuple[float, float]]
    audio: Callable[[np.ndarray, int, Params], np.ndarray]
    labels: Callable[[Labels, Params], Labels]
    #: decimals kept when a parameter is drawn, so the plan, the index and the JSON all hold the same value
    decimals: int = 4


def gain(audio: np.ndarray, sr: int, params: Params) -> np.ndarray:
    """Scale by ``params['db']`` decibels."""
    factor = np.float32(10.0 ** (float(params["db"]) / 20.0))
    return audio * factor


def _labels_unchanged(labels: Labels, params: Params) -> Labels:
    return labels


OPS: dict[str, Op] = {
    "gain": Op(
        name="gain",
        param_ranges={"db": (-60.0, 24.0)},
        default_ranges={"db": (-6.0, 6.0)},
        audio=gain,
        labels=_labels_unchanged,
    ),
}


def apply_chain(audio: np.ndarray, sr: int, chain: list[dict[str, Any]]) -> np.ndarray:
    """Apply drawn ops in order; each entry is ``{"op": name, **params}`` as stored in the plan."""
    for step in chain:
        audio = OPS[step["op"]].audio(audio, sr, step)
    return audio


def apply_chain_labels(labels: Labels, chain: list[dict[str, Any]]) -> Labels:
    for step in chain:
        labels = OPS[step["op"]].labels(labels, step)
    return labels

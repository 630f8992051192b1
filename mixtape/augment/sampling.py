"""Draw the parameters of an augmentation chain from a sample's own generator."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mixtape.augment.ops import OPS

if TYPE_CHECKING:
    from mixtape.spec import OpSpec


def draw_chain(chain: tuple[OpSpec, ...], rng: np.random.Generator) -> list[dict[str, Any]]:
    """The ops that apply to one variant, with their parameters.

    Every op consumes the same number of draws whether it applies or not, so editing one op's probability
    does not change the parameters drawn for the ops after it.
    """
    drawn: list[dict[str, Any]] = []
    for spec in chain:
        op = OPS[spec.op]
        applies = bool(rng.random() < spec.p)
        params: dict[str, Any] = {"op": spec.op}
        for name, (lo, hi) in spec.ranges:
            params[name] = round(float(rng.uniform(lo, hi)), op.decimals)
        if applies:
            drawn.append(params)
    return drawn

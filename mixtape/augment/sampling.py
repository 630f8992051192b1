"""Draw the parameters of an augmentation chain from a sample's own generator."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mixtape.augment import audiomentations_ops
from mixtape.augment.audiomentations_ops import is_audiomentations
from mixtape.augment.ops import OPS, Choice, Range, Setting

if TYPE_CHECKING:
    from mixtape.spec import OpSpec


def draw_chain(chain: tuple[OpSpec, ...], rng: np.random.Generator) -> list[dict[str, Any]]:
    """The ops that apply to one variant, with every parameter drawn (rounded as recorded); an
    audiomentations transform gets the seed its parameters are drawn from when it is rendered.

    Every op consumes the same number of draws whether it applies or not, so editing one op's probability
    does not change the parameters drawn for the ops after it.
    """
    drawn: list[dict[str, Any]] = []
    for spec in chain:
        applies = bool(rng.random() < spec.p)
        if is_audiomentations(spec.op):
            step = audiomentations_ops.draw(spec.op, _init(spec), rng)
        else:
            step = _draw_params(spec, rng)
        if applies:
            drawn.append(step)
    return drawn


def _draw_params(spec: OpSpec, rng: np.random.Generator) -> dict[str, Any]:
    """One of mixtape's own ops with its parameters drawn from the spec's ranges and choices."""
    op = OPS[spec.op]
    params: dict[str, Any] = {"op": spec.op}
    settings = dict(spec.params)
    for name, value in spec.params:
        schema = op.params[name]
        if isinstance(schema, Range):
            lo, hi = value
            integer = schema.integer and not (name == "semitones" and settings.get("steps") == "continuous")
            if integer:
                params[name] = int(rng.integers(int(np.ceil(lo)), int(np.floor(hi)) + 1))
            else:
                params[name] = round(float(rng.uniform(lo, hi)), schema.decimals)
        elif isinstance(schema, Choice):
            params[name] = value[int(rng.integers(0, len(value)))]
        elif isinstance(schema, Setting):
            params[name] = value
    if op.seeded:
        params["seed"] = int(rng.integers(0, 2**32))
    if op.needs:  # which piece of material: resolved against the pool when the plan is made
        params["pick"] = round(float(rng.random()), 6)
    return params


def _init(spec: OpSpec) -> dict[str, Any]:
    """An audiomentations op's constructor arguments as the spec gave them (tuples back to lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in spec.params}

"""Pure-numpy augmentation: transforms with explicit parameters, parameter sampling and label transforms.

Nothing here touches Beam or torch, and nothing draws from a global RNG: parameters are drawn in the plan
phase from a key-seeded generator and then applied verbatim at render time.
"""

from mixtape.augment.ops import OPS, apply_chain, apply_chain_labels
from mixtape.augment.sampling import draw_chain

__all__ = ["OPS", "apply_chain", "apply_chain_labels", "draw_chain"]

"""Stable hashes and key-seeded generators.

Everything random or ordered in a build derives from these functions, never from Python's per-process
salted built-in hashing, global RNGs, wall-clock time or iteration order, so that a build is
byte-identical on any runner with any parallelism.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

#: Salt for shard-assignment digests. Changing it reshuffles every dataset: bump only with a format change.
SHARD_SALT = b"mixtape/shard/v1"
SPLIT_SALT = b"mixtape/split/v1"
SEED_SALT = b"mixtape/seed/v1"


def digest128(text: str, salt: bytes) -> str:
    """A salted 128-bit digest as 32 hex characters.

    Carried as hex, not int: Beam's int coder is 64-bit and hex strings sort like the numbers they encode.
    """
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16, salt=salt[:16].ljust(16, b"\0")).hexdigest()


def stable_words(text: str) -> list[int]:
    """Four 32-bit words of a salted digest, the entropy a key contributes to its generator."""
    h = digest128(text, SEED_SALT)
    return [int(h[i : i + 8], 16) for i in range(0, 32, 8)]


def rng_for(seed: int, key: str, stream: str = "") -> np.random.Generator:
    """The generator for one sample key (and optionally one named stream of it, e.g. 'augment')."""
    words = stable_words(f"{key}\x00{stream}" if stream else key)
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), *words])))


def unit_interval(hex_digest: str) -> float:
    """Map a hex digest to [0, 1) using its first 52 bits (exact in a float64)."""
    return int(hex_digest[:13], 16) / float(1 << 52)


def canonical_json(obj: Any) -> str:
    """The one JSON spelling of an object: sorted keys, no whitespace, UTF-8 kept."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

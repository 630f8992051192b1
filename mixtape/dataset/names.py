"""The file names of a dataset folder, spelled once, and the checks every name read back must pass.

A name read from a card, an index or a plan is untrusted: a card can say that a shard is called
``../../home/me/.bashrc``. Every reader and writer that turns such a name into a path goes through
:func:`check_shard_name` first, so a dataset can only ever name files inside its own folder.
"""

from __future__ import annotations

import re

from mixtape.errors import MixtapeError
from mixtape.untrusted import show

CARD_NAME = "dataset.json"
INDEX_NAME = "index.parquet"
REJECTS_NAME = "rejects.parquet"
PLAN_NAME = "plan.parquet"
CLIPS_NAME = "clips.parquet"
#: Machine-specific facts of one build (runner, wall time, source folders); the only file not in the lockfile.
BUILD_INFO = "build.json"
#: Every fixed file a build writes, besides its shards.
TABLE_NAMES = (INDEX_NAME, REJECTS_NAME, PLAN_NAME, CLIPS_NAME)
FIXED_NAMES = (CARD_NAME, *TABLE_NAMES, BUILD_INFO)

#: Where a build writes before its result replaces the previous dataset (hidden, inside the output folder).
STAGING_DIR = ".mixtape-staging"
#: Where render tasks leave each shard's index and plan rows for the manifest (inside the staging folder).
PARTS_DIR = ".parts"
#: The previous card while a build swaps its result into place: proof of which files were the dataset's.
PREVIOUS_CARD = "previous-dataset.json"
#: Held by the build writing a folder: pid and host of the holder.
LOCK_NAME = ".mixtape.lock"

SPLIT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
#: ``<split>-<index, at least 6 digits>.tar``
SHARD_NAME = re.compile(r"^([a-z][a-z0-9_]{0,31})-([0-9]{6,12})\.tar$")
#: ``<shard>.index.parquet`` / ``<shard>.plan.parquet`` in the parts folder
PART_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}-[0-9]{6,12}\.tar\.(index|plan)\.parquet$")
#: a running build's progress tallies in the parts folder (``.``-prefixed while being replaced)
PROGRESS_NAME = re.compile(r"^progress-(listed|probed|planned|shards|rendered)-[0-9a-f]{32}\.json$")
#: a local build's rendered samples on their way to their shards' writers (one file per render bundle)
SPILL_NAME = re.compile(r"^spill-[0-9a-f]{32}\.bin$")
#: ``storage.atomic_write``'s temporary names: ``.tmp-<32 hex>-<final name>``
TEMP_NAME = re.compile(r"^\.tmp-[0-9a-f]{32}-(.+)$")


class UnsafeName(MixtapeError, ValueError):
    """A name read from a dataset file that cannot be one of its files."""


def shard_name(split: str, index: int) -> str:
    return f"{split}-{index:06d}.tar"


def is_shard_name(name: str) -> bool:
    return isinstance(name, str) and SHARD_NAME.match(name) is not None


def check_shard_name(name: object, split: str | None = None) -> str:
    """``name`` if it is a shard name (of ``split``, when given), else :class:`UnsafeName`."""
    match = SHARD_NAME.match(name) if isinstance(name, str) else None
    if match is None or not isinstance(name, str):
        raise UnsafeName(f"{show(name)!s} is not a shard name (<split>-NNNNNN.tar)")
    if split is not None and match.group(1) != split:
        raise UnsafeName(f"shard {name} is listed under split {show(split)}")
    return name


def is_progress_file(name: str) -> bool:
    return PROGRESS_NAME.match(name[1:] if name.startswith(".") else name) is not None


def is_scratch_part(name: str) -> bool:
    """A file a build leaves in its parts folder: shard parts, progress tallies, spilled samples."""
    return PART_NAME.match(name) is not None or is_progress_file(name) or SPILL_NAME.match(name) is not None


def is_own_temp(name: str) -> bool:
    """A temporary file a mixtape write left behind (``.tmp-<uuid hex>-<one of our names>``)."""
    match = TEMP_NAME.match(name)
    return match is not None and (is_shard_name(match.group(1)) or match.group(1) in FIXED_NAMES
                                  or PART_NAME.match(match.group(1)) is not None)

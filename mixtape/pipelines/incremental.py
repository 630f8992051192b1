"""Incremental builds: which shards of the dataset already in the output folder a new build may keep."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mixtape import storage
from mixtape.dataset.index import read_index
from mixtape.dataset.names import INDEX_NAME
from mixtape.spec import DatasetSpec


def load_previous(out_dir: str, card: dict[str, Any] | None, log: Callable[[str], None],
                  spec: DatasetSpec | None = None) -> dict[str, Any]:
    """Shards of the dataset already in ``out_dir`` that an incremental build may keep: name -> card entry
    and index rows. Nothing is kept when the versions that can change output differ from the card's."""
    from mixtape.versions import package_versions

    if card is None:
        log("incremental: no previous dataset here; building everything")
        return {}
    now = package_versions(spec)
    if card.get("versions") != now:
        changed = sorted(k for k, v in now.items() if card.get("versions", {}).get(k) != v)
        log(f"incremental: versions changed since the previous build ({', '.join(changed)}); rendering everything")
        return {}
    index = read_index(storage.join(out_dir, INDEX_NAME))
    by_shard: dict[str, list[dict[str, Any]]] = {}
    for row in index:
        by_shard.setdefault(row["shard"], []).append(row)
    return {s["name"]: {"info": {**s, "split": split},
                        "index": sorted(by_shard.get(s["name"], []), key=lambda r: r["order"])}
            for split, info in card["splits"].items() for s in info["shards"] if s.get("plan_hash")}

"""``mixtape fsd50k unpack``: the FSD50K release as distributed (split zips) into the layout
``kind: fsd50k`` reads, without merging parts first and skipping macOS junk."""

from __future__ import annotations

from pathlib import Path

from mixtape.splitzip import extract


def unpack_release(dist: str | Path, out: str | Path) -> list[str]:
    """Extract every ``*.zip`` of the release folder (with its ``.zNN`` parts) into ``out``.

    The release's ``FSD50K.doc.zip`` has been seen holding the ground truth instead of the docs; whatever
    each archive holds lands at its own path, so the result is the same either way.
    """
    dist, out = Path(dist), Path(out)
    archives = sorted(dist.glob("*.zip"))
    if not archives:
        raise FileNotFoundError(f"{dist} holds no .zip archives of the FSD50K release")
    written: list[str] = []
    for archive in archives:
        written += extract(archive, out)
    return sorted(set(written))

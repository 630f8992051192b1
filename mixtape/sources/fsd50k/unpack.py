"""``mixtape fsd50k unpack``: the FSD50K release as distributed (split zips) into the layout
``kind: fsd50k`` reads, without merging parts first and skipping macOS junk."""

from __future__ import annotations

import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

from mixtape.errors import MixtapeError
from mixtape.sources.fsd50k.splitzip import extract, parts_of
from mixtape.untrusted import show


class UnpackError(MixtapeError, RuntimeError):
    """A release that cannot be unpacked; the message names the archive and the problem."""


def unpack_release(dist: str | Path, out: str | Path, skipped: list[str] | None = None,
                   log: Callable[[str], None] = lambda _m: None) -> list[str]:
    """Extract every ``*.zip`` of the release folder (with its ``.zNN`` parts) into ``out``.

    The release's ``FSD50K.doc.zip`` has been seen holding the ground truth instead of the docs; whatever
    each archive holds lands at its own path, so the result is the same either way. A damaged archive (bad
    CRC, a missing or truncated part) is one :class:`UnpackError` naming it; members extracted before it are
    complete files, and rerunning continues where it stopped.
    """
    dist, out = Path(dist), Path(out)
    archives = sorted(dist.glob("*.zip"))
    if not archives:
        raise UnpackError(f"{dist} holds no .zip archives of the FSD50K release")
    written: list[str] = []
    for i, archive in enumerate(archives, 1):
        parts = len(parts_of(archive))
        log(f"[{i}/{len(archives)}] extracting {archive.name}" + (f" ({parts} parts)" if parts > 1 else "") + " ...")
        try:
            done = extract(archive, out, skipped)
            written += done
            log(f"[{i}/{len(archives)}] {archive.name}: {len(done)} files")
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, struct.error) as e:
            if isinstance(e, FileExistsError):
                raise UnpackError(str(e)) from None
            raise UnpackError(f"{archive.name} is damaged or incomplete ({type(e).__name__}: {show(e)}); check that "
                              "every .zNN part is present and fully downloaded") from None
    return sorted(set(written))

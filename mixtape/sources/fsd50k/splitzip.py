"""Read split ("multi-part") zip archives such as the FSD50K release (``X.z01 … X.zNN`` + ``X.zip``)
without merging them first (``zip -s 0``).

The parts are presented as one virtual file; the standard ``zipfile`` module reads the central directory
from it, and each member's local-header offset, which a split archive records relative to the part (disk)
it starts on, is moved to its place in the concatenation. Zip64 archives, which ``zipfile`` refuses to read
across disks, are presented with their zip64 locator patched to a single disk.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import stat
import struct
import uuid
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from mixtape.dataset.shardformat import UnsafeMemberName, check_member_name
from mixtape.untrusted import show

SPLIT_SIGNATURE = b"PK\x07\x08"
ZIP64_LOCATOR = b"PK\x06\x07"


def parts_of(last_part: str | Path) -> list[Path]:
    """``X.z01, X.z02, …, X.zip`` for ``X.zip`` (just ``[X.zip]`` for an ordinary archive)."""
    last = Path(last_part)
    stem = last.with_suffix("")
    numbered = sorted((p for p in last.parent.glob(stem.name + ".z[0-9]*") if re.fullmatch(r"\.z\d+", p.suffix)),
                      key=lambda p: int(p.suffix[2:]))
    return [*numbered, last]


class ConcatenatedParts(io.RawIOBase):
    """Read-only, seekable view of several files end to end, with optional byte patches."""

    def __init__(self, paths: list[Path], patches: dict[int, bytes] | None = None):
        self.paths = paths
        self.sizes = [p.stat().st_size for p in paths]
        self.starts = [sum(self.sizes[:i]) for i in range(len(paths))]
        self.size = sum(self.sizes)
        self.patches = patches or {}
        self.pos = 0
        self._files = [open(p, "rb") for p in paths]

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = {0: offset, 1: self.pos + offset, 2: self.size + offset}[whence]
        return self.pos

    def readinto(self, buf: Any) -> int:
        n = min(len(buf), self.size - self.pos)
        if n <= 0:
            return 0
        out = bytearray()
        pos = self.pos
        while len(out) < n:
            i = max(j for j, s in enumerate(self.starts) if s <= pos)
            f = self._files[i]
            f.seek(pos - self.starts[i])
            chunk = f.read(min(n - len(out), self.sizes[i] - (pos - self.starts[i])))
            out += chunk
            pos += len(chunk)
        for at, data in self.patches.items():
            lo, hi = max(at, self.pos), min(at + len(data), self.pos + n)
            if lo < hi:
                out[lo - self.pos:hi - self.pos] = data[lo - at:hi - at]
        buf[:n] = out
        self.pos += n
        return n

    def close(self) -> None:
        for f in self._files:
            f.close()
        super().close()


def _zip64_patch(view: ConcatenatedParts) -> dict[int, bytes]:
    """Make the zip64 end-of-central-directory locator claim a single disk, as ``zipfile`` requires."""
    view.seek(max(0, view.size - 65536 - 22 - 20))
    tail = view.read()
    at = tail.rfind(ZIP64_LOCATOR)
    if at < 0:
        return {}
    absolute = view.size - len(tail) + at
    sig, _disk, reloff, _disks = struct.unpack("<4sIQI", tail[at:at + 20])
    return {absolute: struct.pack("<4sIQI", sig, 0, reloff, 1)}


def open_split_zip(last_part: str | Path) -> tuple[zipfile.ZipFile, ConcatenatedParts]:
    parts = parts_of(last_part)
    view = ConcatenatedParts(parts)
    view.patches = _zip64_patch(view)
    archive = zipfile.ZipFile(io.BufferedReader(view, buffer_size=1 << 20))
    if len(parts) > 1:
        # zipfile added one constant (its guess at prepended data) to every offset; undo it and place each
        # member on its own disk instead
        concat = archive.start_dir - _central_directory_offset(view)
        for info in archive.infolist():
            info.header_offset = view.starts[info.volume] + (info.header_offset - concat)
    return archive, view


def _central_directory_offset(view: ConcatenatedParts) -> int:
    """The central directory's offset as recorded (relative to the disk it starts on), from the zip64 end
    record when there is one (as zipfile itself reads it), else from the classic end record."""
    view.seek(max(0, view.size - 65536 - 22 - 20 - 56))
    tail = view.read()
    if tail.rfind(ZIP64_LOCATOR) >= 0:
        z64 = tail.rfind(b"PK\x06\x06")
        return struct.unpack("<Q", tail[z64 + 48:z64 + 56])[0]
    at = tail.rfind(b"PK\x05\x06")
    return struct.unpack("<I", tail[at + 16:at + 20])[0]


def is_symlink(info: zipfile.ZipInfo) -> bool:
    """A member stored as a Unix symlink (its data is the link target, not content)."""
    return stat.S_ISLNK(info.external_attr >> 16)


def iter_members(last_part: str | Path) -> Iterator[tuple[str, zipfile.ZipFile, zipfile.ZipInfo]]:
    """Regular members with safe names, macOS junk (``__MACOSX/``, ``._*``, ``.DS_Store``) skipped."""
    archive, view = open_split_zip(last_part)
    try:
        for info in archive.infolist():
            name = info.filename
            parts = PurePosixPath(name).parts
            if info.is_dir() or any(p == "__MACOSX" or p.startswith("._") or p == ".DS_Store" for p in parts):
                continue
            check_member_name(name.rstrip("/"))
            yield name, archive, info
    finally:
        archive.close()
        view.close()


def _same_file(path: Path, info: zipfile.ZipInfo) -> bool:
    if path.stat().st_size != info.file_size:
        return False
    crc = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            crc = zlib.crc32(chunk, crc)
    return crc == info.CRC


def extract(last_part: str | Path, out_dir: str | Path, skipped: list[str] | None = None) -> list[str]:
    """Extract every member under ``out_dir``; returns the names written (or already there, identical).

    Each member is written to a temporary name and renamed only after zipfile has checked its CRC, so a
    damaged archive never leaves a corrupt file under a real name. Symlink members are not extracted (their
    names go to ``skipped``); an existing file with other content is never overwritten."""
    written = []
    out = Path(out_dir)
    for name, archive, info in iter_members(last_part):
        target = out / name
        if os.path.commonpath([out.resolve(), target.resolve()]) != str(out.resolve()):
            raise UnsafeMemberName(f"unsafe member name {show(name)}")
        if is_symlink(info):
            if skipped is not None:
                skipped.append(f"{show(name)} (a symlink)")
            continue
        if target.exists():
            if target.is_file() and not target.is_symlink() and _same_file(target, info):
                written.append(name)  # a previous unpack wrote it: nothing to do
                continue
            raise FileExistsError(f"{target} exists with other content; mixtape does not overwrite files it did "
                                  "not write: unpack into an empty folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".tmp-{uuid.uuid4().hex}-{target.name}")
        try:
            with archive.open(info) as src, open(tmp, "xb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)  # the CRC is checked when the member's end is read
            os.replace(tmp, target)  # ok: our own temporary file, renamed onto a name nothing holds
        finally:
            if tmp.exists():
                tmp.unlink()  # ok: our own temporary file (the member failed its CRC or could not be read)
        written.append(name)
    return written

"""The sample layout inside a shard: the one contract between the build pipelines and the trainer.

A shard is a POSIX tar of consecutive members ``<key>.<audio ext>`` and ``<key>.json`` per sample, in hash
order, readable by stock ``webdataset`` and ``tar``. Members carry fixed metadata so the same samples
always make the same bytes. Readers accept only the member types they know and never unpickle.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from typing import IO, Any

from mixtape.hashing import canonical_json

AUDIO_EXTENSIONS = ("flac", "wav")
#: The only member suffixes a reader will ever load; anything else (.pyd, .pth, ...) is skipped unread.
SAFE_SUFFIXES = frozenset({*AUDIO_EXTENSIONS, "json"})
TAR_FORMAT = tarfile.PAX_FORMAT
MEMBER_MODE = 0o644


class UnsafeMemberName(ValueError):
    pass


def check_member_name(name: str) -> str:
    """Refuse names that could escape an extraction directory or confuse key grouping."""
    parts = name.split("/")
    if (not name or name.startswith("/") or "\\" in name or "\x00" in name
            or any(p in ("", ".", "..") for p in parts)):
        raise UnsafeMemberName(f"unsafe tar member name {name!r}")
    return name


def split_member_name(name: str) -> tuple[str, str]:
    """(key, suffix) as webdataset splits it: the suffix starts at the first dot of the last component."""
    head, _, last = name.rpartition("/")
    stem, dot, suffix = last.partition(".")
    if not dot:
        return name, ""
    return (f"{head}/{stem}" if head else stem), suffix


def sample_json_bytes(doc: dict[str, Any]) -> bytes:
    return canonical_json(doc).encode("utf-8")


class HashingWriter(io.RawIOBase):
    """A write-through stream that counts bytes and computes sha256 as a shard is written."""

    def __init__(self, sink: IO[bytes]):
        self._sink = sink
        self._sha = hashlib.sha256()
        self.bytes_written = 0

    def writable(self) -> bool:
        return True

    def write(self, b: bytes) -> int:  # type: ignore[override]
        mv = memoryview(b)
        self._sha.update(mv)
        self._sink.write(mv)
        self.bytes_written += len(mv)
        return len(mv)

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()


def _ustar_template() -> tuple[bytes, bytes, int]:
    """The fixed parts of a member header (mode 644, uid/gid 0, mtime 0, no owner names, ustar magic) around
    its name and size fields, and their byte sum with the checksum field blank."""
    middle = b"".join((b"0000644\0", b"0000000\0", b"0000000\0"))  # mode, uid, gid
    tail = b"".join((b"00000000000\0", b" " * 8, tarfile.REGTYPE, b"\0" * 100, tarfile.POSIX_MAGIC,
                     b"\0" * 32, b"\0" * 32, b"\0" * 8, b"\0" * 8, b"\0" * 155, b"\0" * 12))  # mtime ... pad
    return middle, tail, sum(middle) + sum(tail)


_MIDDLE, _TAIL, _FIXED_SUM = _ustar_template()
_NUL_BLOCK = b"\0" * tarfile.BLOCKSIZE


def member_header(name: str, size: int) -> bytes:
    """The tar header ``tarfile`` writes for a member with mixtape's fixed metadata, built directly for the
    usual short ASCII name (a fifth of the cost), through ``tarfile`` for anything needing a pax header."""
    if len(name) <= 100 and name.isascii() and size < 8 ** 11:
        raw_name = name.encode("ascii")
        size_field = b"%011o\0" % size
        chksum = _FIXED_SUM + sum(raw_name) + sum(size_field)
        tail = _TAIL[:12] + b"%06o\0 " % chksum + _TAIL[20:]
        return b"".join((raw_name, b"\0" * (100 - len(raw_name)), _MIDDLE, size_field, tail))
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.mode = MEMBER_MODE
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info.tobuf(TAR_FORMAT, "utf-8", "surrogateescape")


class ShardWriter:
    """Streams members into a tar with fixed metadata (mtime 0, uid/gid 0, empty owner names, mode 644):
    byte for byte what ``tarfile`` writes in stream mode, one write per member."""

    def __init__(self, fileobj: IO[bytes]):
        self._out = fileobj
        self._offset = 0
        self.closed = False

    def add(self, name: str, data: bytes) -> None:
        if self.closed:
            raise ValueError("the shard is closed")
        header = member_header(check_member_name(name), len(data))
        pad = -len(data) % tarfile.BLOCKSIZE
        self._out.write(b"".join((header, data, _NUL_BLOCK[:pad])))
        self._offset += len(header) + len(data) + pad

    def add_sample(self, key: str, audio_ext: str, audio: bytes, doc: dict[str, Any]) -> None:
        self.add(f"{key}.{audio_ext}", audio)
        self.add(f"{key}.json", sample_json_bytes(doc))

    def close(self) -> None:
        """The two zero blocks that end a tar, then zeros up to a whole 10240-byte record, as ``tar`` does."""
        if self.closed:
            return
        self.closed = True
        end = 2 * tarfile.BLOCKSIZE
        end += -(self._offset + end) % tarfile.RECORDSIZE
        self._out.write(b"\0" * end)

    def abandon(self) -> None:
        """Forget a shard whose write failed: nothing more is written (the file is discarded anyway)."""
        self.closed = True


def iter_members(stream: IO[bytes], on_skip: Any = None) -> Iterator[tuple[str, str, bytes]]:
    """Yield (key, suffix, bytes) for the safe members of a tar stream, in order, without extracting.

    Members with unknown suffixes are skipped without reading them; unsafe names raise.
    """
    with tarfile.open(fileobj=stream, mode="r|*") as tar:
        for info in tar:
            if not info.isreg():
                continue
            check_member_name(info.name)
            key, suffix = split_member_name(info.name)
            if suffix.lower() not in SAFE_SUFFIXES:
                if on_skip is not None:
                    on_skip(info.name)
                continue
            f = tar.extractfile(info)
            yield key, suffix.lower(), f.read() if f is not None else b""


def iter_samples(stream: IO[bytes], on_skip: Any = None) -> Iterator[dict[str, Any]]:
    """Group consecutive members by key into samples: {"__key__", "<audio ext>": bytes, "json": dict}."""
    current: dict[str, Any] | None = None
    for key, suffix, data in iter_members(stream, on_skip):
        if current is None or current["__key__"] != key:
            if current is not None:
                yield current
            current = {"__key__": key}
        current[suffix] = json.loads(data.decode("utf-8")) if suffix == "json" else data
    if current is not None:
        yield current

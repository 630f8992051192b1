"""The sample layout inside a shard: the one contract between the build pipelines and the trainer.

A shard is a POSIX tar of consecutive members ``<key>.<audio ext>`` and ``<key>.json`` per sample, in hash
order, readable by stock ``webdataset`` and ``tar``. Members carry fixed metadata so the same samples
always make the same bytes. Readers accept only the member types they know and never unpickle.
"""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, Final

from mixtape.hashing import canonical_json
from mixtape.untrusted import UntrustedInputError, load_json, show

AUDIO_EXTENSIONS = ("flac", "wav")
#: The only member suffixes a reader will ever load; anything else (.pyd, .pth, ...) is skipped unread.
SAFE_SUFFIXES = frozenset({*AUDIO_EXTENSIONS, "json"})
TAR_FORMAT: Final = tarfile.PAX_FORMAT
MEMBER_MODE = 0o644


class UnsafeMemberName(ValueError):
    pass


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def check_member_name(name: str) -> str:
    """Refuse names that could escape an extraction directory, confuse key grouping or forge a line of
    output when printed: empty, absolute, ``.`` / ``..`` / empty components, backslashes, control characters."""
    parts = name.split("/")
    if (not name or name.startswith("/") or "\\" in name or _CONTROL.search(name)
            or any(p in ("", ".", "..") for p in parts)):
        raise UnsafeMemberName(f"unsafe tar member name {show(name)}")
    return name


def unsafe_key_problem(clip_id: str) -> str | None:
    """Why a clip id cannot start sample keys (its members would be refused by every reader), or None."""
    try:
        check_member_name(f"{clip_id}/0/0.json")
    except UnsafeMemberName:
        return (f"{show(clip_id)} cannot name shard members (tar member names may not hold backslashes, control "
                "characters or empty, '.' or '..' path parts); rename the file")
    return None


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

    def __init__(self, fileobj: IO[bytes] | io.RawIOBase):
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


#: The largest member a reader loads when it is not told better (a dataset's card sets the bound: no member
#: is larger than the largest shard it lists).
MAX_MEMBER_BYTES = 1 << 30
#: Member types a reader loads: plain files. Sparse files, links, devices, FIFOs are skipped and counted.
_PLAIN = (tarfile.REGTYPE, tarfile.AREGTYPE)


def _skip_reason(info: tarfile.TarInfo, max_bytes: int) -> str | None:
    if info.type not in _PLAIN or info.issparse():
        kind = {tarfile.SYMTYPE: "a symlink", tarfile.LNKTYPE: "a hard link", tarfile.CHRTYPE: "a device",
                tarfile.BLKTYPE: "a device", tarfile.FIFOTYPE: "a FIFO", tarfile.DIRTYPE: "a folder"}.get(
            info.type, "a sparse file" if info.issparse() else f"of type {info.type!r}")
        return None if info.type == tarfile.DIRTYPE else f"{kind}, not a plain file"
    try:
        check_member_name(info.name)
    except UnsafeMemberName:
        return "an unsafe name"
    if info.size > max_bytes:
        return f"{info.size} bytes, over the {max_bytes}-byte limit"
    if split_member_name(info.name)[1].lower() not in SAFE_SUFFIXES:
        return "a member type mixtape never loads"
    return None


#: Magic numbers of the compressions a shard must never arrive in (gzip, bzip2, xz, zstd, lz4).
_COMPRESSED_MAGIC: Final = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd", b"\x04\x22\x4d\x18")
_USTAR_MAGIC_AT: Final = 257


class _Prefixed(io.RawIOBase):
    """A read-only stream that gives back bytes already peeked before the rest of the underlying stream."""

    def __init__(self, head: bytes, rest: IO[bytes]):
        self._head, self._rest = head, rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n], self._head = self._head[:n], self._head[n:]
            return n
        data = self._rest.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


def _checked_tar_stream(stream: IO[bytes]) -> IO[bytes]:
    """Refuse a compressed or non-POSIX stream from its first bytes, before tarfile parses anything.

    tarfile's own check is its header checksum, and compressed bytes pass it by chance (about one gzip header
    in a few hundred, depending on the timestamp it carries); a shard is uncompressed ustar / pax, so its first
    header must say ``ustar`` where POSIX puts it. An empty stream is left to tarfile, which calls it empty.
    """
    seekable = stream.seekable() if hasattr(stream, "seekable") else False
    start = stream.tell() if seekable else 0
    head = b""
    while len(head) < tarfile.BLOCKSIZE:
        chunk = stream.read(tarfile.BLOCKSIZE - len(head))
        if not chunk:
            break
        head += chunk
    if head.startswith(_COMPRESSED_MAGIC):
        raise tarfile.ReadError("the shard is compressed; mixtape reads only uncompressed tar shards, "
                                "so a few kilobytes can never expand to gigabytes")
    if head and head[_USTAR_MAGIC_AT:_USTAR_MAGIC_AT + 5] != b"ustar":
        raise tarfile.ReadError("not a POSIX (ustar / pax) tar: its first header has no 'ustar' magic")
    if seekable:  # back to the start: no wrapper between tarfile and a file (it cost 15% of a stream's CPU)
        stream.seek(start)
        return stream
    return io.BufferedReader(_Prefixed(head, stream), buffer_size=1 << 16)


def iter_members(stream: IO[bytes], on_skip: Any = None, max_member_bytes: int = MAX_MEMBER_BYTES
                 ) -> Iterator[tuple[str, str, bytes]]:
    """Yield (key, suffix, bytes) for the safe members of a tar stream, in order, without extracting.

    Only uncompressed (ustar / pax) tars are read: a compressed stream is refused at its first header, so a
    few kilobytes can never expand to gigabytes. A member that is not a plain file, has an unsafe name, is
    larger than ``max_member_bytes`` or has a suffix mixtape does not load is skipped unread; ``on_skip``
    hears ``(escaped name, reason)`` for each, and the members after it are still read.
    """
    with tarfile.open(fileobj=_checked_tar_stream(stream), mode="r|") as tar:
        for info in tar:
            reason = _skip_reason(info, max_member_bytes)
            if reason is not None:
                if on_skip is not None:
                    on_skip(show(info.name), reason)
                continue
            if info.type == tarfile.DIRTYPE:
                continue
            key, suffix = split_member_name(info.name)
            f = tar.extractfile(info)
            yield key, suffix.lower(), f.read() if f is not None else b""


@dataclass
class RawSample:
    """One sample's members, as bytes, undecoded: what every reader groups a shard into."""

    key: str
    members: dict[str, bytes] = field(default_factory=dict)  # suffix -> bytes

    @property
    def audio(self) -> bytes | None:
        return next((self.members[s] for s in AUDIO_EXTENSIONS if s in self.members), None)

    @property
    def doc(self) -> bytes | None:
        return self.members.get("json")

    @property
    def complete(self) -> bool:
        return self.audio is not None and self.doc is not None


def iter_raw_samples(stream: IO[bytes], on_skip: Any = None, max_member_bytes: int = MAX_MEMBER_BYTES,
                     keep: Callable[[str], bool] | None = None) -> Iterator[RawSample]:
    """Consecutive members grouped by key into samples (members of keys ``keep`` refuses are passed over
    without being held). A shard that breaks off still gives the samples before the break, and the one it
    broke in if that one already has its audio and its JSON; then the error is raised."""
    current: RawSample | None = None
    try:
        for key, suffix, data in iter_members(stream, on_skip, max_member_bytes):
            if keep is not None and not keep(key):
                continue
            if current is not None and current.key != key:
                yield current
                current = None
            if current is None:
                current = RawSample(key)
            current.members.setdefault(suffix, data)
    except Exception:
        if current is not None and current.complete:
            yield current
        raise
    if current is not None:
        yield current


def iter_samples(stream: IO[bytes], on_skip: Any = None, max_member_bytes: int = MAX_MEMBER_BYTES
                 ) -> Iterator[dict[str, Any]]:
    """Samples as webdataset spells them: {"__key__", "<audio ext>": bytes, "json": dict}; a JSON member
    that does not parse is kept as its bytes under ``"json_bytes"`` for the caller to judge."""
    for raw in iter_raw_samples(stream, on_skip, max_member_bytes):
        sample: dict[str, Any] = {"__key__": raw.key}
        for suffix, data in raw.members.items():
            if suffix != "json":
                sample[suffix] = data
                continue
            try:
                sample["json"] = load_json(data, f"{show(raw.key)}.json")
            except UntrustedInputError:
                sample["json_bytes"] = data
        yield sample

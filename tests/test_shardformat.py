import io
import pickle
import tarfile

import pytest

from mixtape.dataset.shardformat import (
    HashingWriter,
    ShardWriter,
    UnsafeMemberName,
    check_member_name,
    iter_members,
    iter_raw_samples,
    iter_samples,
    split_member_name,
)


def write(samples) -> bytes:
    buf = io.BytesIO()
    sink = HashingWriter(buf)
    w = ShardWriter(sink)
    for key, audio, doc in samples:
        w.add_sample(key, "flac", audio, doc)
    w.close()
    assert sink.bytes_written == len(buf.getvalue())
    return buf.getvalue()


def test_members_have_fixed_metadata_and_bytes_repeat():
    data = write([("freesound:1/0/0", b"abc", {"k": 1})])
    assert data == write([("freesound:1/0/0", b"abc", {"k": 1})])
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for m in tar.getmembers():
            assert (m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode) == (0, 0, 0, "", "", 0o644)
        assert tar.getnames() == ["freesound:1/0/0.flac", "freesound:1/0/0.json"]


def _tarfile_bytes(members) -> bytes:
    """What the standard library writes for the same members and metadata, in stream mode."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode, info.uid, info.gid = len(data), 0, 0o644, 0, 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize("names", [
    ["freesound:400000/3000/1.flac", "freesound:400000/3000/1.json"],
    ["n" * 95 + ".flac", "m" * 96 + ".flac"],                    # exactly 100 characters, then 101 (pax path)
    ["folder:caf\u00e9 d\u00e9j\u00e0/0/0.flac", "folder:\u266b/0/0.json"],  # non-ASCII: pax path
    ["folder:" + "deep/" * 40 + "x/0/0.wav"],
])
@pytest.mark.parametrize("sizes", [[0, 1], [511, 512], [513, 10240], [7777, 20000]])
def test_the_direct_tar_writer_writes_what_tarfile_writes(names, sizes):
    members = [(name, bytes((i * 7 + j) % 256 for j in range(size)))
               for i, (name, size) in enumerate(zip(names * 2, sizes * 2, strict=False))]
    buf = io.BytesIO()
    w = ShardWriter(buf)
    for name, data in members:
        w.add(name, data)
    w.close()
    assert buf.getvalue() == _tarfile_bytes(members)
    assert len(buf.getvalue()) % tarfile.RECORDSIZE == 0


def test_keys_split_like_webdataset():
    assert split_member_name("folder:a.b/c d/1000/2.flac") == ("folder:a.b/c d/1000/2", "flac")
    assert split_member_name("x/1.logmel.npy") == ("x/1", "logmel.npy")


@pytest.mark.parametrize("name", ["../x.flac", "/etc/passwd", "a/../../b.json", "a//b.flac", "a\\b.json", ""])
def test_unsafe_names_are_refused_when_writing(name):
    with pytest.raises(UnsafeMemberName):
        check_member_name(name)
    with pytest.raises(UnsafeMemberName):
        ShardWriter(io.BytesIO()).add(name, b"x")


def test_reader_never_loads_pickles_and_rejects_traversal():
    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('unpickled!')",))

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, payload in [("k/0/0.flac", b"audio"), ("k/0/0.pyd", pickle.dumps(Boom())),
                              ("k/0/0.pth", pickle.dumps(Boom())), ("k/0/0.json", b'{"a": 1}')]:
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    skipped = []
    samples = list(iter_samples(io.BytesIO(buf.getvalue()), on_skip=lambda name, why: skipped.append(name)))
    assert samples == [{"__key__": "k/0/0", "flac": b"audio", "json": {"a": 1}}]
    assert skipped == ["k/0/0.pyd", "k/0/0.pth"]


def _tar(members: list[tarfile.TarInfo | tuple[str, bytes]], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for m in members:
            if isinstance(m, tarfile.TarInfo):
                tar.addfile(m)
            else:
                info = tarfile.TarInfo(m[0])
                info.size = len(m[1])
                tar.addfile(info, io.BytesIO(m[1]))
    return buf.getvalue()


def test_a_traversal_member_is_skipped_and_the_samples_around_it_are_kept():
    data = _tar([("a/0/0.flac", b"A"), ("a/0/0.json", b"{}"), ("../../escape.json", b"{}"),
                 ("/etc/passwd.json", b"{}"), ("b\\x/0/0.json", b"{}"), ("b/0/0.flac", b"B"), ("b/0/0.json", b"{}")])
    skipped = []
    samples = list(iter_samples(io.BytesIO(data), on_skip=lambda name, why: skipped.append((name, why))))
    assert [s["__key__"] for s in samples] == ["a/0/0", "b/0/0"]
    assert [why for _, why in skipped] == ["an unsafe name"] * 3


def test_links_devices_fifos_and_sparse_members_are_skipped_with_a_count():
    kinds = []
    for name, kind in (("l/0/0.flac", tarfile.SYMTYPE), ("h/0/0.flac", tarfile.LNKTYPE),
                       ("c/0/0.flac", tarfile.CHRTYPE), ("f/0/0.flac", tarfile.FIFOTYPE)):
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = "/dev/zero" if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE) else ""
        kinds.append(info)
    data = _tar([*kinds, ("ok/0/0.flac", b"fine")], tarfile.GNU_FORMAT)
    skipped = []
    members = list(iter_members(io.BytesIO(data), lambda name, why: skipped.append(why)))
    assert [m[0] for m in members] == ["ok/0/0"]
    assert skipped == ["a symlink, not a plain file", "a hard link, not a plain file", "a device, not a plain file",
                       "a FIFO, not a plain file"]
    # a GNU sparse member: a few bytes on disk that claim a huge file
    sparse = bytearray(_tar([("s/0/0.flac", b"x" * 512)], tarfile.GNU_FORMAT))
    sparse[156:157] = tarfile.GNUTYPE_SPARSE
    chksum = sum(sparse[:148]) + 8 * 32 + sum(sparse[156:512])
    sparse[148:156] = b"%06o\0 " % chksum
    skipped.clear()
    assert list(iter_members(io.BytesIO(bytes(sparse)), lambda name, why: skipped.append(why))) == []
    assert skipped == ["a sparse file, not a plain file"]


class _OneWay(io.RawIOBase):
    """Bytes that can only be read forwards, as from a socket."""

    def __init__(self, data: bytes):
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        chunk = self._data.read(min(len(buffer), 700))  # short reads, as a socket gives
        buffer[:len(chunk)] = chunk
        return len(chunk)


def test_a_compressed_tar_is_refused_before_it_expands():
    import bz2
    import gzip
    import lzma

    tar = _tar([("z/0/0.flac", b"\0" * (50 << 20))])
    # 1796429707 is a gzip timestamp whose header happens to pass tarfile's own checksum (CI met one)
    for mtime in (0, 1796429707):
        bomb = gzip.compress(tar, compresslevel=9, mtime=mtime)
        assert len(bomb) < 100_000  # 50 MB of zeros in a few kilobytes
        with pytest.raises(tarfile.ReadError, match="compressed"):
            list(iter_members(io.BytesIO(bomb)))
    for packed in (bz2.compress(tar), lzma.compress(tar)):
        with pytest.raises(tarfile.ReadError, match="compressed"):
            list(iter_members(io.BytesIO(packed)))
    # a stream that cannot seek (an HTTP body) is checked the same way, and a good shard still reads whole
    unseekable = io.BufferedReader(_OneWay(gzip.compress(tar, mtime=0)))
    with pytest.raises(tarfile.ReadError, match="compressed"):
        list(iter_members(unseekable))
    good = _tar([("a/0/0.flac", b"A" * 3000), ("a/0/0.json", b"{}")])
    assert [m[0] for m in iter_members(io.BufferedReader(_OneWay(good)))] == ["a/0/0", "a/0/0"]
    # an old v7 tar (no ustar magic) is not a shard either
    with pytest.raises(tarfile.ReadError, match="ustar"):
        list(iter_members(io.BytesIO(_tar([("a/0/0.flac", b"A")], tarfile.USTAR_FORMAT)[:257] + b"\0" * 6
                                     + _tar([("a/0/0.flac", b"A")], tarfile.USTAR_FORMAT)[263:])))


def test_a_member_over_the_size_limit_is_skipped_unread():
    data = _tar([("big/0/0.flac", b"x" * 5000), ("small/0/0.flac", b"y")])
    skipped = []
    got = list(iter_members(io.BytesIO(data), lambda name, why: skipped.append(why), max_member_bytes=4096))
    assert [m[0] for m in got] == ["small/0/0"] and skipped == ["5000 bytes, over the 4096-byte limit"]


def test_names_with_control_characters_are_refused_and_escaped_when_shown():
    forged = "x\nOK: 1 shards, 0 problems\n/0/0.json"
    with pytest.raises(UnsafeMemberName) as e:
        check_member_name(forged)
    assert "\n" not in str(e.value) and "\\n" in str(e.value)


def test_raw_samples_group_members_keep_what_is_asked_and_survive_a_break():
    """The one grouping every reader (trainer, report, webdataset-style dicts) builds on."""
    data = write([(f"c:{i}/0/0", bytes([i]) * 600, {"i": i}) for i in range(4)])
    raw = list(iter_raw_samples(io.BytesIO(data)))
    assert [(r.key, r.audio, r.complete) for r in raw] == [(f"c:{i}/0/0", bytes([i]) * 600, True) for i in range(4)]
    assert [r.key for r in iter_raw_samples(io.BytesIO(data), keep=lambda k: k.startswith(("c:1/", "c:3/")))] \
        == ["c:1/0/0", "c:3/0/0"]
    assert [s["json"] for s in iter_samples(io.BytesIO(data))] == [{"i": i} for i in range(4)]
    # cut inside sample 2's JSON member: samples 0 and 1 arrive whole, then the break is raised
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        infos = tar.getmembers()
    cut = infos[5].offset_data + 1  # c:2/0/0.json's data has begun
    got = []
    with pytest.raises(tarfile.ReadError):
        for r in iter_raw_samples(io.BytesIO(data[:cut])):
            got.append(r.key)
    assert got == ["c:0/0/0", "c:1/0/0"]
    # cut after sample 2's JSON is complete, inside sample 3: sample 2 is whole, so it is kept
    cut = infos[6].offset_data + 1
    got = []
    with pytest.raises(tarfile.ReadError):
        for r in iter_raw_samples(io.BytesIO(data[:cut])):
            got.append(r.key)
    assert got == ["c:0/0/0", "c:1/0/0", "c:2/0/0"]

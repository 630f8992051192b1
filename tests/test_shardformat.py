import io
import pickle
import tarfile

import pytest

from mixtape.shardformat import (
    HashingWriter,
    ShardWriter,
    UnsafeMemberName,
    check_member_name,
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
    samples = list(iter_samples(io.BytesIO(buf.getvalue()), on_skip=skipped.append))
    assert samples == [{"__key__": "k/0/0", "flac": b"audio", "json": {"a": 1}}]
    assert skipped == ["k/0/0.pyd", "k/0/0.pth"]

    evil = io.BytesIO()
    with tarfile.open(fileobj=evil, mode="w") as tar:
        info = tarfile.TarInfo("../../escape.json")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"{}"))
    with pytest.raises(UnsafeMemberName):
        list(iter_samples(io.BytesIO(evil.getvalue())))

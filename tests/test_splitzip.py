"""Split zip archives (the FSD50K release format), classic and zip64, written by the test itself."""

import io
import struct
import zipfile

import numpy as np
import pytest

from mixtape.sources.fsd50k.splitzip import SPLIT_SIGNATURE, extract, parts_of
from tests.conftest import REALDATA


def write_split_zip(folder, stem: str, files: dict[str, bytes], part_size: int, zip64: bool, monkeypatch) -> None:
    """What `zip -s` writes: a split signature, parts cut at `part_size`, offsets relative to their disk.
    For zip64, zipfile's limit is lowered while writing so the small archive gets every zip64 structure
    (64-bit offsets in the central directory, the zip64 end record and locator) that a 24 GB one has."""
    buf = io.BytesIO()
    with monkeypatch.context() as m:
        if zip64:
            m.setattr(zipfile, "ZIP64_LIMIT", 1000)
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for name, data in files.items():
                z.writestr(name, data)
            z.writestr("__MACOSX/._junk", b"junk")
    data = bytearray(SPLIT_SIGNATURE + buf.getvalue())

    def disk(x):
        return x // part_size, x % part_size

    eocd = data.rfind(b"PK\x05\x06")
    n_entries, _cd_size, cd_off = struct.unpack("<HII", data[eocd + 10:eocd + 20])
    z64 = data.rfind(b"PK\x06\x06")
    if zip64 and cd_off == 0xFFFFFFFF:
        cd_off = struct.unpack("<Q", data[z64 + 48:z64 + 56])[0]
    cd_abs = cd_off + 4
    pos = cd_abs
    for _ in range(n_entries):
        name_len, extra_len, comment_len = struct.unpack("<HHH", data[pos + 28:pos + 34])
        local = struct.unpack("<I", data[pos + 42:pos + 46])[0]
        if local == 0xFFFFFFFF:  # the offset is in the zip64 extra field, after any 64-bit sizes
            ex = pos + 46 + name_len
            end = ex + extra_len
            while ex < end:
                tag, size = struct.unpack("<HH", data[ex:ex + 4])
                if tag == 1:
                    sizes = 8 * sum(1 for v in struct.unpack("<II", data[pos + 20:pos + 28]) if v == 0xFFFFFFFF)
                    at = ex + 4 + sizes
                    d, rel = disk(struct.unpack("<Q", data[at:at + 8])[0] + 4)
                    data[at:at + 8] = struct.pack("<Q", rel)
                ex += 4 + size
        else:
            d, rel = disk(local + 4)
            data[pos + 42:pos + 46] = struct.pack("<I", rel)
        data[pos + 34:pos + 36] = struct.pack("<H", d)
        pos += 46 + name_len + extra_len + comment_len
    last = disk(len(data) - 1)[0]
    cd_disk, cd_rel = disk(cd_abs)
    data[eocd + 4:eocd + 8] = struct.pack("<HH", last, cd_disk)
    if not zip64:
        data[eocd + 16:eocd + 20] = struct.pack("<I", cd_rel)
    else:
        data[eocd + 16:eocd + 20] = struct.pack("<I", 0xFFFFFFFF)  # as zip writes it: see the zip64 record
        data[z64 + 16:z64 + 24] = struct.pack("<II", last, cd_disk)
        data[z64 + 48:z64 + 56] = struct.pack("<Q", cd_rel)
        loc = data.rfind(b"PK\x06\x07")
        assert z64 > 0 and loc > 0, "the archive must carry zip64 end structures"
        z64_disk, z64_rel = disk(z64)
        data[loc + 4:loc + 16] = struct.pack("<IQ", z64_disk, z64_rel)
        data[loc + 16:loc + 20] = struct.pack("<I", last + 1)
    chunks = [data[i:i + part_size] for i in range(0, len(data), part_size)]
    for i, chunk in enumerate(chunks[:-1], 1):
        (folder / f"{stem}.z{i:02d}").write_bytes(chunk)
    (folder / f"{stem}.zip").write_bytes(chunks[-1])


@pytest.mark.parametrize("zip64", [False, True])
def test_split_archives_extract_exactly(tmp_path, zip64, monkeypatch):
    files = {f"FSD50K.dev_audio/{i}.wav": np.random.default_rng(i).bytes(20_000 + 3_000 * i)  # incompressible
             for i in range(6)}
    write_split_zip(tmp_path, "FSD50K.dev_audio", files, part_size=16_384, zip64=zip64, monkeypatch=monkeypatch)
    assert len(parts_of(tmp_path / "FSD50K.dev_audio.zip")) > 3
    names = extract(tmp_path / "FSD50K.dev_audio.zip", tmp_path / "out")
    assert sorted(names) == sorted(files)  # macOS junk skipped
    for name, data in files.items():
        assert (tmp_path / "out" / name).read_bytes() == data


def test_real_fsd50k_release_archive(tmp_path):
    archive = REALDATA / "freesound_style" / "fsd50k" / "_download_archive" / "fsd50k.zip"
    if not archive.exists():
        return
    with zipfile.ZipFile(archive) as outer:  # the release folder, zipped once more for the fixture
        outer.extractall(tmp_path / "dist")
    from mixtape.sources.fsd50k.unpack import unpack_release

    written = unpack_release(tmp_path / "dist" / "fsd50k", tmp_path / "FSD50K")
    assert (tmp_path / "FSD50K" / "FSD50K.dev_audio" / "21914.wav").stat().st_size == 1306702  # not 44 KB
    assert (tmp_path / "FSD50K" / "FSD50K.ground_truth" / "dev.csv").exists()
    assert not any("__MACOSX" in w or ".DS_Store" in w for w in written)


def test_unpack_command_then_read(tmp_path, monkeypatch):
    from mixtape.cli import main
    from mixtape.records import Clip
    from mixtape.sources.registry import list_source
    from mixtape.spec import parse_spec
    from tests import formats

    formats.fsd50k(tmp_path / "plain")
    dist = tmp_path / "dist"
    dist.mkdir()
    for part in ("FSD50K.dev_audio", "FSD50K.eval_audio", "FSD50K.ground_truth", "FSD50K.metadata"):
        files = {p.relative_to(tmp_path / "plain").as_posix(): p.read_bytes()
                 for p in sorted((tmp_path / "plain" / part).rglob("*")) if p.is_file()}
        write_split_zip(dist, part, files, part_size=40_000, zip64=False, monkeypatch=monkeypatch)
    spec = parse_spec({"name": "f", "seed": 1, "sources": [{"kind": "fsd50k", "path": str(dist)}]})
    (reject,) = list_source(spec.sources[0])
    assert reject.reason == "missing_metadata" and "mixtape fsd50k unpack" in reject.detail
    assert main(["fsd50k", "unpack", str(dist), "--out", str(tmp_path / "FSD50K")]) == 0
    spec = parse_spec({"name": "f", "seed": 1, "sources": [{"kind": "fsd50k", "path": str(tmp_path / "FSD50K")}]})
    clips = [c for c in list_source(spec.sources[0]) if isinstance(c, Clip)]
    assert {c.clip_id for c in clips} == {"fsd50k:64760", "fsd50k:21914", "fsd50k:99"}


def _zip(path, members) -> None:
    """A stored (uncompressed) zip, so a test can find and flip a member's bytes; a member given as
    ("link", target) is a Unix symlink entry."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for name, data in members.items():
            if isinstance(data, tuple):
                info = zipfile.ZipInfo(name)
                info.create_system = 3
                info.external_attr = (0o120777 << 16)
                z.writestr(info, data[1])
            else:
                z.writestr(name, data)


def test_a_member_failing_its_crc_never_appears_under_its_name(tmp_path, capsys):
    from mixtape.cli import main

    dist = tmp_path / "dist"
    dist.mkdir()
    good, bad = b"A" * 5000, b"B" * 5000
    _zip(dist / "FSD50K.metadata.zip", {"FSD50K.metadata/a.csv": good, "FSD50K.metadata/b.csv": bad})
    data = bytearray((dist / "FSD50K.metadata.zip").read_bytes())
    data[data.find(bad) + 100] ^= 0xFF
    (dist / "FSD50K.metadata.zip").write_bytes(bytes(data))
    out = tmp_path / "FSD50K"
    assert main(["fsd50k", "unpack", str(dist), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "FSD50K.metadata.zip is damaged" in err and "CRC" in err, err
    assert (out / "FSD50K.metadata" / "a.csv").read_bytes() == good
    assert sorted(p.name for p in (out / "FSD50K.metadata").iterdir()) == ["a.csv"]  # no b.csv, no temp file


def test_symlink_members_are_skipped_and_named(tmp_path, capsys):
    from mixtape.cli import main

    dist = tmp_path / "dist"
    dist.mkdir()
    _zip(dist / "FSD50K.metadata.zip", {"FSD50K.metadata/a.csv": b"x,y\n",
                                        "FSD50K.metadata/passwd": ("link", b"/etc/passwd")})
    out = tmp_path / "FSD50K"
    assert main(["fsd50k", "unpack", str(dist), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "FSD50K.metadata/passwd (a symlink)" in printed
    assert not (out / "FSD50K.metadata" / "passwd").exists() and not (out / "FSD50K.metadata" / "passwd").is_symlink()


@pytest.mark.parametrize("damage", ["truncated", "not_a_zip", "traversal"])
def test_a_damaged_release_is_one_line(tmp_path, capsys, damage):
    from mixtape.cli import main

    dist = tmp_path / "dist"
    dist.mkdir()
    archive = dist / "FSD50K.metadata.zip"
    _zip(archive, {"../../escaped.csv" if damage == "traversal" else "FSD50K.metadata/a.csv": b"x" * 3000})
    if damage == "truncated":
        archive.write_bytes(archive.read_bytes()[:2000])
    elif damage == "not_a_zip":
        archive.write_bytes(b"<html>404 not found</html>")
    assert main(["fsd50k", "unpack", str(dist), "--out", str(tmp_path / "FSD50K")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mixtape fsd50k: ") and "Traceback" not in err, err
    assert not (tmp_path / "escaped.csv").exists()


def test_unpack_says_what_it_is_doing_archive_by_archive(tmp_path, capsys, monkeypatch):
    from mixtape.cli import main

    dist = tmp_path / "dist"
    dist.mkdir()
    _zip(dist / "FSD50K.metadata.zip", {"FSD50K.metadata/a.csv": b"x"})
    write_split_zip(dist, "FSD50K.dev_audio", {"FSD50K.dev_audio/1.wav": np.random.default_rng(0).bytes(60_000)},
                    part_size=16_384,
                    zip64=False, monkeypatch=monkeypatch)
    assert main(["fsd50k", "unpack", str(dist), "--out", str(tmp_path / "out")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("[1/2] extracting FSD50K.dev_audio.zip (") and "parts)" in lines[0]
    assert "[1/2] FSD50K.dev_audio.zip: 1 files" in lines and "[2/2] extracting FSD50K.metadata.zip ..." in lines

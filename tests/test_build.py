"""Real Beam builds of a tiny generated collection (DirectRunner: in-memory and 2 worker processes)."""

import io
import json
import tarfile

import pyarrow.parquet as pq
import pytest
import soundfile as sf
import webdataset as wds

from mixtape.pipelines.build import BuildError, RunnerConfig, build
from mixtape.spec import parse_spec

pytestmark = pytest.mark.slow


def shard_files(out):
    return sorted(p.name for p in out.iterdir() if p.suffix == ".tar")


def test_accounting_holds_and_rejects_have_reasons(tiny_build):
    out, card = tiny_build
    acc = card["accounting"]
    assert acc["clips_in"] == 14  # 12 generated + 2 deliberately broken
    assert acc["clips_in"] == acc["clips_used"] + acc["clips_rejected"]
    assert acc["rejects_by_reason"] == {"silent": 1, "truncated": 1}
    rejects = pq.read_table(out / "rejects.parquet").to_pylist()
    assert {(r["clip_id"], r["reason"]) for r in rejects} == {("freesound:399001", "truncated"),
                                                               ("freesound:399002", "silent")}
    assert all(r["detail"] and r["stage"] for r in rejects)


def test_splits_shards_and_counts_agree(tiny_build, tiny_spec):
    out, card = tiny_build
    index = pq.read_table(out / "index.parquet").to_pylist()
    names = [s["name"] for split in card["splits"].values() for s in split["shards"]]
    assert sorted(names) == shard_files(out)
    for split, info in card["splits"].items():
        assert info["samples"] == sum(1 for r in index if r["split"] == split) > 0
        for s in info["shards"]:
            assert 0 < s["samples"] <= tiny_spec.shards.max_samples
            assert s["bytes"] == (out / s["name"]).stat().st_size
    # a group (pack) never spans two splits; valid/test hold only clean originals
    clip_split = {r["clip_id"]: r["split"] for r in index}
    assert len(clip_split) == card["accounting"]["clips_used"]
    assert {r["variant"] for r in index if r["split"] != "train"} == {0}
    assert {r["variant"] for r in index if r["split"] == "train"} == {0, 1, 2}


def test_shards_are_readable_by_stock_webdataset_and_match_the_index(tiny_build):
    out, _card = tiny_build
    index = {r["key"]: r for r in pq.read_table(out / "index.parquet").to_pylist()}
    seen = {}
    for name in shard_files(out):
        for sample in wds.WebDataset(str(out / name), shardshuffle=False):
            doc = json.loads(sample["json"])
            audio, sr = sf.read(io.BytesIO(sample["flac"]))
            assert sample["__key__"] == doc["key"]
            assert sr == 8000 and audio.ndim == 1 and len(audio) == 8000
            row = index[doc["key"]]
            assert row["shard"] == name and doc["split"] == row["split"]
            assert doc["labels"]["tags"] == row["tags"] and json.loads(row["augment"]) == doc["augment"]
            assert doc["licence"] and doc["attribution"] and doc["source"]["sha256"]
            if doc["variant"] > 0:
                assert doc["augment"] and doc["augment"][0]["op"] == "gain"
            seen[doc["key"]] = name
    assert seen.keys() == index.keys()


def test_tar_members_have_fixed_metadata(tiny_build):
    out, _ = tiny_build
    with tarfile.open(out / shard_files(out)[0]) as tar:
        members = tar.getmembers()
    assert members and all(m.mtime == 0 and m.uid == 0 and m.uname == "" for m in members)
    hashes = [m.name for m in members]
    assert hashes == sorted(hashes, key=lambda n: hashes.index(n))  # consecutive pairs per key
    assert [n.rsplit(".", 1)[1] for n in hashes[:2]] == ["flac", "json"]


def test_augmented_variant_differs_from_its_original_by_the_drawn_gain(tiny_build):
    out, _ = tiny_build
    index = pq.read_table(out / "index.parquet").to_pylist()
    variant = next(r for r in index if r["variant"] == 1 and json.loads(r["augment"]))
    original_key = variant["key"].rsplit("/", 1)[0] + "/0"
    audio = {}
    for name in {variant["shard"], next(r["shard"] for r in index if r["key"] == original_key)}:
        for s in wds.WebDataset(str(out / name), shardshuffle=False):
            if s["__key__"] in (variant["key"], original_key):
                audio[s["__key__"]] = sf.read(io.BytesIO(s["flac"]))[0]
    db = json.loads(variant["augment"])[0]["db"]
    a, b = audio[original_key], audio[variant["key"]]
    mask = abs(a) > 0.05
    ratio = (b[mask] / a[mask]).mean()
    assert ratio == pytest.approx(10 ** (db / 20), rel=0.01)


def test_multiprocessing_build_is_byte_identical(tiny_build, tiny_spec, tiny_root):
    out, _ = tiny_build
    other = tiny_root / "out-2workers"
    build(tiny_spec, str(other), RunnerConfig(workers=2))
    produced = sorted(p.name for p in out.iterdir() if p.name != "build.json")
    assert produced == sorted(p.name for p in other.iterdir() if p.name != "build.json")
    for name in produced:
        assert (out / name).read_bytes() == (other / name).read_bytes(), name
    info = json.loads((other / "build.json").read_text())
    assert info["workers"] == 2


def test_refuses_to_overwrite_without_asking(tiny_build, tiny_spec):
    out, _ = tiny_build
    with pytest.raises(BuildError, match="--overwrite"):
        build(tiny_spec, str(out))


def test_folder_source_and_wav_output(tmp_path, tiny_root):
    audio_dir = tiny_root / "collection" / "freesound" / "audio"
    spec = parse_spec({"name": "folder", "seed": 1, "sources": [{"kind": "folder", "path": str(audio_dir)}],
                       "audio": {"sample_rate": 8000, "channels": 2, "format": "wav"},
                       "snippets": {"duration": 2.0}, "splits": {"fractions": {"train": 1.0}},
                       "shards": {"max_samples": 100}})
    card = build(spec, str(tmp_path / "out"))
    acc = card["accounting"]
    assert acc["clips_in"] == 14 and acc["clips_used"] == 12
    assert card["splits"]["train"]["samples"] > 0
    with tarfile.open(tmp_path / "out" / "train-000000.tar") as tar:
        wav = next(m for m in tar.getmembers() if m.name.endswith(".wav"))
        audio, sr = sf.read(io.BytesIO(tar.extractfile(wav).read()))
    assert wav.name.startswith("folder:") and sr == 8000 and audio.shape == (16000, 2)


def test_portable_runner_with_embedded_job_service_is_byte_identical(tiny_build, tiny_spec, tiny_root):
    """The Fn API path Flink and Dataflow use, run here with Beam's embedded job service."""
    out, _ = tiny_build
    other = tiny_root / "out-portable"
    build(tiny_spec, str(other), RunnerConfig(runner="portable",
                                              beam_args=("--job_endpoint=embed", "--environment_type=LOOPBACK")))
    for p in out.iterdir():
        if p.name != "build.json":
            assert p.read_bytes() == (other / p.name).read_bytes(), p.name


def test_missing_source_folder_is_a_config_error(tmp_path):
    spec = parse_spec({"name": "m", "seed": 1, "sources": [{"kind": "folder", "path": "nope"}]}, tmp_path)
    with pytest.raises(BuildError, match=r"sources\[0\]\.path: .*nope does not exist"):
        build(spec, str(tmp_path / "out"))


def test_a_build_where_every_clip_is_rejected_still_writes_its_card(tmp_path):
    (tmp_path / "audio").mkdir()
    (tmp_path / "audio" / "empty.wav").write_bytes(b"")
    (tmp_path / "audio" / "text.flac").write_text("not audio at all")
    spec = parse_spec({"name": "bad", "seed": 1, "sources": [{"kind": "folder", "path": "audio"}]}, tmp_path)
    card = build(spec, str(tmp_path / "out"))
    acc = card["accounting"]
    assert (acc["clips_in"], acc["clips_used"], acc["clips_rejected"]) == (2, 0, 2)
    assert acc["rejects_by_reason"] == {"empty_file": 1, "undecodable": 1}
    assert all(s["samples"] == 0 for s in card["splits"].values())
    assert not list((tmp_path / "out").glob("*.tar"))

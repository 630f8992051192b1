"""The render worker's source cache: blocks on a fixed grid, shared by the shards a worker renders, and
never a cause of different bytes."""

from __future__ import annotations

import json
import random
from collections import defaultdict

import numpy as np
import pytest
import soundfile as sf

from mixtape.audio import convert, decode
from mixtape.hashing import sha256_hex
from mixtape.pipelines.manifest import PARTS_DIR
from mixtape.pipelines.render import RenderSource
from mixtape.records import ClipWindow, PlanRow
from mixtape.rendering import BLOCK_MS, SourceCache, cut
from mixtape.spec import AudioSpec
from mixtape.storage import read_parquet

AUDIO = AudioSpec(sample_rate=16000, channels=1, format="flac")


def write_source(path, sr, channels, seconds, fmt, subtype, seed=0):
    t = np.arange(int(sr * seconds)) / sr
    rng = np.random.default_rng(seed)
    x = np.stack([0.3 * np.sin(2 * np.pi * (330 + 40 * c) * t) + 0.02 * rng.standard_normal(t.size)
                  for c in range(channels)], axis=1)
    sf.write(path, x.astype(np.float32), sr, format=fmt, subtype=subtype)
    data = path.read_bytes()
    return str(path), sha256_hex(data), data


@pytest.mark.parametrize("sr,channels,fmt,subtype", [(44100, 2, "FLAC", "PCM_16"), (22050, 1, "OGG", "VORBIS"),
                                                     (48000, 2, "MP3", "MPEG_LAYER_III"), (16000, 1, "WAV", "PCM_16")])
def test_windows_made_of_blocks_match_the_whole_file_conversion(tmp_path, sr, channels, fmt, subtype):
    uri, sha, data = write_source(tmp_path / f"x.{fmt.lower()}", sr, channels, 9.37, fmt, subtype)
    whole = convert(decode(data)[0], sr, AUDIO.sample_rate, AUDIO.channels)
    cache = SourceCache(AUDIO)
    # inside one block, across one and two block boundaries, up to and past the end of the clip
    for start_ms, duration_ms in ((0, 1000), (BLOCK_MS - 1, 3000), (500, 3 * BLOCK_MS), (7000, 3750), (9000, 2000),
                                  (12000, 1000)):
        window = cache.window(ClipWindow("x", uri, sha, start_ms, duration_ms))
        reference = cut(whole, AUDIO.sample_rate, start_ms, duration_ms)
        assert window.shape == reference.shape == (1, duration_ms * 16)
        assert np.abs(window - reference).max() < 1e-6
    assert not cache.window(ClipWindow("x", uri, sha, 12000, 1000)).any()  # wholly past the end: silence
    assert cache.stats["reads"] == 1  # the encoded bytes are read and verified once
    full = cache.whole(ClipWindow("x", uri, sha, 0, 0))
    assert full.shape == whole.shape and np.abs(full - whole).max() < 1e-6


def test_the_output_never_depends_on_what_is_cached_or_in_what_order(tmp_path):
    sources = [write_source(tmp_path / f"s{i}.{ext}", sr, ch, secs, fmt, sub, seed=i)
               for i, (sr, ch, secs, fmt, sub, ext) in enumerate([(44100, 2, 7.3, "FLAC", "PCM_16", "flac"),
                                                                  (22050, 1, 5.1, "OGG", "VORBIS", "ogg"),
                                                                  (48000, 1, 6.0, "MP3", "MPEG_LAYER_III", "mp3")])]
    rng = random.Random(4)
    requests = [(i, rng.randrange(0, 7000), rng.choice([1000, 3000, 3750])) for i in range(3) for _ in range(12)]

    def render(capacity, order):
        cache = SourceCache(AUDIO, capacity)
        return {r: cache.window(ClipWindow(f"c{r[0]}", sources[r[0]][0], sources[r[0]][1], r[1], r[2]))
                for r in order}

    roomy = render(1 << 30, requests)
    shuffled = list(requests)
    rng.shuffle(shuffled)
    starved = render(1, shuffled)  # every block converted again for every window, in another order
    assert all(np.array_equal(roomy[r], starved[r]) for r in requests)


def test_a_long_source_costs_the_blocks_a_window_touches(tmp_path):
    uri, sha, _ = write_source(tmp_path / "long.flac", 8000, 1, 12 * 60, "FLAC", "PCM_16")
    cache = SourceCache(AUDIO)
    window = cache.window(ClipWindow("long", uri, sha, 400_500, 3000))
    assert window.shape == (1, 48000)
    assert cache.stats == {"reads": 1, "blocks": 2, "block_hits": 0}  # 400-402 s and 402-404 s of 720 s
    cache.window(ClipWindow("long", uri, sha, 401_000, 2000))  # another variant of the same window
    assert cache.stats == {"reads": 1, "blocks": 2, "block_hits": 2}


def test_a_changed_input_is_refused(tmp_path):
    from mixtape.rendering import InputChanged

    uri, _, _ = write_source(tmp_path / "x.flac", 16000, 1, 3.0, "FLAC", "PCM_16")
    with pytest.raises(InputChanged):
        SourceCache(AUDIO).window(ClipWindow("x", uri, "0" * 64, 0, 1000))


@pytest.mark.parametrize("spill", [False, True])
def test_rendering_source_by_source_converts_each_block_once_with_a_tiny_cache_and_writes_the_same_bytes(
        tiny_build, tmp_path, spill):
    """The render phase's three steps run by hand as a runner would: rows grouped by shard (plan parts, kept
    shards), by source (rendered in window order), by shard again (written in hash order). With room for
    only three blocks, each block a window touches is still converted once, and the shards are the build's,
    whether the samples travel as bytes or (a local build) as references into spill files."""
    from mixtape.pipelines.render import TO_RENDER, PlanShard, RenderSource, Spilled, WriteShard
    from mixtape.rendering import source_key

    out, card = tiny_build
    roots = json.loads((out / "build.json").read_text())["source_roots"]
    by_shard: dict[str, list[PlanRow]] = defaultdict(list)
    for r in read_parquet(str(out / "plan.parquet")).to_pylist():
        by_shard[r["shard"]].append(PlanRow.from_record(json.loads(r["record"]), roots))
    audio = AudioSpec(**card["spec"]["audio"])
    per_block = BLOCK_MS * audio.sample_rate // 1000
    touched = set()
    for rows in by_shard.values():
        for row in rows:
            w = row.source_window()
            start, n = w.start_ms * audio.sample_rate // 1000, w.duration_ms * audio.sample_rate // 1000
            touched |= {(row.clip_id, k) for k in range(start // per_block, (start + n - 1) // per_block + 1)}
    assert not any(row.material for rows in by_shard.values() for row in rows)  # the tiny spec mixes nothing
    assert len(touched) > 10 and len(by_shard) > 1

    (tmp_path / PARTS_DIR).mkdir()
    to_render: dict[str, list[PlanRow]] = defaultdict(list)
    for name in sorted(by_shard, reverse=True):  # any order: grouping decides, not arrival
        for out_row in PlanShard(audio, str(tmp_path)).process((name, by_shard[name][::-1]), {}):
            assert out_row.tag == TO_RENDER  # nothing to keep: no previous build
            to_render[source_key(out_row.value)].append(out_row.value)
    worker = RenderSource(audio, spill_dir=str(tmp_path) if spill else None)
    worker.setup()  # as a Beam worker does, once for every bundle it processes
    worker.cache = SourceCache(audio, 3 * per_block * 4 * audio.channels)  # three float32 blocks
    samples = defaultdict(list)
    for half in (sorted(to_render)[::2], sorted(to_render)[1::2]):  # two bundles: two spill files
        worker.start_bundle()
        for key in half:
            for shard, sample in worker.process((key, to_render[key])):
                assert isinstance(sample, Spilled) == spill  # a reference: no audio bytes in the shuffle
                samples[shard].append(sample)
        worker.finish_bundle()
    if spill:
        assert len(list((tmp_path / PARTS_DIR).glob("spill-*.bin"))) == 2
    assert worker.cache.stats["blocks"] == len(touched)
    assert worker.cache.stats["reads"] == len({c for c, _ in touched})
    infos = {}
    for name, got in samples.items():
        (info,) = WriteShard(audio, str(tmp_path)).process((name, got[::-1]))
        infos[name] = info
    expected = {s["name"]: s["sha256"] for split in card["splits"].values() for s in split["shards"]}
    assert {n: i["sha256"] for n, i in infos.items()} == expected
    for name in expected:
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes()


def test_render_tasks_in_one_process_share_one_cache_and_threads_agree(tmp_path):
    import pickle
    from concurrent.futures import ThreadPoolExecutor

    task = RenderSource(AUDIO)
    copies = [pickle.loads(pickle.dumps(task)) for _ in range(3)]  # as a runner deserialises one per thread
    for c in copies:
        c.setup()
    assert copies[0].cache is copies[1].cache is copies[2].cache

    uri, sha, _ = write_source(tmp_path / "x.ogg", 44100, 2, 8.0, "OGG", "VORBIS")
    requests = [(s, d) for s in range(0, 7000, 350) for d in (1000, 3000, 3750)]
    serial = [SourceCache(AUDIO).window(ClipWindow("x", uri, sha, s, d)) for s, d in requests]
    shared = copies[0].cache
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(lambda r: shared.window(ClipWindow("x", uri, sha, *r)), requests))
    assert all(np.array_equal(a, b) for a, b in zip(serial, threaded, strict=True))


def test_an_incremental_build_keeps_nothing_rendered_by_another_render_version(tiny_build, tmp_path):
    import shutil

    from mixtape.pipelines.incremental import load_previous
    from mixtape.rendering import RENDER_VERSION

    out, card = tiny_build
    assert card["versions"]["mixtape-render"] == str(RENDER_VERSION)
    old = tmp_path / "old"
    shutil.copytree(out, old)
    assert load_previous(str(old), card, lambda _m: None)  # same versions: its shards may be kept
    doc = json.loads((old / "dataset.json").read_text())
    doc["versions"]["mixtape-render"] = str(RENDER_VERSION - 1)  # rendered before block-wise conversion
    said = []
    assert load_previous(str(old), doc, said.append) == {}
    assert "mixtape-render" in said[0]


def test_shards_are_flushed_to_disk_before_their_rename_and_scratch_parts_are_not(tmp_path, monkeypatch):
    import os

    from mixtape import storage
    from mixtape.pipelines.manifest import write_part

    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")), real_fsync(fd)))
    storage.write_bytes(str(tmp_path / "train-000000.tar"), b"x" * 10240)
    (tmp_path / PARTS_DIR).mkdir()
    write_part(str(tmp_path), "train-000000.tar", "plan", [])
    assert len(synced) == 1 and ".tmp-" in synced[0] and synced[0].endswith("train-000000.tar")
    assert (tmp_path / "train-000000.tar").read_bytes() == b"x" * 10240


def test_a_plan_reference_is_a_clip_window_and_back_and_a_row_reads_its_stretched_source(tiny_build):
    """The window type is what planning writes into a row's material and what rendering reads back: a
    reference's window fields survive the round trip, its other fields are left alone, and a time-stretched
    row reads ``duration * rate`` of its clip from where the plan put it."""
    from mixtape.planning import snippet_ref
    from mixtape.records import Clip

    clip = Clip(clip_id="c:1", uri="/x/1.flac", source="c", relpath="1.flac", sha256="ab" * 32,
                window_start=0.01, window_end=4.01, offset_frames=441, sample_rate=44100, frames=44100 * 4)
    ref = snippet_ref(clip, 1500, 1000)
    w = ClipWindow.from_dict(ref)
    assert w == ClipWindow("c:1", "/x/1.flac", "ab" * 32, 1500, 1000, 441, 44100 * 4)
    assert {k: ref[k] for k in w.to_dict()} == w.to_dict() and "synth" not in w.to_dict()
    assert {"labels", "hash", "licence", "attribution", "source", "relpath"} <= set(ref) - set(w.to_dict())
    scored = ClipWindow("s:1", "/x/1.mid", "cd" * 32, 0, 3000, synth={"soundfont": "ef" * 32})
    assert ClipWindow.from_dict({**scored.to_dict(), "role": "partner"}) == scored

    out, _ = tiny_build
    rows = [json.loads(r["record"]) for r in read_parquet(str(out / "plan.parquet")).to_pylist()]
    row = PlanRow.from_record(rows[0], {s: "/somewhere" for s in {r["source"] for r in rows}})
    assert row.source_window() == ClipWindow(row.clip_id, row.uri, row.sha256, row.start_ms, row.duration_ms,
                                             row.offset_frames, row.length_frames, row.synth)
    stretched = PlanRow(**{**row.__dict__, "src_start_ms": 900, "src_duration_ms": 3750})
    assert (stretched.source_window().start_ms, stretched.source_window().duration_ms) == (900, 3750)

"""The shard stream against real shards: exact epochs over ranks x workers, corrupt input, resampling."""

import io
import json
import tarfile
from collections import Counter
from pathlib import Path

import pytest
from torch.utils.data import DataLoader

from mixtape.train.data import ShardStream, StreamTracker
from mixtape.train.targets import LabelEncoder

pytestmark = pytest.mark.slow


def _train_keys(out: Path) -> list[str]:
    import pyarrow.parquet as pq

    index = pq.read_table(out / "index.parquet").to_pylist()
    return sorted(r["sample_key"] for r in index if r["split"] == "train")


def _read(stream: ShardStream, workers: int) -> tuple[list[str], StreamTracker]:
    tracker = StreamTracker(max(1, workers))
    keys: list[str] = []
    for batch in DataLoader(stream, batch_size=None, num_workers=workers):
        tracker.consume(batch)
        keys.extend(batch["keys"])
        if not batch["end"]:
            assert batch["audio"].shape == (len(batch["keys"]), stream.crop_samples)
    return keys, tracker


def _stream(card, urls, rank=0, world=1, **kw) -> ShardStream:
    defaults = dict(crop_samples=4000, batch_size=3, shuffle_buffer=8, seed=5, rank=rank, world_size=world)
    return ShardStream(urls, LabelEncoder.from_card(card), card["audio"]["sample_rate"], **{**defaults, **kw})


def test_every_sample_exactly_once_per_epoch_with_2_ranks_x_2_workers(tiny_build, http_server):
    out, card = tiny_build
    base = http_server(out)
    urls = [f"{base}/{s['name']}" for s in card["splits"]["train"]["shards"]]
    assert len(urls) >= 4, "the fixture should give every (rank, worker) slot a shard"
    expected = _train_keys(out)
    epochs = []
    for epoch in range(2):
        seen: list[str] = []
        for rank in range(2):
            stream = _stream(card, urls, rank, 2)
            stream.set_epoch(epoch)
            keys, tracker = _read(stream, workers=2)
            assert tracker.stats.corrupt == 0 and sorted(tracker.exhausted) == ["0", "1"]
            seen.extend(keys)
        counts = Counter(seen)
        assert sorted(counts) == expected and set(counts.values()) == {1}
        epochs.append(seen)
    assert epochs[0] != epochs[1]  # reshuffled per epoch, same set


def test_several_crops_per_sample_and_equal_length_batches(tiny_build):
    out, card = tiny_build
    urls = [str(out / s["name"]) for s in card["splits"]["train"]["shards"]]
    keys, _ = _read(_stream(card, urls, crops=3, batch_size=4, drop_last=False), workers=0)
    counts = Counter(keys)
    assert set(counts.values()) == {3} and len(counts) == card["splits"]["train"]["samples"]


def test_resampled_mode_is_endless_and_seeded(tiny_build):
    out, card = tiny_build
    urls = [str(out / s["name"]) for s in card["splits"]["train"]["shards"]]

    def first(n: int, seed: int) -> list[str]:
        keys: list[str] = []
        for batch in _stream(card, urls, resampled=True, seed=seed):
            keys.extend(batch["keys"])
            if len(keys) >= n:
                return keys[:n]
        raise AssertionError("the resampled stream ended")

    total = card["splits"]["train"]["samples"]
    a = first(3 * total, 1)
    assert len(a) == 3 * total and first(3 * total, 1) == a and first(3 * total, 2) != a
    assert max(Counter(a).values()) > 1  # drawn with replacement


def _rewrite_shard(src: Path, dst: Path, corrupt_audio: int, corrupt_json: int) -> list[str]:
    """Copy a shard, replacing one sample's FLAC with junk and another's JSON with broken text."""
    keys: list[str] = []
    buf = io.BytesIO()
    with tarfile.open(src) as tin, tarfile.open(fileobj=buf, mode="w") as tout:
        for info in tin:
            data = tin.extractfile(info).read()
            key = info.name.split(".", 1)[0]
            if key not in keys:
                keys.append(key)
            i = keys.index(key)
            if i == corrupt_audio and info.name.endswith(".flac"):
                data = b"fLaC" + b"\x00" * 200
            if i == corrupt_json and info.name.endswith(".json"):
                data = b'{"clip_id": "x", "labels": {'
            info.size = len(data)
            tout.addfile(info, io.BytesIO(data))
    dst.write_bytes(buf.getvalue())
    return keys


def test_corrupt_samples_truncated_and_missing_shards_are_skipped_and_counted(tiny_build, http_server, tmp_path):
    out, card = tiny_build
    shards = [s["name"] for s in card["splits"]["train"]["shards"]]
    bad_keys = _rewrite_shard(out / shards[0], tmp_path / shards[0], corrupt_audio=1, corrupt_json=2)
    whole = (out / shards[1]).read_bytes()
    (tmp_path / shards[1]).write_bytes(whole[: len(whole) * 2 // 3])  # truncated mid-member
    for name in shards[2:]:
        (tmp_path / name).write_bytes((out / name).read_bytes())
    base = http_server(tmp_path)
    urls = [f"{base}/{n}" for n in shards] + [f"{base}/train-999999.tar"]  # the last one 404s
    keys, tracker = _read(_stream(card, urls, batch_size=2), workers=2)
    stats = tracker.stats
    assert stats.corrupt == 4, "\n".join(stats.errors)  # broken FLAC, broken JSON, truncated shard, 404
    text = "\n".join(stats.errors)
    assert "404" in text and bad_keys[1] in text and bad_keys[2] in text and shards[1] in text
    assert bad_keys[1] not in keys and bad_keys[2] not in keys
    assert set(bad_keys) - set(keys) == {bad_keys[1], bad_keys[2]}
    assert len(keys) == len(set(keys))  # nothing twice
    # every sample of the intact shards arrives; the truncated shard gives those before the cut
    truncated = set(_shard_keys(out / shards[1]))
    assert set(_train_keys(out)) - truncated - {bad_keys[1], bad_keys[2]} <= set(keys)
    assert 0 < len(truncated & set(keys)) < len(truncated)


def _shard_keys(path: Path) -> list[str]:
    with tarfile.open(path) as tar:
        return sorted({m.name.split(".", 1)[0] for m in tar})


def test_stream_never_reads_members_it_does_not_understand(tiny_build, tmp_path):
    """A planted .pth / .pyd / .pickle member is skipped unread (counted), never loaded."""
    out, card = tiny_build
    name = card["splits"]["train"]["shards"][0]["name"]
    payload = b"cos\nsystem\n(S'touch " + str(tmp_path / "pwned").encode() + b"'\ntR."  # a pickle that runs a shell
    buf = io.BytesIO()
    with tarfile.open(out / name) as tin, tarfile.open(fileobj=buf, mode="w") as tout:
        for info in tin:
            tout.addfile(info, tin.extractfile(info))
            if info.name.endswith(".json"):
                key = info.name.split(".", 1)[0]
                for ext in ("pth", "pyd", "pickle"):
                    extra = tarfile.TarInfo(f"{key}.{ext}")
                    extra.size = len(payload)
                    tout.addfile(extra, io.BytesIO(payload))
    (tmp_path / name).write_bytes(buf.getvalue())
    keys, tracker = _read(_stream(card, [str(tmp_path / name)]), workers=0)
    assert len(keys) == card["splits"]["train"]["shards"][0]["samples"]
    assert tracker.stats.skipped_members == 3 * len(keys) and tracker.stats.corrupt == 0
    assert not (tmp_path / "pwned").exists()
    assert json.loads((out / "dataset.json").read_text())["name"] == "tiny"


def test_schemes_beam_has_no_filesystem_for_go_through_fsspec(tiny_build):
    """gs:// and s3:// go through Beam's FileSystems (tests/test_object_store.py, against a real S3-protocol
    server); any other scheme an fsspec filesystem serves, here fsspec's in-memory one."""
    import fsspec

    out, card = tiny_build
    fs = fsspec.filesystem("memory")
    names = [s["name"] for s in card["splits"]["train"]["shards"]]
    for name in names:
        fs.pipe(f"/mixtape-test/{name}", (out / name).read_bytes())
    try:
        keys, tracker = _read(_stream(card, [f"memory://mixtape-test/{n}" for n in names]), workers=0)
    finally:
        fs.rm("/mixtape-test", recursive=True)
    assert sorted(keys) == _train_keys(out) and tracker.stats.corrupt == 0


def _copy_with(src: Path, dst: Path, change) -> list[str]:
    """Copy a shard member by member; ``change(index_of_sample, info, data)`` returns the members to write
    in its place (a list of (TarInfo, bytes)). Returns the sample keys in order."""
    keys: list[str] = []
    buf = io.BytesIO()
    with tarfile.open(src) as tin, tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tout:
        for info in tin:
            data = tin.extractfile(info).read()
            key = info.name.split(".", 1)[0]
            if key not in keys:
                keys.append(key)
            for new, payload in change(keys.index(key), info, data):
                new.size = len(payload)
                tout.addfile(new, io.BytesIO(payload))
    dst.write_bytes(buf.getvalue())
    return keys


def test_a_traversal_member_is_skipped_and_every_good_sample_kept(tiny_build, tmp_path):
    out, card = tiny_build
    name = card["splits"]["train"]["shards"][0]["name"]

    def plant(i, info, data):
        if i == 1 and info.name.endswith(".json"):
            return [(info, data), (tarfile.TarInfo("../../escape.flac"), b"fLaC" + b"\0" * 64)]
        return [(info, data)]

    keys = _copy_with(out / name, tmp_path / name, plant)
    got, tracker = _read(_stream(card, [str(tmp_path / name)], shuffle_buffer=1), workers=0)
    assert sorted(got) == sorted(keys)  # the samples before and after the bad member both arrive
    assert tracker.stats.skipped_members == 1 and tracker.stats.corrupt == 0
    assert any("../../escape.flac" in e for e in tracker.stats.errors)
    assert not (tmp_path.parent / "escape.flac").exists()


def test_a_shard_rewritten_since_its_card_is_refused_and_counted(tiny_build, http_server, tmp_path):
    """A half-updated dataset (a shard that no longer matches the card) never mixes into training: local
    shards are checked against the card's sha256 by default, remote ones with verify_remote."""
    import shutil

    from mixtape.dataset.card import shard_checks

    out, card = tiny_build
    copy = tmp_path / "ds"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("report"))
    names = [s["name"] for s in card["splits"]["train"]["shards"]]
    victim = _copy_with(out / names[0], copy / names[0],
                        lambda i, info, data: [(info, data.replace(b'"variant"', b'"variant" ') if
                                                info.name.endswith(".json") else data)])
    local = [str(copy / n) for n in names]
    got, tracker = _read(_stream(card, local, expected=shard_checks(card, local)), workers=0)
    assert not set(victim) & set(got) and len(got) == len(set(_train_keys(out)) - set(victim))
    assert tracker.stats.corrupt == 1
    assert any("ShardMismatch" in e and "does not match the dataset card" in e for e in tracker.stats.errors)

    base = http_server(copy)
    remote = [f"{base}/{n}" for n in names]
    got, _ = _read(_stream(card, remote, expected=shard_checks(card, remote)), workers=0)
    assert set(victim) <= set(got)  # remote shards are not downloaded twice unless asked ...
    got, tracker = _read(_stream(card, remote, expected=shard_checks(card, remote), verify_remote=True), workers=0)
    assert not set(victim) & set(got) and tracker.stats.corrupt == 1  # ... and then refused like local ones


@pytest.mark.parametrize("what", ["rate", "length"])
def test_members_with_impossible_rates_or_lengths_are_refused_before_decoding(tiny_build, tmp_path, what):
    import numpy as np
    import soundfile as sf

    out, card = tiny_build
    name = card["splits"]["train"]["shards"][0]["name"]
    fake = io.BytesIO()
    if what == "rate":
        sf.write(fake, np.zeros(64, dtype="float32"), 2, format="WAV")  # 2 Hz: the trainer would resample it
    else:
        sf.write(fake, np.zeros(601 * 1000, dtype="float32"), 1000, format="FLAC")  # 601 s of silence, tiny

    def swap(i, info, data):
        return [(info, fake.getvalue() if i == 0 and info.name.endswith(".flac") else data)]

    keys = _copy_with(out / name, tmp_path / name, swap)
    got, tracker = _read(_stream(card, [str(tmp_path / name)], shuffle_buffer=1), workers=0)
    assert sorted(got) == sorted(keys[1:]) and tracker.stats.corrupt == 1
    (error,) = tracker.stats.errors
    assert keys[0] in error and ("2 Hz" in error if what == "rate" else "longer than a sample can be" in error)


def test_a_clip_list_keeps_only_those_clips_and_other_datasets_shards_are_not_checked_against_this_card(
        tiny_build, tmp_path):
    """Training on a subset (``--clips``) reads only its samples; a second dataset's shards with the same
    names are not mistaken for this card's (and refused as changed)."""
    import shutil

    from mixtape.dataset.card import shard_checks

    out, card = tiny_build
    keys = _train_keys(out)
    clips = sorted({k.rsplit("/", 2)[0] for k in keys})
    keep = frozenset(clips[: len(clips) // 2])
    names = [s["name"] for s in card["splits"]["train"]["shards"]]
    urls = [str(out / n) for n in names]
    got, tracker = _read(_stream(card, urls, clips=keep, expected=shard_checks(card, urls)), workers=0)
    assert got and {k.rsplit("/", 2)[0] for k in got} == set(keep) and tracker.stats.corrupt == 0
    assert sorted(got) == sorted(k for k in keys if k.rsplit("/", 2)[0] in keep)

    other = tmp_path / "other"
    other.mkdir()
    shutil.copyfile(out / names[1], other / names[0])  # another dataset's shard under a name this card lists
    mixed = [*urls, str(other / names[0])]
    checks = shard_checks(card, mixed, str(out / "dataset.json"))
    assert set(checks) == set(urls)  # only the card's own folder is checked against it
    assert str(other / names[0]) in shard_checks(card, mixed)  # by file name alone it would have been
    got, tracker = _read(_stream(card, mixed, expected=checks), workers=0)
    assert tracker.stats.corrupt == 0 and len(got) == len(keys) + card["splits"]["train"]["shards"][1]["samples"]

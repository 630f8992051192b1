from collections import Counter

import pytest

from mixtape.hashing import SHARD_SALT, digest128
from mixtape.planning import (
    assign_splits,
    plan_clip,
    sample_key,
    shard_boundaries,
    shard_index,
    snippet_starts,
    usable_windows,
)
from mixtape.records import Clip
from mixtape.spec import SpecError, parse_spec

FRACTIONS = (("train", 0.8), ("valid", 0.1), ("test", 0.1))


def test_splits_are_deterministic_and_keep_proportions():
    groups = [(f"pack:{i}", 10.0) for i in range(2000)]
    for method, tolerance in (("balanced", 1), ("hash", 60)):
        a = assign_splits(groups, FRACTIONS, seed=1, method=method)
        assert a == assign_splits(list(reversed(groups)), FRACTIONS, seed=1, method=method)  # arrival order
        counts = Counter(a.values())
        assert abs(counts["train"] - 1600) <= tolerance and abs(counts["valid"] - 200) <= tolerance
        assert a != assign_splits(groups, FRACTIONS, seed=2, method=method)


def test_hash_splits_never_move_a_group_when_others_are_added():
    groups = [(f"pack:{i}", 10.0 + i % 7) for i in range(300)]
    before = assign_splits(groups, FRACTIONS, seed=3)
    after = assign_splits(groups + [(f"new:{i}", 50.0) for i in range(40)], FRACTIONS, seed=3)
    assert all(after[g] == s for g, s in before.items())


def test_balanced_splits_weight_groups_by_duration():
    groups = [("big", 800.0)] + [(f"g{i}", 10.0) for i in range(20)]
    a = assign_splits(groups, FRACTIONS, seed=5, method="balanced")
    seconds = Counter()
    for g, w in groups:
        seconds[a[g]] += w
    assert set(a.values()) == {"train", "valid", "test"}
    assert seconds["train"] >= 800


def test_every_split_gets_a_group_when_possible():
    a = assign_splits([("a", 1), ("b", 1), ("c", 1)], FRACTIONS, seed=0)
    assert sorted(a.values()) == ["test", "train", "valid"]


def test_adding_a_group_moves_few_others():
    groups = [(f"pack:{i}", 10.0) for i in range(100)]
    before = assign_splits(groups, FRACTIONS, seed=3)
    after = assign_splits([*groups, ("pack:new", 10.0)], FRACTIONS, seed=3)
    moved = [g for g in before if before[g] != after[g]]
    assert len(moved) <= 3


def test_snippet_windows():
    assert snippet_starts(10_000, 3000, 3000) == [0, 3000, 6000]
    assert snippet_starts(10_000, 3000, 1500) == [0, 1500, 3000, 4500, 6000]
    assert snippet_starts(2999, 3000, 3000) == []


SPEC = parse_spec({"name": "p", "seed": 4, "sources": [{"kind": "folder", "path": "x"}],
                   "snippets": {"duration": 1.0, "min_rms_db": -50},
                   "augment": {"variants": 3, "chain": [{"op": "gain", "p": 0.5, "db": [-6, 6]}]}})


def clip(split="train", seconds=3.5, levels=None):
    blocks = int(seconds * 10) + 1
    return Clip(clip_id="folder:a.wav", uri="/x/a.wav", relpath="a.wav", source="folder", split=split,
                sha256="00", sample_rate=8000, channels=1, frames=int(seconds * 8000),
                block_rms_db=tuple(levels or [-20.0] * blocks), labels={"tags": ["piano"]})


def test_train_clips_get_originals_and_variants_with_drawn_parameters():
    rows = plan_clip(clip("train"), SPEC)
    assert len(rows) == 3 * 4  # 3 windows x (original + 3 variants)
    assert {r.key for r in rows} == {sample_key("folder:a.wav", s, v) for s in (0, 1000, 2000) for v in range(4)}
    originals = [r for r in rows if r.variant == 0]
    assert all(r.augment == () for r in originals)
    drawn = [step for r in rows if r.variant > 0 for step in r.augment]
    assert drawn and all(-6 <= s["db"] <= 6 and s["op"] == "gain" for s in drawn)
    again = plan_clip(clip("train"), SPEC)
    assert [r.augment for r in rows] == [r.augment for r in again]


def test_valid_clips_stay_clean():
    rows = plan_clip(clip("valid"), SPEC)
    assert [r.variant for r in rows] == [0, 0, 0]


def test_silent_windows_are_skipped_and_silent_clips_rejected():
    levels = [-90.0] * 10 + [-20.0] * 26
    assert usable_windows(clip(levels=levels), SPEC) == ([1000, 2000], None)
    assert {r.start_ms for r in plan_clip(clip(levels=levels), SPEC)} == {1000, 2000}
    starts, reject = usable_windows(clip(levels=[-200.0] * 36), SPEC)
    assert starts == [] and reject.reason == "silent"
    starts, reject = usable_windows(clip(seconds=0.5), SPEC)
    assert starts == [] and reject.reason == "too_short"


def fake_hashes(n, salt=0):
    return [digest128(f"clip:{i + salt}/0/0", SHARD_SALT) for i in range(n)]


@pytest.mark.parametrize("n, cap", [(1, 8), (8, 8), (9, 8), (100, 7), (1000, 64)])
def test_balanced_shards_hold_equal_counts_within_the_cap(n, cap):
    hashes = fake_hashes(n)
    bounds = shard_boundaries(hashes, cap, "balanced")
    counts = Counter(shard_index(h, bounds) for h in hashes)
    assert len(bounds) == -(-n // cap)
    assert max(counts.values()) <= cap and max(counts.values()) - min(counts.values()) <= 1
    assert sorted(counts) == list(range(len(bounds)))
    assert shard_boundaries(reversed(hashes), cap, "balanced") == bounds


@pytest.mark.parametrize("n, cap", [(1, 8), (9, 8), (100, 7), (1000, 64)])
def test_stable_shards_are_power_of_two_ranges_within_the_cap(n, cap):
    hashes = fake_hashes(n)
    bounds = shard_boundaries(hashes, cap)
    assert len(bounds) & (len(bounds) - 1) == 0  # a power of two
    counts = Counter(shard_index(h, bounds) for h in hashes)
    assert max(counts.values()) <= cap and sum(counts.values()) == n
    assert bounds == shard_boundaries(reversed(hashes), cap)


@pytest.mark.parametrize("n, cap", [(1, 8), (9, 8), (100, 7), (1000, 64), (20_000, 16), (300, 1)])
def test_stable_ranges_from_counts_per_bin_are_the_ranges_from_the_hashes(n, cap):
    """What the keyed plan computes (samples counted per 2^20 hash range, no hashes gathered) is exactly
    what the hashes themselves give."""
    from mixtape.planning import hash_bin, stable_boundaries_from_counts

    hashes = fake_hashes(n)
    assert stable_boundaries_from_counts(Counter(hash_bin(h) for h in hashes), cap) == shard_boundaries(hashes, cap)
    assert stable_boundaries_from_counts({}, cap) == []


def test_a_split_too_big_for_the_counted_ranges_is_an_error_naming_the_fix():
    from mixtape.planning import stable_boundaries_from_counts

    with pytest.raises(ValueError, match=r"shards\.max_samples"):
        stable_boundaries_from_counts({0: 3}, 2, bits=4)  # 3 samples in one range of 1/16: no 2^4 cut fits


def test_adding_a_few_samples_moves_only_their_stable_ranges():
    before = fake_hashes(1000)
    after = before + fake_hashes(5, salt=10_000)
    b1, b2 = shard_boundaries(before, 64), shard_boundaries(after, 64)
    assert b1 == b2  # same ranges: shards untouched by the newcomers keep their exact membership
    touched = {shard_index(h, b2) for h in after[1000:]}
    assert len(touched) <= 5 < len(b2)
    balanced_before = shard_boundaries(before, 64, "balanced")
    balanced_after = shard_boundaries(after, 64, "balanced")
    moved = sum(1 for a, b in zip(balanced_before, balanced_after, strict=False) if a != b)
    assert moved > 5  # why stable is the default: balanced cuts shift for everything after an insertion


def test_shard_pattern_uses_braces_only_without_gaps():
    from mixtape.planning import shard_pattern

    assert shard_pattern("D", ["train-000000.tar", "train-000001.tar", "train-000002.tar"]) == \
        "D/train-{000000..000002}.tar"
    assert shard_pattern("D", ["train-000000.tar", "train-000002.tar"]) == "D/train-000000.tar D/train-000002.tar"


def test_spread_caps_windows_evenly_and_keeps_the_ends():
    from mixtape.planning import spread

    items = list(range(0, 3600))
    capped = spread(items, 20)
    assert len(capped) == 20 and capped[0] == 0 and capped[-1] == 3599
    assert spread(items, 0) == items and spread([5, 6], 20) == [5, 6] and spread(items, 1) == [1800]
    assert capped == sorted(set(capped))


def test_kept_labels_give_the_same_audio_plan_with_the_clean_labels():
    """`augment.labels: keep` (the labels-not-transformed condition) draws the same parameters for the same
    keys, so the audio is the same; only the labels stay the clean window's."""
    chain = {"variants": 2, "chain": [{"op": "pitch_shift", "p": 1.0, "semitones": [2, 2]},
                                      {"op": "time_stretch", "p": 1.0, "rate": [1.25, 1.25]}]}
    base = {"name": "p", "seed": 4, "sources": [{"kind": "folder", "path": "x"}],
            "snippets": {"duration": 1.0, "min_rms_db": -50}}
    aware = parse_spec({**base, "augment": chain})
    kept = parse_spec({**base, "augment": {**chain, "labels": "keep"}})
    assert aware.to_dict()["augment"].get("labels") is None  # the default stays out of the spec hash
    assert kept.spec_hash != aware.spec_hash
    c = Clip(clip_id="folder:a.wav", uri="/x/a.wav", relpath="a.wav", source="folder", split="train",
             sha256="00", sample_rate=8000, channels=1, frames=4 * 8000, block_rms_db=(-20.0,) * 41,
             labels={"tags": ["piano"], "classes": {}, "key": {"tonic": "C", "mode": "major"}, "tempo": 100.0,
                     "extra": {}})
    a, k = plan_clip(c, aware), plan_clip(c, kept)
    assert [(r.key, r.augment, r.src_start_ms, r.src_duration_ms) for r in a] == \
        [(r.key, r.augment, r.src_start_ms, r.src_duration_ms) for r in k]
    moved = [r for r in a if r.variant > 0]
    assert moved and all(r.labels["key"] == {"tonic": "D", "mode": "major"} and r.labels["tempo"] == 125.0
                         for r in moved)
    assert all(r.labels["key"] == {"tonic": "C", "mode": "major"} and r.labels["tempo"] == 100.0 for r in k)
    with pytest.raises(SpecError, match=r"augment\.labels"):
        parse_spec({**base, "augment": {**chain, "labels": "guess"}})

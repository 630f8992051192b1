"""The plan phase as pure functions: splits by group, snippet windows, variants, shard boundaries.

Beam composes these in ``mixtape.pipelines``; keeping them free of Beam makes every ordering and random
choice testable on its own, and guarantees they depend only on keys, the seed and the spec.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from mixtape.audio import window_rms_db
from mixtape.augment import apply_chain_labels, draw_chain
from mixtape.augment.label_transforms import window as window_labels
from mixtape.augment.ops import Context, get_op, warp_params
from mixtape.dataset.names import shard_name
from mixtape.hashing import SHARD_SALT, SPLIT_SALT, digest128, rng_for, unit_interval
from mixtape.records import Clip, ClipWindow, PlanRow, Reject
from mixtape.spec import DatasetSpec

# ------------------------------------------------------------------------------------------------ splits

#: How plans are made, beyond the spec: recorded in the card, so an incremental build after a change here
#: renders everything once. 2: mix partners and impulse responses are picked by consistent hashing.
PLAN_VERSION = 2
#: Sample hashes are 128-bit: positions in that space are compared as 32 hex digits.
HASH_SPACE = 1 << 128


SPLIT_METHODS = ("hash", "balanced")


def assign_splits(group_weights: Iterable[tuple[str, float]], fractions: Sequence[tuple[str, float]],
                  seed: int, method: str = "hash") -> dict[str, str]:
    """Map each group to a split.

    ``hash`` (default): a group's split follows from a seeded hash of its name alone, so adding or removing
    other groups never moves it (incremental rebuilds stay incremental); the shares match the fractions
    on average, by group count. ``balanced``: groups laid out in hash order, each spanning its seconds of
    audio, go to the split whose interval holds their midpoint, so the shares of audio come out close to
    the fractions even with few groups, but an added group shifts those after it and can move the ones
    next to a boundary. Either way every split gets at least one group when there are enough groups.
    """
    groups = sorted(((digest128(f"{seed}\x00{g}", SPLIT_SALT), g, max(float(w), 1e-9))
                     for g, w in group_weights))
    if not groups:
        return {}
    total = sum(w for _, _, w in groups)
    names = [n for n, _ in fractions]
    edges, acc = [], 0.0
    for _, f in fractions:
        acc += f
        edges.append(acc)
    edges[-1] = 1.0 + 1e-12
    assignment: dict[str, str] = {}
    cum = 0.0
    for h, g, w in groups:
        position = unit_interval(h) if method == "hash" else (cum + w / 2) / total
        assignment[g] = names[min(bisect.bisect_right(edges, position), len(names) - 1)]
        cum += w
    # Guarantee non-empty splits: an empty split takes the group whose weight is closest to its target
    # share, from a split that keeps at least one group (ties broken by the seeded hash order).
    weights = {g: w for _, g, w in groups}
    for (name, fraction) in fractions:
        if name in assignment.values() or len(groups) < len(names):
            continue
        counts = Counter(assignment.values())
        candidates = [(abs(weights[g] - fraction * total), h, g) for h, g, _ in groups
                      if counts[assignment[g]] > 1]
        if candidates:
            assignment[min(candidates)[2]] = name
    return assignment


# ------------------------------------------------------------------------------------------------ snippets


def snippet_starts(duration_ms: int, snippet_ms: int, hop_ms: int) -> list[int]:
    """Start times (ms) of every full window inside a clip."""
    if duration_ms < snippet_ms:
        return []
    return list(range(0, duration_ms - snippet_ms + 1, hop_ms))


def sample_key(clip_id: str, start_ms: int, variant: int) -> str:
    return f"{clip_id}/{start_ms}/{variant}"


def usable_windows(clip: Clip, spec: DatasetSpec) -> tuple[list[int], Reject | None]:
    """Start times of the clip's windows loud enough to use, or the reason it has none.

    Decided before splits are assigned, so a clip that will yield nothing never takes a split's place.
    """
    sn = spec.snippets
    starts = snippet_starts(clip.duration_ms, sn.duration_ms, sn.hop_ms)
    if not starts:
        return [], Reject(clip.clip_id, clip.relpath, "snippets", "too_short",
                          f"{clip.duration_ms / 1000:.3f} s is shorter than one {sn.duration:g} s snippet")
    loud = [s for s in starts if window_rms_db(clip.block_rms_db, s, sn.duration_ms) >= sn.min_rms_db]
    if not loud:
        return [], Reject(clip.clip_id, clip.relpath, "snippets", "silent",
                          f"all {len(starts)} windows are below {sn.min_rms_db:g} dBFS")
    return spread(loud, sn.max_per_clip), None


def spread(items: list[int], limit: int) -> list[int]:
    """At most ``limit`` items (0 = all), evenly spaced from first to last: a long recording contributes a
    bounded number of snippets that still cover all of it, and the choice needs no randomness."""
    if not limit or len(items) <= limit:
        return items
    if limit == 1:
        return [items[len(items) // 2]]
    return [items[round(i * (len(items) - 1) / (limit - 1))] for i in range(limit)]


MIX_POOL = "__mix_with__"
IR_POOL = "__impulse_responses__"


def snippet_ref(clip: Clip, start_ms: int, duration_ms: int) -> dict[str, Any]:
    """Where to read one window of a clip (and its labels there): what a mixing partner or an impulse
    response is to the sample that borrows it."""
    where = ClipWindow(clip.clip_id, clip.uri, clip.sha256, start_ms, duration_ms, clip.offset_frames,
                       clip.window_length_frames, clip.synth or {})
    return {
        **where.to_dict(), "source": clip.source, "relpath": clip.relpath,
        "labels": window_labels(clip.labels, start_ms / 1000, duration_ms / 1000),
        "hash": digest128(f"{clip.clip_id}/{start_ms}", SHARD_SALT),
        "licence": clip.licence, "attribution": clip.attribution,
    }


def pool_refs(clip: Clip, spec: DatasetSpec, whole: bool = False) -> list[dict[str, Any]]:
    """The clean windows a clip offers as mixing material (or the whole clip, for an impulse response)."""
    if whole:
        return [snippet_ref(clip, 0, clip.duration_ms)]
    loud, _ = usable_windows(clip, spec)
    return [snippet_ref(clip, s, spec.snippets.duration_ms) for s in loud]


def pick(pool: Sequence[dict[str, Any]], u: float, avoid_clip: str) -> dict[str, Any] | None:
    """The pool entry (the pool is sorted by hash) whose hash is the first at or after ``u`` of the hash
    space, wrapping round, stepping past the sample's own clip: consistent hashing, so adding a candidate
    changes only the rows whose draw falls between it and the candidate before it (picking by position in
    the pool, as plan version 1 did, moved every row after a newcomer to another partner)."""
    if not pool:
        return None
    target = f"{min(int(u * HASH_SPACE), HASH_SPACE - 1):032x}"
    start = bisect.bisect_left(pool, target, key=lambda r: r["hash"]) % len(pool)
    for i in range(len(pool)):
        ref = pool[(start + i) % len(pool)]
        if ref["clip_id"] != avoid_clip:
            return ref
    return None


def source_window(start_ms: int, duration_ms: int, rate: float, clip_ms: int) -> tuple[int, int]:
    """The stretch of the clip a variant is made from: ``duration * rate`` long, starting at the window
    unless that runs past the clip's end (then it ends there)."""
    need = round(duration_ms * rate)
    return max(0, min(start_ms, clip_ms - need)), need


def _resolve_material(chain: list[dict[str, Any]], pools: Mapping[str, Sequence[dict[str, Any]]], clip: Clip,
                      spec: DatasetSpec) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Pick each mix partner / impulse response; record which in the step. A mix with no partner to be had
    is dropped from the chain (and a reverb with no impulse response stays synthetic)."""
    steps: list[dict[str, Any]] = []
    material: list[dict[str, Any]] = []
    for step in chain:
        step = dict(step)
        need = get_op(step["op"]).needs
        if need == "partner":
            pool = pools.get(MIX_POOL if spec.augment.mix_with else clip.split, ())
            ref = pick(pool, step.pop("pick"), clip.clip_id)
            if ref is None:
                continue
            step["partner"] = f"{ref['clip_id']}/{ref['start_ms']}"
            material.append({**ref, "step": len(steps), "role": "partner"})
        elif need == "ir":
            u = step.pop("pick")
            ref = pick(pools.get(IR_POOL, ()), u, clip.clip_id) if spec.augment.impulse_responses else None
            if ref is not None:
                step["ir"] = ref["clip_id"]
                material.append({**ref, "step": len(steps), "role": "ir"})
        steps.append(step)
    return steps, material


def plan_clip(clip: Clip, spec: DatasetSpec, pools: Mapping[str, Sequence[dict[str, Any]]] | None = None
              ) -> list[PlanRow]:
    """Every sample of one clip with a split: usable windows x variants, parameters drawn per key, mixing
    partners and impulse responses resolved from ``pools`` (clean windows by split, material sources)."""
    pools = pools or {}
    loud, _ = usable_windows(clip, spec)
    sn = spec.snippets
    aug = spec.augment
    augmented = clip.split in aug.splits and aug.variants > 0
    variants = ([0] if (aug.keep_original or not augmented) else []) + (
        list(range(1, aug.variants + 1)) if augmented else [])
    rows = []
    for start in loud:
        for v in variants:
            key = sample_key(clip.clip_id, start, v)
            chain = draw_chain(aug.chain, rng_for(spec.seed, key, "augment")) if v > 0 else []
            chain, material = _resolve_material(chain, pools, clip, spec)
            rate, _ = warp_params(chain)
            src_start, src_duration = source_window(start, sn.duration_ms, rate, clip.duration_ms)
            labels = window_labels(clip.labels, src_start / 1000, src_duration / 1000)
            partner = next((m for m in material if m["role"] == "partner"), None)
            ctx = Context(partner_labels=partner["labels"] if partner else {})
            rows.append(PlanRow(
                key=key,
                hash=digest128(key, SHARD_SALT),
                split=clip.split,
                clip_id=clip.clip_id,
                uri=clip.uri,
                sha256=clip.sha256,
                start_ms=start,
                duration_ms=sn.duration_ms,
                variant=v,
                augment=tuple(chain),
                labels=apply_chain_labels(labels, chain, ctx) if aug.labels == "transform" else labels,
                licence=clip.licence,
                attribution=clip.attribution,
                source=clip.source,
                relpath=clip.relpath,
                offset_frames=clip.offset_frames,
                length_frames=clip.window_length_frames,
                src_start_ms=src_start,
                src_duration_ms=src_duration,
                material=tuple(material),
                synth=clip.synth,
            ))
    return rows


# ------------------------------------------------------------------------------------------------ shards


SCHEMES = ("stable", "balanced")
_SPACE = 1 << 128


def shard_boundaries(hashes: Iterable[str], max_samples: int, scheme: str = "stable") -> list[str]:
    """Lower hash bound of each shard of one split. Membership depends only on keys either way.

    ``stable``: the hash space cut into 2^k equal ranges, k the smallest for which no range holds more than
    ``max_samples``. Adding or removing a few samples changes only the ranges they fall in (and k only
    when the fullest range crosses the cap), so incremental rebuilds re-render few shards; shards hold
    roughly 35-70% of the cap, and a sparse split can leave a range (and its shard number) empty.
    ``balanced``: ``ceil(n / max)`` shards of equal count, cut at hash quantiles; every shard full, but
    one added sample can move every boundary after it.
    """
    ordered = sorted(hashes)
    if not ordered:
        return []
    if scheme == "balanced":
        n_shards = -(-len(ordered) // max_samples)
        starts = [len(ordered) * k // n_shards for k in range(n_shards)]
        return ["0" * 32] + [ordered[i] for i in starts[1:]]
    return stable_boundaries_from_counts(Counter(hash_bin(h) for h in ordered), max_samples)


#: The finest hash ranges the keyed plan counts samples in (2^20 per split): the stable scheme's ranges
#: are found from these counts, so no worker ever holds a split's hashes, and a split can have up to
#: 2^20 shards (about 130 M samples at 256 per shard) before it needs a finer count.
COUNT_BITS = 20


def hash_bin(hash_hex: str, bits: int = COUNT_BITS) -> int:
    """Which of the 2^bits equal hash ranges a sample's hash falls in (its top ``bits`` bits)."""
    return int(hash_hex, 16) >> (128 - bits)


def stable_boundaries_from_counts(counts: Mapping[int, int], max_samples: int, bits: int = COUNT_BITS) -> list[str]:
    """The ``stable`` scheme's boundaries from samples counted per 2^bits hash range, the one place the rule
    is written: the keyed plan counts without gathering a split's hashes (its counts are at most 2^bits small
    integers, however many samples it holds), and :func:`shard_boundaries` counts the hashes it is given."""
    total = sum(counts.values())
    if total == 0:
        return []
    level = (-(-total // max_samples) - 1).bit_length()  # the first level whose mean range fits
    while True:
        fullest: Counter[int] = Counter()
        for b, c in counts.items():
            fullest[b >> (bits - level)] += c
        if max(fullest.values()) <= max_samples:
            return [f"{k * _SPACE // (1 << level):032x}" for k in range(1 << level)]
        level += 1
        if level > bits:
            raise ValueError(f"a split of {total:,} samples needs more than 2^{bits} shards of at most "
                             f"{max_samples}: raise shards.max_samples")


def shard_index(hash_hex: str, boundaries: Sequence[str]) -> int:
    return bisect.bisect_right(boundaries, hash_hex) - 1


def shard_pattern(base: str, names: list[str]) -> str:
    """Shard URLs for a trainer: one brace range when the numbers run without gaps, else a list."""
    by_split: dict[str, list[int]] = {}
    for n in names:
        split, _, number = n[: -len(".tar")].rpartition("-")
        by_split.setdefault(split, []).append(int(number))
    patterns = []
    for split, numbers in sorted(by_split.items()):
        numbers.sort()
        if numbers == list(range(numbers[0], numbers[-1] + 1)) and len(numbers) > 1:
            patterns.append(f"{base}/{split}-{{{numbers[0]:06d}..{numbers[-1]:06d}}}.tar")
        else:
            patterns += [f"{base}/{shard_name(split, i)}" for i in numbers]
    return " ".join(patterns)


def assign_shard(row: PlanRow, boundaries: dict[str, list[str]]) -> PlanRow:
    return replace(row, shard=shard_name(row.split, shard_index(row.hash, boundaries[row.split])))

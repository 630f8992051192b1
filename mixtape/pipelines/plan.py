"""The plan phase in Beam: splits by group, snippet windows and variants, hash-range shard assignment.

Only small metadata rows move here; audio never crosses a shuffle.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam import pvalue

from mixtape.audio import window_rms_db
from mixtape.augment.label_transforms import TIMED_FIELDS
from mixtape.pipelines.progress import tally
from mixtape.planning import (
    IR_POOL,
    MIX_POOL,
    assign_shard,
    assign_splits,
    hash_bin,
    plan_clip,
    pool_refs,
    shard_boundaries,
    stable_boundaries_from_counts,
    usable_windows,
)
from mixtape.records import Clip, Reject
from mixtape.spec import DatasetSpec

REJECTS = "rejects"
USED = "used"


def _with_split(clip: Clip, table: dict[str, str], group_by: str) -> Clip:
    return replace(clip, split=table[clip.group(group_by)])


def _eligible(clip: Clip, spec: DatasetSpec) -> Iterator:
    """Clips that will yield samples, decided before any split is assigned."""
    if spec.splits.group_by == "fold":
        if not clip.fold:
            yield pvalue.TaggedOutput(REJECTS, Reject(clip.clip_id, clip.relpath, "splits", "no_fold",
                                                      "splits.group_by is fold but this clip has no fold"))
            return
        if spec.splits.split_of_fold(clip.fold) is None:
            yield pvalue.TaggedOutput(REJECTS, Reject(
                clip.clip_id, clip.relpath, "splits", "fold_not_in_splits",
                f"fold {clip.fold!r} is in no split of splits.folds"))
            return
    _, reject = usable_windows(clip, spec)
    yield clip if reject is None else pvalue.TaggedOutput(REJECTS, reject)


def used_row(clip: Clip, samples: int, role: str = "sample") -> dict[str, Any]:
    """What the card keeps of a clip that went into the dataset (as samples or as material)."""
    # time-stamped labels (a score's every note) stay out: the manifest gathers these rows in one place
    labels = {k: v for k, v in clip.labels.items() if k not in TIMED_FIELDS}
    return {
        "clip_id": clip.clip_id, "split": clip.split, "labels": labels, "seconds": clip.frames /
        clip.sample_rate, "sha256": clip.sha256, "title": clip.title, "uploader": clip.uploader or clip.artist,
        "licence": clip.licence, "url": clip.url, "relpath": clip.relpath, "samples": samples,
        **({"credits": clip.credits} if clip.credits else {}),
        "source": clip.source, "sample_rate": clip.sample_rate, "channels": clip.channels,
        "bit_depth": clip.bit_depth, "peak_db": clip.peak_db, "role": role,
        "loudness_db": round(window_rms_db(clip.block_rms_db, 0, clip.duration_ms), 2)}


class _MaterialOrSample(beam.PartitionFn):
    """Partition 1 for clips of a material source (mix partners, impulse responses), 0 for samples."""

    def __init__(self, material_names: tuple[str, ...]):
        super().__init__()
        self.material_names = material_names

    def partition_for(self, element: Any, num_partitions: int, *args: Any, **kwargs: Any) -> int:
        return 1 if element.source in self.material_names else 0


def _sorted_pool(kv: tuple[str, Iterable[dict[str, Any]]]) -> tuple[str, list[dict[str, Any]]]:
    key, refs = kv
    return key, sorted(refs, key=lambda r: r["hash"])


class PlanClipSamples(beam.DoFn):
    def __init__(self, spec: DatasetSpec):
        self.spec = spec

    def process(self, clip: Clip, pools: dict[str, list[dict[str, Any]]]) -> Iterator:
        rows = plan_clip(clip, self.spec, pools)
        yield pvalue.TaggedOutput(USED, used_row(clip, len(rows)))
        yield from rows


class MaterialClips(beam.DoFn):
    """Clips of the material sources: their pool entries (keyed by pool) and their used rows."""

    def __init__(self, spec: DatasetSpec):
        self.spec = spec

    def process(self, clip: Clip) -> Iterator:
        aug = self.spec.augment
        role = "impulse_response" if clip.source == aug.impulse_responses else "mix_with"
        if role == "mix_with":
            refs = pool_refs(clip, self.spec)
            if not refs:
                _, reject = usable_windows(clip, self.spec)
                yield pvalue.TaggedOutput(REJECTS, reject)
                return
        else:
            refs = pool_refs(clip, self.spec, whole=True)
        key = IR_POOL if role == "impulse_response" else MIX_POOL
        for ref in refs:
            yield key, ref
        yield pvalue.TaggedOutput(USED, used_row(clip, 0, role))


class Planned(NamedTuple):
    """What the plan phase hands on."""

    rows: pvalue.PCollection  # of PlanRow, each with its shard assigned
    rejects: pvalue.PCollection  # of Reject: clips with no usable window, material that cannot be used
    used: pvalue.PCollection  # of dict: one summary row per clip used (as samples or as material)


class Plan(beam.PTransform):
    """Probed clips -> every sample to render, with its split, window, drawn augmentation parameters,
    partner and shard: metadata only, so a plan of millions of samples stays cheap to move."""

    def __init__(self, spec: DatasetSpec, progress_dir: str | None = None):
        super().__init__()
        self.spec = spec
        #: where a local build's progress tallies go (None: none kept)
        self.progress_dir = progress_dir

    def expand(self, probed: pvalue.PCollection) -> Planned:
        spec = self.spec
        material_names = spec.augment.material_sources
        dataset_clips, material_clips = probed | "MaterialOrSamples" >> beam.Partition(
            _MaterialOrSample(material_names), 2)  # Clip, Clip
        checked = dataset_clips | "Eligible" >> beam.FlatMap(_eligible, spec).with_outputs(REJECTS, main="clips")
        clips = checked.clips  # Clip with at least one usable window
        if spec.splits.group_by == "fold":
            with_split = clips | "SplitFromFold" >> beam.Map(
                lambda c: replace(c, split=spec.splits.split_of_fold(c.fold)))
        else:
            with_split = self._split_by_group(clips)  # Clip with .split
        material = material_clips | "Material" >> beam.ParDo(MaterialClips(spec)).with_outputs(
            REJECTS, USED, main="refs")  # (pool name, window reference dict)
        pool_parts = [material.refs]
        if any(o.op == "mix" for o in spec.augment.chain) and not spec.augment.mix_with:
            # partners come from the sample's own split, never across splits
            pool_parts.append(with_split | "SplitPools" >> beam.FlatMap(
                lambda c: [(c.split, ref) for ref in pool_refs(c, spec)]))
        pools = (pool_parts
                 | "AllPoolRefs" >> beam.Flatten()  # (pool: a split or a material pool, reference dict)
                 | "GroupPools" >> beam.GroupByKey()
                 | "SortPools" >> beam.Map(_sorted_pool))  # (pool, [reference dict, ...] sorted by hash)
        planned = with_split | "PlanSamples" >> beam.ParDo(
            PlanClipSamples(spec), beam.pvalue.AsDict(pools)).with_outputs(USED, main="rows")  # PlanRow, no shard
        boundaries = self._boundaries(planned.rows)  # (split, [lower hash bound of each shard])
        rows = tally(planned.rows | "AssignShard" >> beam.Map(assign_shard, beam.pvalue.AsDict(boundaries)),
                     "CountPlanned", self.progress_dir, "planned")
        if self.progress_dir is not None:  # how many shards there will be, for "rendered N of M"
            _ = tally(rows | "ShardNames" >> beam.Map(lambda r: r.shard) | "DistinctShards" >> beam.Distinct(),
                      "CountShards", self.progress_dir, "shards")
        rejects = (checked[REJECTS], material[REJECTS]) | "PlanRejects" >> beam.Flatten()
        used = (planned[USED], material[USED]) | "AllUsed" >> beam.Flatten()
        return Planned(rows=rows, rejects=rejects, used=used)

    def _boundaries(self, rows: pvalue.PCollection) -> pvalue.PCollection:
        """Each split's shard boundaries. ``stable`` ranges come from samples counted per fine hash range, a
        keyed combine, so no worker holds a split's hashes; ``balanced`` cuts at exact hash quantiles, which
        needs every hash of a split in one place (about 40 B a sample: fine to tens of millions)."""
        shards = self.spec.shards
        if shards.scheme == "balanced":
            return (rows
                    | "SplitHash" >> beam.Map(lambda r: (r.split, r.hash))  # (split, 128-bit hex digest)
                    | "HashesPerSplit" >> beam.GroupByKey()
                    | "Boundaries" >> beam.MapTuple(lambda split, hashes: (
                        split, shard_boundaries(hashes, shards.max_samples, shards.scheme))))
        return (rows
                | "SplitBin" >> beam.Map(lambda r: ((r.split, hash_bin(r.hash)), 1))  # ((split, bin), 1)
                | "CountPerBin" >> beam.CombinePerKey(sum)  # ((split, bin), samples)
                | "BinPerSplit" >> beam.MapTuple(lambda split_bin, n: (split_bin[0], (split_bin[1], n)))
                | "CountsPerSplit" >> beam.GroupByKey()  # (split, [(bin, samples), ...]): at most 2^20
                | "Boundaries" >> beam.MapTuple(lambda split, counts: (
                    split, stable_boundaries_from_counts(dict(counts), shards.max_samples))))

    def _split_by_group(self, clips: pvalue.PCollection) -> pvalue.PCollection:
        """Clips -> clips with their split, assigned per group from every group's total duration."""
        spec = self.spec
        group_by = spec.splits.group_by
        split_table = (clips
                       # integer milliseconds: an exact sum whatever order bundles arrive in
                       | "GroupMillis" >> beam.Map(lambda c: (c.group(group_by), c.duration_ms))
                       | "SumPerGroup" >> beam.CombinePerKey(sum)  # (group, milliseconds)
                       | "AllGroups" >> beam.combiners.ToList()  # one list of every group
                       | "AssignSplits" >> beam.Map(assign_splits, spec.splits.fractions, spec.seed,
                                                    spec.splits.method))
        return clips | "AttachSplit" >> beam.Map(_with_split, beam.pvalue.AsSingleton(split_table), group_by)

"""The dataset card (``dataset.json``), ``index.parquet`` and ``rejects.parquet``.

The card is the lockfile: everything needed to rebuild and verify, and nothing that differs between two
runs of the same build (runner, wall time and host go to ``build.json`` instead).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq

from mixtape import storage
from mixtape.dataset.index import INDEX_SCHEMA, augmentation_summary
from mixtape.dataset.names import (
    CARD_NAME,
    CLIPS_NAME,
    INDEX_NAME,
    PARTS_DIR,
    PLAN_NAME,
    REJECTS_NAME,
    is_scratch_part,
)
from mixtape.hashing import canonical_json, sha256_hex
from mixtape.labels import build_vocabularies
from mixtape.records import Reject
from mixtape.spec import DatasetSpec
from mixtape.versions import package_versions

CARD_FORMAT = "mixtape-dataset/1"
PLAN_SCHEMA = pa.schema([("shard", pa.string()), ("order", pa.int32()), ("key", pa.string()), ("record", pa.string())])
REJECTS_SCHEMA = pa.schema([("clip_id", pa.string()), ("path", pa.string()), ("stage", pa.string()),
                            ("reason", pa.string()), ("detail", pa.string())])
#: One row per clip used (as samples or as augmentation material): what reports and audits aggregate over
#: without opening a shard.
CLIPS_SCHEMA = pa.schema([
    ("clip_id", pa.string()), ("split", pa.string()), ("role", pa.string()), ("source", pa.string()),
    ("seconds", pa.float64()), ("sample_rate", pa.int32()), ("channels", pa.int32()), ("bit_depth", pa.int32()),
    ("peak_db", pa.float64()), ("loudness_db", pa.float64()), ("samples", pa.int32()), ("licence", pa.string()),
    ("title", pa.string()), ("uploader", pa.string()), ("url", pa.string())])


def _parquet_bytes(rows: list[dict[str, Any]], schema: pa.Schema) -> bytes:
    return _table_bytes(pa.Table.from_pylist(rows, schema=schema))


def make_card(spec: DatasetSpec, shards: list[dict], used: list[dict], rejects: list[Reject],
              augment_ops: Iterable[Iterable[str] | None] = ()) -> dict[str, Any]:
    """The card from the build's outputs, sorted so it depends on nothing but their content."""
    used = sorted(used, key=lambda u: u["clip_id"])
    rejects = sorted(rejects, key=lambda r: (r.clip_id, r.stage, r.reason, r.path))
    clips_in = len(used) + len(rejects)
    splits: dict[str, Any] = {}
    for name in spec.split_names:
        members = sorted((s for s in shards if s["split"] == name), key=lambda s: s["name"])
        clips = [u for u in used if u["split"] == name]
        splits[name] = {
            "samples": sum(s["samples"] for s in members),
            "clips": len(clips),
            "source_seconds": round(sum(u["seconds"] for u in clips), 3),
            "sample_seconds": round(sum(s["samples"] for s in members) * spec.snippets.duration, 3),
            "shards": [{k: s[k] for k in ("name", "samples", "bytes", "sha256", "hash_range", "plan_hash")}
                       for s in members],
        }
    inputs = [{"clip_id": u["clip_id"], "sha256": u["sha256"]} for u in used]
    per_source = {}
    for src in spec.sources:
        src_rejects = [r for r in rejects if r.clip_id.split(":", 1)[0] == src.name]
        per_source[src.name] = {
            "kind": src.kind,
            "clips_used": sum(1 for u in used if u["clip_id"].split(":", 1)[0] == src.name),
            "clips_rejected": len(src_rejects),
            "rejects_by_reason": dict(sorted(Counter(r.reason for r in src_rejects).items())),
        }
    return {
        "format": CARD_FORMAT,
        "name": spec.name,
        "version": spec.version,
        "spec": spec.to_dict(),
        "spec_hash": spec.spec_hash,
        "seed": spec.seed,
        "versions": package_versions(spec),
        "audio": {"sample_rate": spec.audio.sample_rate, "channels": spec.audio.channels,
                  "format": spec.audio.format, "snippet_seconds": spec.snippets.duration},
        "splits": splits,
        "vocabularies": build_vocabularies((u["labels"] for u in used if u.get("role", "sample") == "sample"),
                                           spec.labels.tag_min_count),
        "augmentation": augmentation_summary(augment_ops),
        "features": ({"logmel": spec.logmel.card(spec.audio.sample_rate, spec.snippets.duration_ms *
                                                 spec.audio.sample_rate // 1000)} if spec.logmel else {}),
        "accounting": {
            "clips_in": clips_in,
            "clips_used": len(used),
            "clips_rejected": len(rejects),
            "rejects_by_reason": dict(sorted(Counter(r.reason for r in rejects).items())),
            "by_source": per_source,
        },
        "inputs": {"sha256": sha256_hex(canonical_json(inputs).encode()), "clips": inputs},
        "attribution": [{"clip_id": u["clip_id"], "title": u["title"], "author": u["uploader"],
                         "licence": u["licence"], "url": u["url"], **({"credits": u["credits"]} if u.get("credits")
                                                                      else {})} for u in used],
        "files": {"index": INDEX_NAME, "rejects": REJECTS_NAME, "plan": PLAN_NAME, "clips": CLIPS_NAME},
    }


# Arrow's default allocator (mimalloc / jemalloc) keeps freed memory for reuse; a build touches Arrow only to
# write and join tables, so the process's peak would keep what the biggest table needed. The system allocator
# gives it back: bench/memory.py measured peak RSS x1.27 -> x1.19 for 10x the clips.
pa.set_memory_pool(pa.system_memory_pool())

def part_uri(out_dir: str, shard: str, kind: str) -> str:
    return storage.join(out_dir, PARTS_DIR, f"{shard}.{kind}.parquet")


def write_part(out_dir: str, shard: str, kind: str, rows: list[dict[str, Any]]) -> None:
    """One shard's index or plan rows, beside the shards: the manifest then never holds every row of the
    dataset as Python objects, only compact Arrow columns."""
    schema = INDEX_SCHEMA if kind == "index" else PLAN_SCHEMA
    # scratch joined by the manifest and then removed; a build that dies is rebuilt from scratch: no fsync
    storage.write_bytes(part_uri(out_dir, shard, kind), _parquet_bytes(rows, schema), durable=False)


def _joined(out_dir: str, shards: list[str], kind: str) -> pa.Table:
    schema = INDEX_SCHEMA if kind == "index" else PLAN_SCHEMA
    tables = [storage.read_parquet(part_uri(out_dir, s, kind), schema=schema) for s in shards]
    return pa.concat_tables(tables) if tables else schema.empty_table()


def _table_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def remove_parts(out_dir: str) -> None:
    """Remove the parts folder's files (only those of the names render tasks write) and the folder."""
    folder = storage.join(out_dir, PARTS_DIR)
    for name in storage.list_dir(folder):
        if is_scratch_part(name):
            storage.delete(storage.join(folder, name))
    storage.remove_empty_dir(folder)


#: how a lost-samples failure is told apart from others in a runner's wrapped exception
SAMPLES_LOST = "mixtape: samples lost"


class SamplesLost(RuntimeError):
    """Fewer samples reached the shards than the plan made: the runner dropped some. No card is written."""


def check_nothing_lost(shards: list[dict], used: list[dict]) -> None:
    """Each used row carries how many samples the plan made of its clip; the shards say how many were
    written. A runner that drops elements (observed: Beam's multi-process DirectRunner at ~800k plan rows)
    must fail the build, not leave a dataset with holes that every later check would call complete."""
    planned = sum(int(u.get("samples") or 0) for u in used)
    written = sum(int(s.get("samples") or 0) for s in shards)
    if planned != written:
        raise SamplesLost(f"{SAMPLES_LOST}: the plan made {planned} samples, the runner delivered {written} to "
                          "the shards")


class WriteManifest(beam.DoFn):
    """Runs once, after every shard is written: index, plan, rejects and the card, each written atomically."""

    def __init__(self, spec: DatasetSpec, out_dir: str):
        self.spec = spec
        self.out_dir = out_dir

    def process(self, _: Any, shards: Iterable[dict], used: Iterable[dict], rejects: Iterable[Reject]
                ) -> Iterator[Any]:
        shards, used, rejects = list(shards), list(used), list(rejects)
        check_nothing_lost(shards, used)
        by_split = [s["name"] for s in sorted(shards, key=lambda s: (s["split"], s["name"]))]
        index = _joined(self.out_dir, by_split, "index")
        plan = _joined(self.out_dir, sorted(s["name"] for s in shards), "plan")
        card = make_card(self.spec, shards, used, rejects, index.column("augment_ops").to_pylist())
        acc = card["accounting"]
        if acc["clips_in"] != acc["clips_used"] + acc["clips_rejected"] or len({u["clip_id"] for u in used}) != len(
                used):
            raise AssertionError(f"accounting broken: {acc}")
        rej_rows = [r.__dict__ for r in sorted(rejects, key=lambda r: (r.clip_id, r.stage, r.reason, r.path))]
        storage.write_bytes(storage.join(self.out_dir, INDEX_NAME), _table_bytes(index))
        storage.write_bytes(storage.join(self.out_dir, PLAN_NAME), _table_bytes(plan))
        storage.write_bytes(storage.join(self.out_dir, REJECTS_NAME), _parquet_bytes(rej_rows, REJECTS_SCHEMA))
        clip_rows = [{k: u.get(k) for k in CLIPS_SCHEMA.names} for u in sorted(used, key=lambda u: u["clip_id"])]
        storage.write_bytes(storage.join(self.out_dir, CLIPS_NAME), _parquet_bytes(clip_rows, CLIPS_SCHEMA))
        storage.write_bytes(storage.join(self.out_dir, CARD_NAME),
                            (json.dumps(card, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode())
        remove_parts(self.out_dir)
        yield acc


class Manifest(beam.PTransform):
    """(shard infos, used-clip rows, rejects) -> nothing downstream: once every shard is written, the index,
    plan, clips and rejects tables and, last, the card."""

    def __init__(self, spec: DatasetSpec, out_dir: str):
        super().__init__()
        self.spec = spec
        self.out_dir = out_dir

    def expand(self, pcolls: tuple[beam.pvalue.PCollection, ...]) -> beam.pvalue.PCollection:
        shards, used, rejects = pcolls
        side = beam.pvalue.AsList
        return (shards.pipeline
                | "Once" >> beam.Create([None])
                | "WriteManifest" >> beam.ParDo(WriteManifest(self.spec, self.out_dir), side(shards), side(used),
                                                side(rejects)))

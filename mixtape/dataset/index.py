"""``index.parquet``: one row per sample, typed so a query engine reads labels without parsing JSON.

The index is what users query (DuckDB, pandas, pyarrow) before they open a shard, so its columns say what
they hold and carry real types: ``classes`` is a map (``classes['genre']``), ``augment`` a list of steps
with their numeric parameters and choices as maps, ``augment_ops`` the op names alone (``list_contains``),
``licence_family`` the family beside the licence as its source states it. The sample's JSON stays the
record of truth for every parameter; the index mirrors it in a form a query can use.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa

from mixtape.errors import MixtapeError
from mixtape.hashing import sha256_hex
from mixtape.labels import key_name
from mixtape.licences import licence_family
from mixtape.records import PlanRow

#: bump when a column is added, renamed or retyped (an incremental build then renders everything again)
INDEX_VERSION = 2

AUGMENT_STEP = pa.struct([("op", pa.string()),
                          ("params", pa.map_(pa.string(), pa.float64())),
                          ("choices", pa.map_(pa.string(), pa.string()))])
INDEX_SCHEMA = pa.schema([
    ("sample_key", pa.string()), ("split", pa.string()), ("shard", pa.string()), ("order", pa.int32()),
    ("clip_id", pa.string()), ("start_ms", pa.int64()), ("duration_ms", pa.int64()), ("variant", pa.int32()),
    ("key_digest", pa.string()), ("tags", pa.list_(pa.string())), ("classes", pa.map_(pa.string(), pa.string())),
    ("musical_key", pa.string()), ("tempo_bpm", pa.float64()), ("augment", pa.list_(AUGMENT_STEP)),
    ("augment_ops", pa.list_(pa.string())), ("licence", pa.string()), ("licence_family", pa.string()),
    ("audio_bytes", pa.int64()), ("audio_sha256", pa.string()), ("json_sha256", pa.string()),
    ("logmel_sha256", pa.string()),
])
#: what each column holds, for docs/reproducibility.md and ``mixtape inspect``
INDEX_COLUMNS = {
    "sample_key": "the sample's key in its shard (`<clip_id>/<start_ms>/<variant>`)",
    "split": "train, valid or test (the spec's split names)",
    "shard": "the shard file the sample is in", "order": "its position in that shard",
    "clip_id": "the clip the sample is cut from", "start_ms": "where the window starts in the clip",
    "duration_ms": "the window's length", "variant": "0 for the clean window, 1.. for augmented variants",
    "key_digest": "the salted digest of the sample key that places it in a shard and orders it there",
    "tags": "tag labels (list of strings)", "classes": "class labels, field -> value (a map)",
    "musical_key": "the key as `<tonic> <mode>`, e.g. `D minor` (empty when unlabelled)",
    "tempo_bpm": "tempo in beats per minute (null when unlabelled)",
    "augment": "the steps applied, in order: op, numeric params (a map) and choices (a map)",
    "augment_ops": "the op names of `augment` alone",
    "licence": "the licence as the source states it (a URL or a text)",
    "licence_family": "cc0, cc-by, cc-by-nc, ..., public-domain or unknown",
    "audio_bytes": "size of the audio member", "audio_sha256": "its sha256",
    "json_sha256": "sha256 of the sample's JSON member", "logmel_sha256": "sha256 of the stored log-mel (or null)",
}
assert list(INDEX_COLUMNS) == INDEX_SCHEMA.names, "every column is described, in schema order"


def augment_step(step: Mapping[str, Any]) -> dict[str, Any]:
    """One recorded step as the index types it: numbers in ``params``, everything else in ``choices`` (text
    as it is, other values as compact JSON)."""
    params, choices = {}, {}
    for name, value in sorted(step.items()):
        if name == "op":
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            params[name] = float(value)
        else:
            choices[name] = value if isinstance(value, str) else json.dumps(value, sort_keys=True,
                                                                              separators=(",", ":"))
    return {"op": str(step["op"]), "params": list(params.items()), "choices": list(choices.items())}


def index_row(row: PlanRow, order: int, audio: bytes, doc: bytes, features: bytes | None = None
              ) -> dict[str, Any]:
    labels = row.labels
    return {
        "sample_key": row.key, "split": row.split, "shard": row.shard, "order": order, "clip_id": row.clip_id,
        "start_ms": row.start_ms, "duration_ms": row.duration_ms, "variant": row.variant, "key_digest": row.hash,
        "tags": list(labels.get("tags", [])),
        "classes": sorted((str(k), str(v)) for k, v in labels.get("classes", {}).items()),
        "musical_key": key_name(labels.get("key")), "tempo_bpm": labels.get("tempo"),
        "augment": [augment_step(s) for s in row.augment], "augment_ops": [str(s["op"]) for s in row.augment],
        "licence": row.licence, "licence_family": licence_family(row.licence),
        "audio_bytes": len(audio), "audio_sha256": sha256_hex(audio), "json_sha256": sha256_hex(doc),
        "logmel_sha256": sha256_hex(features) if features is not None else None,
    }


def class_map(value: Any) -> dict[str, str]:
    """The ``classes`` column of a row as pyarrow gives it back (a list of pairs) as a dict."""
    return {str(k): str(v) for k, v in value or []}


def augmentation_summary(op_lists: Iterable[Iterable[str] | None]) -> dict[str, Any]:
    """How many variants were augmented and how often each op applied (from ``augment_ops``)."""
    counts: dict[str, int] = {}
    augmented = 0
    for ops in op_lists:
        ops = list(ops or [])
        augmented += bool(ops)
        for op in ops:
            counts[op] = counts.get(op, 0) + 1
    return {"augmented_samples": augmented, "ops": dict(sorted(counts.items()))}


class IndexSchemaError(MixtapeError):
    """An index.parquet without the columns this mixtape reads."""


def read_index(uri: str, columns: list[str] | None = None) -> list[dict[str, Any]]:
    """The rows of an ``index.parquet`` (only ``columns``, when given). An index without the columns asked
    for (one an older mixtape wrote, or not an index at all) is a clear error, never a KeyError later."""
    from mixtape import storage

    table = storage.read_parquet(uri)
    wanted = columns or INDEX_SCHEMA.names
    missing = [c for c in wanted if c not in table.column_names]
    if missing:
        old = " (an index written before mixtape named its columns sample_key, musical_key, tempo_bpm...)" \
            if "key_label" in table.column_names else ""
        raise IndexSchemaError(f"{uri} has no column(s) {', '.join(missing)}{old}: rebuild the dataset with this "
                          "mixtape (mixtape build SPEC --out DIR --overwrite)")
    wrong = [f"{c} is {table.schema.field(c).type}, not {INDEX_SCHEMA.field(c).type}" for c in wanted
             if not table.schema.field(c).type.equals(INDEX_SCHEMA.field(c).type)]
    if wrong:
        raise IndexSchemaError(f"{uri} is not an index this mixtape wrote: {'; '.join(wrong)}")
    return table.select(wanted).to_pylist()


def recorded_steps(augment: Any) -> list[dict[str, Any]]:
    """A row's ``augment`` (as pyarrow gives it back) as the steps the sample's JSON records (numbers as
    floats; a non-text choice as its JSON text)."""
    return [{"op": s["op"], **dict(s["params"] or []), **dict(s["choices"] or [])} for s in augment or []]

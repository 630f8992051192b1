"""``mixtape build``: compose ingest -> plan -> render -> manifest into one Beam pipeline and run it."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions

from mixtape import storage
from mixtape.pipelines.ingest import Ingest
from mixtape.pipelines.manifest import CARD_NAME, INDEX_NAME, PLAN_NAME, REJECTS_NAME, Manifest
from mixtape.pipelines.plan import Plan
from mixtape.pipelines.render import Render
from mixtape.spec import DatasetSpec

BUILD_INFO = "build.json"
RUNNERS = ("direct", "portable", "flink", "dataflow")


class BuildError(RuntimeError):
    pass


@dataclass(frozen=True)
class RunnerConfig:
    """How to run: ``direct`` is the in-process FnApiRunner (in memory, or multi-processing with
    ``workers`` > 1); any other runner is Beam's, configured by the options passed after ``--``."""

    runner: str = "direct"
    workers: int = 1
    beam_args: tuple[str, ...] = ()


def make_pipeline(cfg: RunnerConfig) -> beam.Pipeline:
    if cfg.runner not in RUNNERS:
        raise BuildError(f"unknown runner {cfg.runner!r}; choose one of {', '.join(RUNNERS)}")
    args = list(cfg.beam_args)
    if cfg.runner == "direct":
        # Select the FnApiRunner explicitly: the default switching runner may pick a runner that must
        # first download a binary, which cannot work offline.
        from apache_beam.runners.portability.fn_api_runner import FnApiRunner

        # Worker processes report errors only (their start-up warnings are noise) unless the user asks otherwise.
        if not any(a.startswith("--default_sdk_harness_log_level") for a in args):
            args.append("--default_sdk_harness_log_level=ERROR")
        options = PipelineOptions(args)
        direct = options.view_as(DirectOptions)
        if cfg.workers > 1:
            direct.direct_running_mode = "multi_processing"
            direct.direct_num_workers = cfg.workers
        else:
            direct.direct_running_mode = "in_memory"
        return beam.Pipeline(runner=FnApiRunner(), options=options)
    runner_name = {"portable": "PortableRunner", "flink": "FlinkRunner", "dataflow": "DataflowRunner"}[cfg.runner]
    return beam.Pipeline(options=PipelineOptions([f"--runner={runner_name}", *args]))


def prepare_output(out_dir: str, overwrite: bool, incremental: bool = False) -> None:
    """Make the output folder; refuse to mix two datasets in one folder unless asked to replace it (or to
    update it incrementally, which keeps the previous shards for reuse)."""
    if storage.is_remote(out_dir):
        return
    os.makedirs(out_dir, exist_ok=True)
    ours = {CARD_NAME, INDEX_NAME, REJECTS_NAME, PLAN_NAME, BUILD_INFO}
    existing = sorted(os.listdir(out_dir))
    previous = [n for n in existing if n in ours or n.endswith(".tar")]
    stale = [n for n in existing if n.startswith(".tmp-")]
    if previous and not (overwrite or incremental):
        raise BuildError(f"{out_dir} already holds a dataset ({', '.join(previous[:3])}, ...): "
                         "pass --incremental to update it, --overwrite to replace it, or choose another --out")
    for n in ([] if incremental else previous) + stale:
        os.remove(os.path.join(out_dir, n))


def load_previous(out_dir: str, log: Callable[[str], None]) -> dict[str, Any]:
    """Shards of the dataset already in ``out_dir`` that an incremental build may keep: name -> card entry
    and index rows. Nothing is kept when the versions that can change output differ from the card's."""
    from mixtape.pipelines.manifest import package_versions

    card_path = os.path.join(out_dir, CARD_NAME)
    if not os.path.exists(card_path):
        log("incremental: no previous dataset here; building everything")
        return {}
    card = json.loads(storage.read_bytes(card_path))
    if card.get("versions") != package_versions():
        changed = sorted(k for k, v in package_versions().items() if card.get("versions", {}).get(k) != v)
        log(f"incremental: versions changed since the previous build ({', '.join(changed)}); rendering everything")
        return {}
    index = pq.read_table(os.path.join(out_dir, INDEX_NAME)).to_pylist()
    by_shard: dict[str, list[dict[str, Any]]] = {}
    for row in index:
        by_shard.setdefault(row["shard"], []).append(row)
    return {s["name"]: {"info": {**s, "split": split},
                        "index": sorted(by_shard.get(s["name"], []), key=lambda r: r["order"])}
            for split, info in card["splits"].items() for s in info["shards"] if s.get("plan_hash")}


def check_sources(spec: DatasetSpec) -> None:
    """Fail before launching anything if a local source folder is missing: that is a config error."""
    for i, src in enumerate(spec.sources):
        if not storage.is_remote(src.root) and not os.path.exists(src.root):
            raise BuildError(f"sources[{i}].path: {src.root} does not exist; fix the path (relative paths "
                             "are resolved against the spec file's folder)")
        for key, value in src.resolved.items():
            for path in value if isinstance(value, list) else [value]:
                if not storage.is_remote(path) and not os.path.exists(path):
                    raise BuildError(f"sources[{i}].{key}: {path} does not exist (paths in a source are "
                                     f"relative to its `path`, {src.root})")


def add_build(p: beam.Pipeline, spec: DatasetSpec, out_dir: str, previous: dict[str, Any] | None = None) -> None:
    clips, ingest_rejects = p | "Ingest" >> Ingest(spec)
    rows, plan_rejects, used = clips | "Plan" >> Plan(spec)
    rendered = rows | "Render" >> Render(spec.audio, out_dir, previous, spec.logmel)
    rejects = (ingest_rejects, plan_rejects) | "AllRejects" >> beam.Flatten()
    _ = (rendered.shards, rendered.index, used, rejects, rendered.plan) | "Manifest" >> Manifest(spec, out_dir)


def _counter(result: Any, name: str) -> int:
    from apache_beam.metrics.metric import MetricsFilter

    try:
        counters = result.metrics().query(MetricsFilter().with_name(name))["counters"]
    except (NotImplementedError, AttributeError, KeyError):
        return -1
    return int(sum(c.committed or c.attempted or 0 for c in counters))


def build(spec: DatasetSpec, out_dir: str, cfg: RunnerConfig = RunnerConfig(), overwrite: bool = False,
          incremental: bool = False, log: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    """Run a build to completion and return its card; runner, timing and host go to ``build.json``.

    ``incremental``: keep every shard of the dataset already in ``out_dir`` whose plan and inputs are
    unchanged, render the rest, and delete shards the new plan no longer has. The result is the same,
    byte for byte, as a full build of the spec."""
    check_sources(spec)
    prepare_output(out_dir, overwrite, incremental)
    out_dir = os.path.abspath(out_dir) if not storage.is_remote(out_dir) else out_dir
    previous = load_previous(out_dir, log) if incremental else {}
    started = time.monotonic()
    p = make_pipeline(cfg)
    add_build(p, spec, out_dir, previous)
    result = p.run()
    result.wait_until_finish()
    seconds = time.monotonic() - started
    card = json.loads(storage.read_bytes(storage.join(out_dir, CARD_NAME)))
    names = {s["name"] for split in card["splits"].values() for s in split["shards"]}
    if incremental and not storage.is_remote(out_dir):
        for f in sorted(os.listdir(out_dir)):
            if f.endswith(".tar") and f not in names:
                os.remove(os.path.join(out_dir, f))  # a shard the new plan no longer has
    info = {"runner": cfg.runner, "workers": cfg.workers, "beam_args": list(cfg.beam_args),
            "wall_seconds": round(seconds, 2), "spec_hash": card["spec_hash"],
            # where the inputs were: `verify --rerender` finds them here (the card stays location-free)
            "source_roots": {s.name: s.root for s in spec.sources},
            "incremental": incremental, "shards_rendered": _counter(result, "shards_rendered"),
            "shards_reused": _counter(result, "shards_reused")}
    storage.write_bytes(storage.join(out_dir, BUILD_INFO), (json.dumps(info, indent=1) + "\n").encode())
    card["_build"] = info
    return card

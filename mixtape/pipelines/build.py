"""``mixtape build``: compose ingest -> plan -> render -> manifest into one Beam pipeline and run it."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
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


def prepare_output(out_dir: str, overwrite: bool) -> None:
    """Make the output folder; refuse to mix two datasets in one folder unless asked to replace it."""
    if storage.is_remote(out_dir):
        return
    os.makedirs(out_dir, exist_ok=True)
    ours = {CARD_NAME, INDEX_NAME, REJECTS_NAME, PLAN_NAME, BUILD_INFO}
    existing = sorted(os.listdir(out_dir))
    previous = [n for n in existing if n in ours or n.endswith(".tar")]
    stale = [n for n in existing if n.startswith(".tmp-")]
    if previous and not overwrite:
        raise BuildError(f"{out_dir} already holds a dataset ({', '.join(previous[:3])}, ...): "
                         "pass --overwrite to replace it, or choose another --out")
    for n in previous + stale:
        os.remove(os.path.join(out_dir, n))


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


def add_build(p: beam.Pipeline, spec: DatasetSpec, out_dir: str) -> None:
    clips, ingest_rejects = p | "Ingest" >> Ingest(spec)
    rows, plan_rejects, used = clips | "Plan" >> Plan(spec)
    rendered = rows | "Render" >> Render(spec.audio, out_dir)
    rejects = (ingest_rejects, plan_rejects) | "AllRejects" >> beam.Flatten()
    _ = (rendered.shards, rendered.index, used, rejects, rendered.plan) | "Manifest" >> Manifest(spec, out_dir)


def build(spec: DatasetSpec, out_dir: str, cfg: RunnerConfig = RunnerConfig(), overwrite: bool = False
          ) -> dict[str, Any]:
    """Run a build to completion and return its card; runner, timing and host go to ``build.json``."""
    check_sources(spec)
    prepare_output(out_dir, overwrite)
    out_dir = os.path.abspath(out_dir) if not storage.is_remote(out_dir) else out_dir
    started = time.monotonic()
    p = make_pipeline(cfg)
    add_build(p, spec, out_dir)
    result = p.run()
    result.wait_until_finish()
    seconds = time.monotonic() - started
    card = json.loads(storage.read_bytes(storage.join(out_dir, CARD_NAME)))
    info = {"runner": cfg.runner, "workers": cfg.workers, "beam_args": list(cfg.beam_args),
            "wall_seconds": round(seconds, 2), "spec_hash": card["spec_hash"]}
    storage.write_bytes(storage.join(out_dir, BUILD_INFO), (json.dumps(info, indent=1) + "\n").encode())
    card["_build"] = info
    return card

"""``mixtape build``: compose ingest -> plan -> render -> manifest into one Beam pipeline and run it."""

from __future__ import annotations

import functools
import json
import os
import re
import threading
import time
from collections.abc import Callable
from typing import IO, Any

import apache_beam as beam
from apache_beam.metrics import Metrics

from mixtape import storage
from mixtape.dataset.card import read_card
from mixtape.dataset.folder import (
    BuildLock,
    OutputError,
    check_not_inside_sources,
    check_output,
    clean_staging,
    inspect_output,
    prepare_staging,
    swap_in,
)
from mixtape.dataset.names import BUILD_INFO, CARD_NAME
from mixtape.pipelines.errors import BuildError
from mixtape.pipelines.incremental import load_previous
from mixtape.pipelines.ingest import Ingest
from mixtape.pipelines.manifest import SAMPLES_LOST, Manifest
from mixtape.pipelines.plan import Plan
from mixtape.pipelines.preflight import check_sources, check_writable, source_folders
from mixtape.pipelines.progress import clean_progress, read_progress
from mixtape.pipelines.render import Render
from mixtape.pipelines.runners import RunnerConfig, counters, dataflow_job, has_option, make_pipeline
from mixtape.rendering import CACHE_MB
from mixtape.sources.score.recipe import score_fonts
from mixtape.spec import DatasetSpec

__all__ = ["DEFAULT_RUNNER", "BuildError", "RunnerConfig", "Ticker", "add_build", "build", "write_failure"]

#: the in-process FnApiRunner, in memory
DEFAULT_RUNNER = RunnerConfig()


def write_failure(e: BaseException) -> str | None:
    """The write problem behind a failed pipeline, if that is what it was. Runners wrap worker exceptions
    (often as text with the remote traceback), so both the exception chain and its text are searched."""
    seen: BaseException | None = e
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in storage.WRITE_ERRNOS:
            where = f": {seen.filename}" if seen.filename else ""
            return f"{storage.WRITE_ERRNOS[seen.errno]} ({seen.strerror}{where})"
        seen = seen.__cause__ or seen.__context__
    match = re.search(r"\[Errno (\d+)\] ([^\n'\"]+)", str(e))
    if match and int(match.group(1)) in storage.WRITE_ERRNOS:
        return f"{storage.WRITE_ERRNOS[int(match.group(1))]} ({match.group(2).strip()})"
    return None


class Ticker:
    """Progress while a build runs (a Beam pipeline says nothing until it ends): ``status()`` (what the
    progress tallies say, or None) every ``every`` seconds as a log line; on a terminal (``live``), one line
    rewritten in place every second instead. It goes to the log or the terminal only, never to an output."""

    def __init__(self, log: Callable[[str], None], started: float, every: float = 30.0,
                 status: Callable[[float], str | None] | None = None, live: IO[str] | None = None):
        self.log, self.started, self.every, self.status, self.live = log, started, every, status, live
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _line(self) -> str:
        seconds = time.monotonic() - self.started
        said = self.status(seconds) if self.status is not None else None
        return said or f"build: running for {seconds:.0f} s ..."

    def _run(self) -> None:
        if self.live is None:
            while not self._stop.wait(self.every):
                self.log(self._line())
            return
        while not self._stop.wait(1.0):
            self.live.write("\r\x1b[K" + self._line()[:200])
            self.live.flush()

    def __enter__(self) -> Ticker:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        if self.live is not None:
            self.live.write("\r\x1b[K")
            self.live.flush()


def _status(stage: str, snippet_seconds: float, seconds: float) -> str | None:
    progress, samples = read_progress(stage)
    return progress.line(seconds, snippet_seconds, samples) if progress.listed else None


def refuse_empty_splits(spec: DatasetSpec, card: dict[str, Any], out_dir: str, had_dataset: bool) -> None:
    """A split without samples is an error unless the spec says ``splits.allow_empty: true``: training and
    evaluation on it would fail later, and far from the cause (which the rejects name)."""
    empty = [name for name, s in card["splits"].items() if not s["samples"]]
    if not empty or spec.splits.allow_empty:
        return
    clean_staging(out_dir)
    acc = card["accounting"]
    reasons = ", ".join(f"{r} {n}" for r, n in acc["rejects_by_reason"].items()) or "none"
    kept = "the previous dataset there is unchanged" if had_dataset else "nothing was written"
    raise BuildError(f"{'split' if len(empty) == 1 else 'splits'} {', '.join(empty)} would have no samples "
                     f"({acc['clips_used']} clips used, "
                     f"{acc['clips_rejected']} rejected: {reasons}); {kept}. Add clips, change splits.fractions, "
                     "or set splits.allow_empty: true to write it anyway")


def _count_reject(reject: Any) -> None:
    Metrics.counter("mixtape", f"rejected_{reject.reason}").inc()


def add_build(p: beam.Pipeline, spec: DatasetSpec, out_dir: str, previous_dir: str | None = None,
              previous: dict[str, Any] | None = None, cache_mb: int = CACHE_MB) -> None:
    """Ingest -> Plan -> Render -> Manifest, writing into ``out_dir``; ``previous`` shards (an incremental
    build's) are kept from ``previous_dir`` when their plan is unchanged."""
    # local builds tally their progress and spill rendered samples in their staging folder's scratch
    progress_dir = None if storage.is_remote(out_dir) else out_dir
    ingested = p | "Ingest" >> Ingest(spec, progress_dir)
    planned = ingested.clips | "Plan" >> Plan(spec, progress_dir)
    rendered = planned.rows | "Render" >> Render(spec.audio, out_dir, previous, spec.logmel, cache_mb,
                                                 previous_dir or out_dir, score_fonts(spec), progress_dir)
    rejects = (ingested.rejects, planned.rejects) | "AllRejects" >> beam.Flatten()
    _ = rejects | "CountRejects" >> beam.Map(_count_reject)
    _ = (rendered, planned.used, rejects) | "Manifest" >> Manifest(spec, out_dir)


def build(spec: DatasetSpec, out_dir: str, cfg: RunnerConfig = DEFAULT_RUNNER, overwrite: bool = False,
          incremental: bool = False, log: Callable[[str], None] = lambda _m: None,
          live: IO[str] | None = None) -> dict[str, Any]:
    """Run a build to completion and return its card; runner, timing and host go to ``build.json``.

    The build is written into the output folder's staging area and moved into place only when complete
    (``mixtape.dataset.folder``): a failed or killed build leaves the previous dataset there as it was.
    ``incremental``: keep every shard of the previous dataset whose plan and inputs are unchanged, render the
    rest, and delete shards the new plan no longer has; the result is the same, byte for byte, as a full
    build of the spec. ``live``: a terminal to keep one progress line on (else progress goes to ``log``)."""
    storage.configure(cfg.beam_args)  # the driver's own reads and writes reach stores as the workers will
    check_sources(spec)
    out_dir = os.path.abspath(out_dir) if not storage.is_remote(out_dir) else out_dir.rstrip("/")
    if cfg.runner == "dataflow" and has_option(list(cfg.beam_args), "dry_run"):
        p = make_pipeline(cfg)  # a dry run builds the job offline and writes nothing
        add_build(p, spec, out_dir, out_dir, {}, cfg.cache_mb)
        return {"dry_run": dataflow_job(p.run(), p.options)}
    try:
        check_not_inside_sources(out_dir, source_folders(spec))
        check_writable(out_dir)
        with BuildLock(out_dir):
            return _build_locked(spec, out_dir, cfg, overwrite, incremental, log, live)
    except OutputError as e:
        raise BuildError(str(e)) from None


def _build_locked(spec: DatasetSpec, out_dir: str, cfg: RunnerConfig, overwrite: bool, incremental: bool,
                  log: Callable[[str], None], live: IO[str] | None = None) -> dict[str, Any]:
    existing = inspect_output(out_dir)
    check_output(out_dir, existing, overwrite, incremental)
    stage = prepare_staging(out_dir)
    previous = load_previous(out_dir, existing.card, log, spec) if incremental else {}
    started = time.monotonic()
    p = make_pipeline(cfg)
    add_build(p, spec, stage, out_dir, previous, cfg.cache_mb)
    scores = any(s.kind == "score" for s in spec.sources)
    log(f"build: {len(spec.sources)} source(s) -> list, probe{' (rendering scores)' if scores else ''}, split, plan, "
        f"render shards, write the card; {cfg.runner} runner, {cfg.workers} worker(s) ...")
    status = None if storage.is_remote(stage) else functools.partial(_status, stage, spec.snippets.duration_ms / 1000)
    try:
        with Ticker(log, started, status=status, live=live):
            result = p.run()
            result.wait_until_finish()
    except Exception as e:
        clean_staging(out_dir)
        kept = "the previous dataset there is unchanged" if existing.has_dataset else "nothing was written there"
        if SAMPLES_LOST in str(e):
            lost = str(e).split(SAMPLES_LOST, 1)[1].split("\n", 1)[0].split(" [while running", 1)[0].strip(": ")
            raise BuildError(f"the runner lost samples ({lost}); {kept}. Run the build again, or with "
                             "--workers 1 (in process)") from None
        problem = write_failure(e)
        if problem is None:
            raise
        raise BuildError(f"cannot write the dataset in {out_dir}: {problem}; {kept}. Free space or fix "
                         "permissions, then run the build again") from None
    seconds = time.monotonic() - started
    if status is not None:
        clean_progress(stage)  # what a tally wrote after the manifest cleared the parts folder
    log(f"build: pipeline done in {seconds:.0f} s; moving the dataset into place ...")
    metrics = counters(result)
    for name, value in metrics.items():
        log(f"metric {name}: {value}")
    refuse_empty_splits(spec, read_card(storage.join(stage, CARD_NAME)), out_dir, existing.has_dataset)
    card = swap_in(out_dir, existing)
    info = {"runner": cfg.runner, "workers": cfg.workers, "cache_mb": cfg.cache_mb, "beam_args": list(cfg.beam_args),
            "wall_seconds": round(seconds, 2), "spec_hash": card["spec_hash"],
            # where the inputs were: `verify --rerender` finds them here (the card stays location-free)
            "source_roots": {s.name: s.root for s in spec.sources},
            **({"soundfonts": score_fonts(spec)} if any(s.kind == "score" for s in spec.sources) else {}),
            "incremental": incremental, "shards_rendered": metrics.get("shards_rendered", 0),
            "shards_reused": metrics.get("shards_reused", 0), "metrics": metrics}
    storage.write_bytes(storage.join(out_dir, BUILD_INFO), (json.dumps(info, indent=1) + "\n").encode())
    card["_build"] = {**info, "warnings": stale_reports(out_dir, existing.has_dataset)}
    for warning in card["_build"]["warnings"]:
        log(f"warning: {warning}")
    return card


def stale_reports(out_dir: str, replaced: bool) -> list[str]:
    """A report written into the dataset folder describes the dataset it was made from; once a build has
    replaced that dataset, say so (the report is the user's to rewrite: a build never deletes it)."""
    from mixtape.report.page import DEFAULT_FOLDER, GENERATOR

    page = storage.join(out_dir, DEFAULT_FOLDER, "index.html")
    if not replaced or storage.is_remote(out_dir) or not os.path.isfile(page):
        return []
    with open(page, "rb") as f:
        if GENERATOR.encode() not in f.read(4096):
            return []
    return [f"{page} describes the previous build and is now stale: run `mixtape report {out_dir}` again"]

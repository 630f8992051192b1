"""``mixtape build``: compose ingest -> plan -> render -> manifest into one Beam pipeline and run it."""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions

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
from mixtape.dataset.index import read_index
from mixtape.dataset.names import BUILD_INFO, CARD_NAME, INDEX_NAME
from mixtape.errors import MixtapeError
from mixtape.pipelines.ingest import Ingest
from mixtape.pipelines.manifest import Manifest
from mixtape.pipelines.plan import Plan
from mixtape.pipelines.render import Render
from mixtape.rendering import CACHE_MB
from mixtape.sources.score.recipe import score_fonts
from mixtape.spec import DatasetSpec

RUNNERS = ("direct", "portable", "flink", "dataflow")


class BuildError(MixtapeError, RuntimeError):
    pass


@dataclass(frozen=True)
class RunnerConfig:
    """How to run: ``direct`` is the in-process FnApiRunner (in memory, or multi-processing with
    ``workers`` > 1); any other runner is Beam's, configured by the options passed after ``--``."""

    runner: str = "direct"
    workers: int = 1
    beam_args: tuple[str, ...] = ()
    #: memory each render worker keeps for decoded sources (see ``render.SourceCache``)
    cache_mb: int = CACHE_MB


FLINK_VERSION = "1.20"
WORKER_POOL_PORT = 50000


def _has(args: list[str], name: str) -> bool:
    return any(a == f"--{name}" or a.startswith(f"--{name}=") for a in args)


#: Google Cloud Storage bucket names: lower-case letters, digits, '-', '_' and '.', 3 to 63 characters
GCS_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$")
#: how long a job endpoint may take to accept a connection before the build gives up on it
ENDPOINT_TIMEOUT = 3.0


def _value(args: list[str], name: str) -> str | None:
    for i, a in enumerate(args):
        if a.startswith(f"--{name}="):
            return a.split("=", 1)[1]
        if a == f"--{name}" and i + 1 < len(args):
            return args[i + 1]
    return None


def check_bucket(option: str, url: str | None) -> None:
    """A gs:// location whose bucket cannot exist fails now, not after minutes of credential retries."""
    if not url or not url.startswith("gs://"):
        if url:
            raise BuildError(f"--{option}={url}: Dataflow needs a gs://BUCKET/path location")
        return
    bucket = url[len("gs://"):].split("/", 1)[0]
    if not GCS_BUCKET.match(bucket):
        raise BuildError(f"--{option}={url}: {bucket!r} is not a bucket name (lower-case letters, digits, '-', '_' "
                         "and '.', 3-63 characters): put your own bucket there")


def check_credentials() -> None:
    """Google credentials, found the way the client libraries find them, checked before anything starts."""
    path = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if path:
        if not os.path.isfile(path):
            raise BuildError(f"GOOGLE_APPLICATION_CREDENTIALS names {path}, which is not a file")
        return
    adc = os.path.join(os.path.expanduser("~"), ".config", "gcloud", "application_default_credentials.json")
    if not os.path.isfile(adc) and not os.environ.get("GCE_METADATA_HOST"):
        raise BuildError("no Google Cloud credentials: run `gcloud auth application-default login` or set "
                         "GOOGLE_APPLICATION_CREDENTIALS to a service-account key file")


def check_endpoint(option: str, address: str) -> None:
    """A job server (or Flink REST endpoint) that does not answer fails in seconds, naming the address."""
    host, _, port = address.rpartition(":")
    host = host.split("//", 1)[-1] or "localhost"
    try:
        with socket.create_connection((host, int(port)), timeout=ENDPOINT_TIMEOUT):
            return
    except (OSError, ValueError) as e:
        why = getattr(e, "strerror", None) or e
        raise BuildError(f"--{option}={address}: nothing answers at {host}:{port} ({why}); start the Flink job "
                         "server (deploy/flink) or fix the address") from None


def runner_args(cfg: RunnerConfig) -> tuple[str, list[str]]:
    """The Beam runner class name and its options: the user's, plus the defaults each runner needs."""
    args = list(cfg.beam_args)
    if cfg.runner == "portable":
        # Beam's embedded job service and in-process workers: the Fn API path Flink and Dataflow use.
        if not _has(args, "job_endpoint"):
            args.append("--job_endpoint=embed")
        if not _has(args, "environment_type"):
            args.append("--environment_type=LOOPBACK")
        return "PortableRunner", args
    if cfg.runner == "flink":
        if not (_has(args, "flink_master") or _has(args, "job_endpoint")):
            raise BuildError("--runner flink needs, after `--`, either --job_endpoint=HOST:8099 (a Beam Flink job "
                             "server, as deploy/flink runs) or --flink_master=HOST:8081 (Flink's REST endpoint; "
                             "Beam then fetches a job server jar)")
        if not _has(args, "environment_type"):
            # the Python workers run as a sidecar worker pool next to each task manager
            args += ["--environment_type=EXTERNAL", f"--environment_config=localhost:{WORKER_POOL_PORT}"]
        if _has(args, "job_endpoint"):
            return "PortableRunner", args
        if not _has(args, "flink_version"):
            args.append(f"--flink_version={FLINK_VERSION}")
        return "FlinkRunner", args
    # dataflow
    missing = [o for o in ("project", "region", "temp_location") if not _has(args, o)]
    if missing:
        raise BuildError("--runner dataflow needs, after `--`: " + ", ".join(f"--{o}=..." for o in missing)
                         + " (see deploy/dataflow/README.md)")
    for option in ("temp_location", "staging_location"):
        check_bucket(option, _value(args, option))
    if not any(_has(args, o) for o in ("sdk_container_image", "setup_file", "extra_package", "requirements_file")):
        raise BuildError("Dataflow workers must be able to import mixtape: build the SDK container (`make image`, "
                         "push it) and pass -- --sdk_container_image=REGISTRY/mixtape-worker:VERSION "
                         "(see deploy/dataflow/README.md)")
    if _has(args, "sdk_container_image") and not _has(args, "sdk_location"):
        args.append("--sdk_location=container")  # the image already holds the SDK: nothing to stage
    return "DataflowRunner", args


def make_pipeline(cfg: RunnerConfig) -> beam.Pipeline:
    if cfg.runner not in RUNNERS:
        raise BuildError(f"unknown runner {cfg.runner!r}; choose one of {', '.join(RUNNERS)}")
    if cfg.runner == "direct":
        args = list(cfg.beam_args)
        # Select the FnApiRunner explicitly: the default switching runner may pick a runner that must
        # first download a binary, which cannot work offline.
        from apache_beam.runners.portability.fn_api_runner import FnApiRunner

        # Worker processes report errors only (their start-up warnings are noise) unless the user asks otherwise.
        if not _has(args, "default_sdk_harness_log_level"):
            args.append("--default_sdk_harness_log_level=ERROR")
        options = PipelineOptions(args)
        direct = options.view_as(DirectOptions)
        direct.direct_num_workers = cfg.workers
        if not _has(args, "direct_running_mode"):  # -- --direct_running_mode=multi_processing: 1 worker process
            direct.direct_running_mode = "multi_processing" if cfg.workers > 1 else "in_memory"
        return beam.Pipeline(runner=FnApiRunner(), options=options)
    runner_name, args = runner_args(cfg)
    if cfg.runner == "flink":  # an absent job server otherwise costs a silent minute and a half
        for option in ("job_endpoint", "flink_master"):
            if _value(args, option):
                check_endpoint(option, _value(args, option) or "")
    if cfg.runner == "dataflow" and not _has(args, "dry_run"):
        check_credentials()
    return beam.Pipeline(options=PipelineOptions([f"--runner={runner_name}", *args]))


def dataflow_job(result: Any, options: PipelineOptions) -> dict[str, Any]:
    """What a Dataflow dry run would have submitted: the job and its worker environment, built offline."""
    from apache_beam.runners.dataflow.internal import apiclient

    job = result.job
    env = apiclient.Environment([], options, apiclient._FNAPI_ENVIRONMENT_MAJOR_VERSION,
                                "gs://dry-run/pipeline.pb", job.proto_pipeline)
    return {"job": json.loads(job.json()), "environment": json.loads(type(env.proto).to_json(env.proto))}


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


def check_writable(out_dir: str) -> None:
    """A folder that cannot be written fails here, with one message, before any work is done."""
    if storage.is_remote(out_dir):
        return
    try:
        os.makedirs(out_dir, exist_ok=True)
        probe = os.path.join(out_dir, f".tmp-{uuid.uuid4().hex}-{CARD_NAME}")
        with open(probe, "xb") as f:
            f.write(b"mixtape")
        os.remove(probe)  # ok: the probe file created just above
    except OSError as e:
        raise BuildError(f"cannot write to the output folder {out_dir}: {e.strerror or e}; choose another --out "
                         "or fix its permissions") from None


def load_previous(out_dir: str, card: dict[str, Any] | None, log: Callable[[str], None],
                  spec: DatasetSpec | None = None) -> dict[str, Any]:
    """Shards of the dataset already in ``out_dir`` that an incremental build may keep: name -> card entry
    and index rows. Nothing is kept when the versions that can change output differ from the card's."""
    from mixtape.versions import package_versions

    if card is None:
        log("incremental: no previous dataset here; building everything")
        return {}
    now = package_versions(spec)
    if card.get("versions") != now:
        changed = sorted(k for k, v in now.items() if card.get("versions", {}).get(k) != v)
        log(f"incremental: versions changed since the previous build ({', '.join(changed)}); rendering everything")
        return {}
    index = read_index(storage.join(out_dir, INDEX_NAME))
    by_shard: dict[str, list[dict[str, Any]]] = {}
    for row in index:
        by_shard.setdefault(row["shard"], []).append(row)
    return {s["name"]: {"info": {**s, "split": split},
                        "index": sorted(by_shard.get(s["name"], []), key=lambda r: r["order"])}
            for split, info in card["splits"].items() for s in info["shards"] if s.get("plan_hash")}


def source_folders(spec: DatasetSpec) -> list[tuple[str, str]]:
    """(where in the spec, folder) of every source folder and folder option: what a build only reads."""
    out = []
    for i, src in enumerate(spec.sources):
        out.append((f"sources[{i}].path", src.root))
        for key, value in src.resolved.items():
            for path in value if isinstance(value, list) else [value]:
                out.append((f"sources[{i}].{key}", path))
    return out


def check_scores(spec: DatasetSpec) -> None:
    """A score source needs the synthesiser, a usable SoundFont and, for `corpus`, collections that exist."""
    from mixtape.sources.score.synth import SynthError, check_synthesiser, open_soundfont

    for i, src in enumerate(spec.sources):
        if src.kind != "score":
            continue
        missing = check_synthesiser()
        if missing:
            raise BuildError(f"sources[{i}]: {missing}")
        try:
            open_soundfont(src.opt("soundfont"))
        except SynthError as e:
            raise BuildError(f"sources[{i}].soundfont: {e}; give an sf2 / sf3 file, or leave `soundfont` out "
                             "for the built-in General MIDI set") from None
        for name in src.options.get("corpus") or []:
            if not os.path.isdir(os.path.join(src.root, name)) or name.startswith((".", "_")) or "/" in name:
                known = sorted(d for d in os.listdir(src.root) if os.path.isdir(os.path.join(src.root, d))
                               and not d.startswith(("_", ".")))
                raise BuildError(f"sources[{i}].corpus: music21's corpus has no collection {name!r}; it has "
                                 f"{', '.join(known)}")


def check_sources(spec: DatasetSpec) -> None:
    """Fail before launching anything if a local source folder is missing: that is a config error."""
    check_scores(spec)
    for i, src in enumerate(spec.sources):
        if not storage.is_remote(src.root) and not os.path.exists(src.root):
            raise BuildError(f"sources[{i}].path: {src.root} does not exist; fix the path (relative paths "
                             "are resolved against the spec file's folder)")
        for key, value in src.resolved.items():
            for path in value if isinstance(value, list) else [value]:
                if not storage.is_remote(path) and not os.path.exists(path):
                    raise BuildError(f"sources[{i}].{key}: {path} does not exist (paths in a source are "
                                     f"relative to its `path`, {src.root})")


class Ticker:
    """A line every ``every`` seconds while a build runs (a Beam pipeline says nothing until it ends), so a
    long build is visibly alive; the line goes to the log only, never to an output."""

    def __init__(self, log: Callable[[str], None], started: float, every: float = 30.0):
        self.log, self.started, self.every = log, started, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.log(f"build: running for {time.monotonic() - self.started:.0f} s ...")

    def __enter__(self) -> Ticker:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


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
    clips, ingest_rejects = p | "Ingest" >> Ingest(spec)
    rows, plan_rejects, used = clips | "Plan" >> Plan(spec)
    rendered = rows | "Render" >> Render(spec.audio, out_dir, previous, spec.logmel, cache_mb,
                                         previous_dir or out_dir, score_fonts(spec))
    rejects = (ingest_rejects, plan_rejects) | "AllRejects" >> beam.Flatten()
    _ = rejects | "CountRejects" >> beam.Map(_count_reject)
    _ = (rendered, used, rejects) | "Manifest" >> Manifest(spec, out_dir)


def counters(result: Any) -> dict[str, int]:
    """mixtape's Beam counters (clips, rejects by reason, samples, bytes, shards) summed over steps."""
    from apache_beam.metrics.metric import MetricsFilter

    try:
        found = result.metrics().query(MetricsFilter().with_namespace("mixtape"))["counters"]
    except (NotImplementedError, AttributeError, KeyError):
        return {}
    out: dict[str, int] = {}
    for c in found:
        out[c.key.metric.name] = out.get(c.key.metric.name, 0) + int(c.committed or c.attempted or 0)
    return dict(sorted(out.items()))


def build(spec: DatasetSpec, out_dir: str, cfg: RunnerConfig = RunnerConfig(), overwrite: bool = False,
          incremental: bool = False, log: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    """Run a build to completion and return its card; runner, timing and host go to ``build.json``.

    The build is written into the output folder's staging area and moved into place only when complete
    (``mixtape.dataset.folder``): a failed or killed build leaves the previous dataset there as it was.
    ``incremental``: keep every shard of the previous dataset whose plan and inputs are unchanged, render the
    rest, and delete shards the new plan no longer has; the result is the same, byte for byte, as a full
    build of the spec."""
    check_sources(spec)
    out_dir = os.path.abspath(out_dir) if not storage.is_remote(out_dir) else out_dir.rstrip("/")
    if cfg.runner == "dataflow" and _has(list(cfg.beam_args), "dry_run"):
        p = make_pipeline(cfg)  # a dry run builds the job offline and writes nothing
        add_build(p, spec, out_dir, out_dir, {}, cfg.cache_mb)
        return {"dry_run": dataflow_job(p.run(), p.options)}
    try:
        check_not_inside_sources(out_dir, source_folders(spec))
        check_writable(out_dir)
        with BuildLock(out_dir):
            return _build_locked(spec, out_dir, cfg, overwrite, incremental, log)
    except OutputError as e:
        raise BuildError(str(e)) from None


def _build_locked(spec: DatasetSpec, out_dir: str, cfg: RunnerConfig, overwrite: bool, incremental: bool,
                  log: Callable[[str], None]) -> dict[str, Any]:
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
    try:
        with Ticker(log, started):
            result = p.run()
            result.wait_until_finish()
    except Exception as e:
        clean_staging(out_dir)
        kept = "the previous dataset there is unchanged" if existing.has_dataset else "nothing was written there"
        problem = write_failure(e)
        if problem is None:
            raise
        raise BuildError(f"cannot write the dataset in {out_dir}: {problem}; {kept}. Free space or fix "
                         "permissions, then run the build again") from None
    seconds = time.monotonic() - started
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

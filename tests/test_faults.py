"""Faults during a build: a failing render task, a killed build, a full disk, an unwritable output folder."""

import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mixtape.pipelines.build import BuildError, RunnerConfig, build, write_failure

pytestmark = pytest.mark.slow


def _files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.name != "build.json" and p.is_file()
            and not p.name.startswith(".")}


def _cli(*args: str, env: dict | None = None, preexec=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mixtape", *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})}, preexec_fn=preexec)


def test_a_render_task_that_fails_once_is_retried_and_the_output_is_identical(tiny_build, tiny_spec, tmp_path,
                                                                                monkeypatch):
    out, card = tiny_build
    victim = card["splits"]["train"]["shards"][1]["name"]
    monkeypatch.setenv("MIXTAPE_FAULTS", f"render:{victim}=fail*2")
    monkeypatch.setenv("MIXTAPE_FAULTS_DIR", str(tmp_path))
    again = build(tiny_spec, str(tmp_path / "out"), RunnerConfig(workers=1))
    assert (tmp_path / f"render--{victim}").read_text() == "2"  # it did fail twice
    assert again["_build"]["metrics"]["render_retries"] == 2
    assert _files(tmp_path / "out") == _files(out)


def test_a_build_killed_mid_render_leaves_no_partial_shard_and_reruns_identically(tiny_build, tiny_root, tmp_path):
    out, card = tiny_build
    victim = card["splits"]["train"]["shards"][2]["name"]
    target = tmp_path / "out"
    killed = _cli("build", str(tiny_root / "spec.yaml"), "--out", str(target),
                  env={"MIXTAPE_FAULTS": f"render:{victim}=kill"})
    assert killed.returncode == -signal.SIGKILL
    visible = {p.name for p in target.iterdir() if not p.name.startswith(".")}
    assert visible == set()  # nothing under a final name: the build writes into its staging folder
    staged = {p.name for p in (target / ".mixtape-staging").iterdir()}
    assert any(n.startswith(".tmp-") and n.endswith(victim) for n in staged)  # the partial write, hidden
    for name in staged:
        if name.endswith(".tar") and not name.startswith(".tmp-"):
            assert (target / ".mixtape-staging" / name).read_bytes() == (out / name).read_bytes()  # whole
    assert (target / ".mixtape.lock").exists()  # the killed build's lock, whose process is gone
    rerun = _cli("build", str(tiny_root / "spec.yaml"), "--out", str(target))
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert {p.name for p in target.iterdir() if p.name.startswith(".")} == set()  # lock and staging cleaned
    assert _files(target) == _files(out)


def test_a_build_killed_over_a_dataset_leaves_that_dataset_intact(tiny_build, tiny_root, tmp_path):
    """--overwrite and --incremental keep the previous dataset until the new one is complete: a kill at any
    point of the render leaves it verifiable, with its card and every shard it lists."""
    from mixtape.dataset.verify import verify

    _, card = tiny_build
    target = tmp_path / "out"
    build_again = ("build", str(tiny_root / "spec.yaml"), "--out", str(target))
    assert _cli(*build_again).returncode == 0
    before = _files(target)
    victim = card["splits"]["train"]["shards"][1]["name"]
    changed = tmp_path / "changed.yaml"  # another gain range: every augmented shard must be rendered again
    changed.write_text((tiny_root / "spec.yaml").read_text().replace("db: [-6, 0]", "db: [-5, 0]").replace(
        "path: collection/freesound", f"path: {tiny_root / 'collection' / 'freesound'}"))
    for mode in ("--overwrite", "--incremental"):
        killed = _cli("build", str(changed), "--out", str(target), mode,
                      env={"MIXTAPE_FAULTS": f"render:{victim}=kill"})
        assert killed.returncode == -signal.SIGKILL
        assert _files(target) == before and verify(str(target)).ok, mode


def _file_size_limit(limit: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # ignored signals stay ignored across exec
    return apply


def test_a_full_disk_gives_one_clear_error(tiny_root, tmp_path):
    """A file-size limit makes shard writes fail like a full disk does (an OSError from write); the build
    stops with one message, no traceback, and no partial shard under a final name."""
    target = tmp_path / "out"
    r = _cli("build", str(tiny_root / "spec.yaml"), "--out", str(target), preexec=_file_size_limit(20_000))
    assert r.returncode == 2, r.stderr[-3000:]
    assert "cannot write the dataset" in r.stderr and "file too large" in r.stderr
    assert "nothing was written there" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert [p.name for p in target.iterdir()] == []  # staging, lock and temporary files all removed


def test_a_failed_overwrite_keeps_the_previous_dataset_and_says_so(tiny_build, tiny_root, tmp_path):
    out, _ = tiny_build
    target = tmp_path / "out"
    assert _cli("build", str(tiny_root / "spec.yaml"), "--out", str(target)).returncode == 0
    before = _files(target)
    r = _cli("build", str(tiny_root / "spec.yaml"), "--out", str(target), "--overwrite",
             preexec=_file_size_limit(20_000))
    assert r.returncode == 2 and "the previous dataset there is unchanged" in r.stderr, r.stderr[-2000:]
    assert _files(target) == before == _files(out)


def test_an_unwritable_output_folder_fails_before_any_work(tiny_spec, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(BuildError, match="cannot write to the output folder"):
        build(tiny_spec, str(blocker / "out"), RunnerConfig(workers=1))


def test_write_failures_are_recognised_through_runner_wrapping():
    assert "no space left" in write_failure(OSError(28, "No space left on device", "/x/train-000000.tar"))
    wrapped = RuntimeError("Traceback ...\n  File ...\nOSError: [Errno 28] No space left on device: '/x/.tmp-a'\n")
    assert "no space left" in write_failure(wrapped)
    assert write_failure(RuntimeError("ValueError: something else")) is None
    assert json.dumps(write_failure(OSError(13, "Permission denied", "/x"))).count("permission denied") == 1

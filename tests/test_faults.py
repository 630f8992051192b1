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
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.name != "build.json"}


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
    left = {p.name for p in target.iterdir()}
    assert victim not in left and "dataset.json" not in left
    assert any(n.startswith(".tmp-") and n.endswith(victim) for n in left)  # the partial write, hidden
    for name in left:
        if name.endswith(".tar") and not name.startswith(".tmp-"):
            assert (target / name).read_bytes() == (out / name).read_bytes()  # finished shards are whole
    if any(n.endswith(".tar") and not n.startswith(".tmp-") for n in left):
        refused = _cli("build", str(tiny_root / "spec.yaml"), "--out", str(target))
        assert refused.returncode == 2 and "--overwrite" in refused.stderr  # never mixes two builds silently
    rerun = _cli("build", str(tiny_root / "spec.yaml"), "--out", str(target), "--overwrite")
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert not [p for p in target.iterdir() if p.name.startswith(".tmp-")]  # temporary files cleaned
    assert _files(target) == _files(out)


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
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    import tarfile

    for p in target.iterdir():
        assert not p.name.startswith(".tmp-")  # the failed write removed its temporary file
        if p.name.endswith(".tar"):
            with tarfile.open(p) as t:  # a shard under its final name is complete
                assert t.getmembers()


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

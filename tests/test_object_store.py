"""Datasets in an S3-compatible bucket, end to end against a real S3-protocol server process (moto's, on
127.0.0.1): build through Beam's own S3 filesystem, verify, report and train by s3:// URL, with the endpoint
and credentials from the environment only, and the same bytes as a local build."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from tests.conftest import TINY_SPEC

pytestmark = pytest.mark.slow

SECRET = "mixtape-test-secret-0b5e"  # must never appear in anything mixtape writes
SPEC = TINY_SPEC.replace("shards: {max_samples: 8}", "shards: {max_samples: 8, scheme: balanced}")


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A moto S3 server on a free port of 127.0.0.1, a bucket in it, and the environment that reaches it."""
    log = tmp_path_factory.mktemp("moto") / "server.log"
    with open(log, "w") as sink:
        server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "0"],
                                  stdout=sink, stderr=subprocess.STDOUT)
    try:
        port = None
        while port is None:  # the server prints its address once it listens
            if server.poll() is not None:
                raise RuntimeError(f"moto server exited: {log.read_text()}")
            found = re.search(r"Running on http://127\.0\.0\.1:(\d+)", log.read_text())
            port = int(found.group(1)) if found else None
            if port is None:
                try:
                    server.wait(timeout=0.2)
                except subprocess.TimeoutExpired:
                    pass
        env = {**os.environ, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "mixtape-test",
               "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_DEFAULT_REGION": "us-east-1"}
        client = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], aws_access_key_id="mixtape-test",
                              aws_secret_access_key=SECRET, region_name="us-east-1")
        client.create_bucket(Bucket="bucket")
        yield env, client
    finally:
        server.terminate()
        server.wait(timeout=30)


def _mixtape(env: dict[str, str], *args: str, cwd: Path) -> str:
    r = subprocess.run([sys.executable, "-m", "mixtape", *args], env=env, cwd=cwd, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    return r.stdout + r.stderr


def test_build_verify_report_and_train_against_an_s3_bucket(s3, tiny_root, tmp_path):
    env, client = s3
    (tiny_root / "s3-spec.yaml").write_text(SPEC)
    built = _mixtape(env, "build", str(tiny_root / "s3-spec.yaml"), "--out", "s3://bucket/ds", cwd=tmp_path)
    assert "-> s3://bucket/ds" in built
    _mixtape(env, "build", str(tiny_root / "s3-spec.yaml"), "--out", str(tmp_path / "local"), cwd=tmp_path)
    objects = {o["Key"]: o for o in client.list_objects_v2(Bucket="bucket", Prefix="ds/")["Contents"]}
    local = {p.name for p in (tmp_path / "local").iterdir() if p.is_file() and not p.name.startswith(".")}
    assert {k[len("ds/"):] for k in objects} == local  # staging and lock gone, nothing extra
    for name in sorted(local - {"build.json"}):
        body = client.get_object(Bucket="bucket", Key=f"ds/{name}")["Body"].read()
        assert body == (tmp_path / "local" / name).read_bytes(), name  # the bytes do not depend on the store

    assert "OK:" in _mixtape(env, "verify", "s3://bucket/ds", cwd=tmp_path)
    _mixtape(env, "report", "s3://bucket/ds", "--out", str(tmp_path / "report"), cwd=tmp_path)
    assert (tmp_path / "report" / "index.html").stat().st_size > 10_000

    train = sorted(n for n in local if n.startswith("train-"))
    last = len(train) - 1
    trained = _mixtape(env, "train", "--shards", f"s3://bucket/ds/train-{{000000..{last:06d}}}.tar",
                       "--card", "s3://bucket/ds/dataset.json", "--steps", "2", "--batch-size", "4",
                       "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert "trained 2 steps" in trained and "corrupt" not in trained
    assert (tmp_path / "run" / "checkpoint.pt").is_file()

    # credentials come from the environment and go nowhere: not into the bucket, the report or the run
    leaked = [k for k in objects if SECRET.encode() in client.get_object(Bucket="bucket", Key=k)["Body"].read()]
    leaked += [str(p) for p in tmp_path.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
    assert not leaked


def test_objects_are_read_as_stored_even_when_their_name_says_gz(s3, monkeypatch):
    """Beam's filesystems decompress `.gz` names on the fly unless told not to; readers that check a sha256
    or open a `.tar.gz` / `.jsonl.gz` themselves must get the stored bytes."""
    import gzip

    from mixtape import storage

    env, client = s3
    for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        monkeypatch.setenv(k, env[k])
    stored = gzip.compress(b'{"id": "rec"}\n', mtime=0)
    client.put_object(Bucket="bucket", Key="m/recordings.jsonl.gz", Body=stored)
    storage.configure()
    assert storage.read_bytes("s3://bucket/m/recordings.jsonl.gz") == stored
    with storage.open_url("s3://bucket/m/recordings.jsonl.gz") as f:
        assert f.read() == stored

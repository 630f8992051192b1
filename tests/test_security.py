"""Safe by default: secrets never leak, YAML never runs code, URLs never reach a shell, pickles never load."""

import io
import os
import pickle
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch

from mixtape.spec import SpecError, load_spec
from mixtape.train.checkpoint import CheckpointError, load_checkpoint
from mixtape.train.data import ShardStream
from mixtape.train.targets import LabelEncoder
from tests.freesound_server import API_KEY, OAUTH, FakeFreesound


def _cli(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mixtape", *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})}, cwd=cwd)


@pytest.mark.slow
def test_freesound_secrets_appear_in_no_output_log_card_index_or_error(tmp_path):
    """Download with both credentials through retries and failures, build from the dump, try a bad key;
    then grep every byte written and printed for either secret."""
    fake = FakeFreesound()
    try:
        first = fake.sounds[0]["id"]
        fake.faults["search:1"] = [("status", 500, {}), ("status", 429, {"Retry-After": "0"})]
        fake.faults[f"/apiv2/sounds/{first}/download/"] = [("status", 503, {})]
        env = {"FREESOUND_API_BASE": fake.api_base, "FREESOUND_API_KEY": API_KEY, "FREESOUND_OAUTH_TOKEN": OAUTH}
        dump = tmp_path / "dump"
        outputs = [_cli("freesound", "download", "piano", "--out", str(dump), "--max", "5", "--rpm", "0",
                        "--originals", "--verbose", env=env)]
        assert outputs[0].returncode == 0, outputs[0].stderr
        outputs.append(_cli("freesound", "search", "piano", "--max", "3", "--rpm", "0", env=env))
        outputs.append(_cli("freesound", "search", "piano", "--rpm", "0",
                            env={**env, "FREESOUND_API_KEY": API_KEY + "-revoked"}))
        assert outputs[-1].returncode != 0  # the server refuses the wrong key: an error message, no secret
        (tmp_path / "spec.yaml").write_text(
            "name: fs\nseed: 1\nsources:\n  - {kind: freesound_dump, path: dump}\n"
            "audio: {sample_rate: 16000}\nsnippets: {duration: 0.2, hop: 0.2}\n"
            "splits: {fractions: {train: 1.0}}\n")
        outputs.append(_cli("build", str(tmp_path / "spec.yaml"), "--out", str(tmp_path / "data"), env=env))
        assert outputs[-1].returncode == 0, outputs[-1].stderr
        outputs.append(_cli("inspect", str(tmp_path / "data"), env=env))
    finally:
        fake.close()
    secrets = (API_KEY, OAUTH, API_KEY + "-revoked")
    for r in outputs:
        for secret in secrets:
            assert secret not in r.stdout and secret not in r.stderr
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "dataset.json" for p in written) and any(p.suffix == ".parquet" for p in written)
    for p in written:
        data = p.read_bytes()
        for secret in secrets:
            assert secret.encode() not in data, p
    assert all(API_KEY not in e.path for e in fake.log)  # and never in a URL the server saw


def test_yaml_tags_never_construct_objects(tmp_path):
    marker = tmp_path / "pwned"
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"name: !!python/object/apply:os.system ['touch {marker}']\nseed: 1\nsources: []\n")
    with pytest.raises(SpecError):
        load_spec(spec)
    assert not marker.exists()


def test_shard_urls_never_reach_a_shell(tmp_path):
    marker = tmp_path / "pwned"
    hostile = [f"{tmp_path}/$(touch {marker}).tar", f"{tmp_path}/x.tar; touch {marker}",
               f"file://{tmp_path}/`touch {marker}`.tar", f"pipe:touch {marker}"]
    stream = ShardStream(hostile, LabelEncoder(["a"]), 8000, crop_samples=800)
    batches = list(stream)
    assert [b["end"] for b in batches] == [True]
    assert batches[0]["stats"]["corrupt"] == len(hostile)  # each one counted as unreadable, by name
    assert not marker.exists()
    r = _cli("train", "--shards", hostile[1], "--out", str(tmp_path / "run"), "--steps", "1")
    assert r.returncode == 2 and not marker.exists()


class _Boom:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ.get('MIXTAPE_TEST_MARKER', '/nonexistent/x')}",))


def test_a_planted_pickle_checkpoint_is_refused_not_run(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    monkeypatch.setenv("MIXTAPE_TEST_MARKER", str(marker))
    run = tmp_path / "run"
    run.mkdir()
    torch.save({"model": _Boom()}, run / "checkpoint.pt")  # a checkpoint someone else handed over
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_checkpoint(run)
    assert not marker.exists()


def test_shard_members_that_would_unpickle_are_never_read(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    monkeypatch.setenv("MIXTAPE_TEST_MARKER", str(marker))
    payload = pickle.dumps(_Boom())
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (("a.pth", payload), ("a.pyd", payload), ("a.pickle", payload), ("a.npy", payload),
                           ("a.json", b'{"clip_id": "c", "labels": {}}')):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    (tmp_path / "s.tar").write_bytes(buf.getvalue())
    batches = list(ShardStream([str(tmp_path / "s.tar")], LabelEncoder(["a"]), 8000, crop_samples=800))
    assert batches[-1]["stats"]["skipped_members"] == 4 and batches[-1]["stats"]["corrupt"] == 1  # no audio
    assert not marker.exists()

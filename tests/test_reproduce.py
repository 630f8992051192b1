"""Reproducible datasets: verify, re-render, incremental rebuilds, and every reader."""

import io
import json
import os
import shutil
import subprocess
import sys

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import yaml

from mixtape.dataset.features import LogMelSpec, load_npy, logmel
from mixtape.dataset.verify import verify
from mixtape.demo.collection import generate
from mixtape.pipelines.build import RunnerConfig, build
from mixtape.spec import SpecError, load_spec, parse_spec
from tests.conftest import TINY_SPEC

pytestmark = pytest.mark.slow


@pytest.fixture()
def copy_of(tiny_build, tmp_path):
    out, card = tiny_build
    dst = tmp_path / "copy"
    shutil.copytree(out, dst)
    return dst, card


def test_an_intact_copy_verifies(copy_of):
    dst, card = copy_of
    report = verify(str(dst))
    assert report.ok, report.problems
    assert report.samples_checked == sum(s["samples"] for s in card["splits"].values())


def test_a_flipped_byte_is_traced_to_its_shard_and_sample(copy_of):
    dst, _ = copy_of
    index = pq.read_table(dst / "index.parquet").to_pylist()
    victim = index[len(index) // 2]
    path = dst / victim["shard"]
    data = bytearray(path.read_bytes())
    with __import__("tarfile").open(path) as tar:
        member = tar.getmember(f"{victim['sample_key']}.flac")
    data[member.offset_data + member.size // 2] ^= 0x01
    path.write_bytes(bytes(data))
    report = verify(str(dst))
    assert not report.ok
    assert any(p.startswith(f"{victim['shard']}: sha256") for p in report.problems)
    key = victim["sample_key"]
    assert any(f"sample {key}: member {key}.flac differs" in p for p in report.problems)


def test_a_missing_shard_and_a_stray_one_are_named(copy_of):
    dst, card = copy_of
    gone = card["splits"]["valid"]["shards"][0]["name"]
    (dst / gone).rename(dst / "extra-000000.tar")
    report = verify(str(dst))
    assert f"{gone}: missing ({card['splits']['valid']['shards'][0]['samples']} samples of valid)" in report.problems
    assert "extra-000000.tar: a shard file the card does not list" in report.problems


def test_a_damaged_tar_header_is_reported_not_crashed_on(copy_of):
    dst, card = copy_of
    name = card["splits"]["train"]["shards"][0]["name"]
    data = bytearray((dst / name).read_bytes())
    data[600:700] = b"\xff" * 100  # inside the first member's data or the second header
    data[1024 + 512 * 3: 1024 + 512 * 3 + 100] = b"\x00" * 100
    (dst / name).write_bytes(bytes(data))
    report = verify(str(dst))
    assert not report.ok and any(p.startswith(name) for p in report.problems)


def test_rerender_of_sampled_shards_matches(tiny_build):
    out, card = tiny_build
    report = verify(str(out), rerender_fraction=0.25, seed=1)
    assert report.ok, report.problems
    n = sum(len(s["shards"]) for s in card["splits"].values())
    assert len(report.rerendered) == -(-n // 4)
    assert verify(str(out), rerender_fraction=0.25, seed=1).rerendered == report.rerendered  # seeded choice


def test_rerender_names_a_changed_input(tiny_root, tiny_spec, tmp_path):
    col = tmp_path / "col"
    shutil.copytree(tiny_root / "collection", col)
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(TINY_SPEC)
    (tmp_path / "collection").symlink_to(col)
    out = tmp_path / "out"
    build(load_spec(spec_path), str(out))
    index = pq.read_table(out / "index.parquet").to_pylist()
    clip = index[0]["clip_id"].split(":")[1]
    victim = next((col / "freesound" / "audio").glob(f"{clip}.*"))
    audio, sr = sf.read(victim)
    sf.write(victim, audio * 0.5, sr, format=sf.info(victim).format)
    report = verify(str(out), rerender_fraction=1.0)
    assert any(f"freesound:{clip} changed since" in p for p in report.problems), report.problems


def _add_clips(collection, n=5):
    """Five new one-window clips (new ids, new packs) appended to a Freesound dump."""
    extra = collection.parent / "extra"
    generate(extra, seed=77, n_clips=n, min_seconds=1.2, max_seconds=1.4, bad_clips=False)
    lines = []
    for line in (extra / "freesound" / "metadata.jsonl").read_text().splitlines():
        rec = json.loads(line)
        old = rec["id"]
        rec["id"] = old + 500_000
        rec["pack"] = f"https://freesound.org/apiv2/packs/{99000 + old % 7}/"
        rec.pop("mbid", None)
        src = next((extra / "freesound" / "audio").glob(f"{old}.*"))
        shutil.copy(src, collection / "freesound" / "audio" / f"{rec['id']}{src.suffix}")
        lines.append(json.dumps(rec))
    with open(collection / "freesound" / "metadata.jsonl", "a") as f:
        f.write("\n".join(lines) + "\n")


def test_incremental_build_after_adding_clips_renders_few_shards_and_equals_a_full_build(tiny_root, tmp_path):
    col = tmp_path / "collection"
    shutil.copytree(tiny_root / "collection", col)
    raw = yaml.safe_load(TINY_SPEC)
    # Many small shards, as a real dataset has (hundreds of shards): new samples land in few of them.
    raw["shards"] = {"max_samples": 6}
    raw["splits"]["group_by"] = "clip"  # with 6 packs, a grown collection would also change which split is empty
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(raw))
    spec = load_spec(tmp_path / "spec.yaml")
    out = tmp_path / "dataset"
    first = build(spec, str(out))
    n_before = sum(len(s["shards"]) for s in first["splits"].values())
    _add_clips(col)
    again = build(load_spec(tmp_path / "spec.yaml"), str(out), incremental=True)
    assert again["accounting"]["clips_in"] == first["accounting"]["clips_in"] + 5
    rendered, reused = again["_build"]["shards_rendered"], again["_build"]["shards_reused"]
    n_after = sum(len(s["shards"]) for s in again["splits"].values())
    new_samples = sum(s["samples"] for s in again["splits"].values()) - sum(
        s["samples"] for s in first["splits"].values())
    assert rendered + reused == n_after and 0 < rendered <= new_samples < n_after
    print(f"incremental after adding 5 clips: {rendered} of {n_after} shards re-rendered ({n_before} before)")
    full = tmp_path / "full"
    build(load_spec(tmp_path / "spec.yaml"), str(full))
    produced = sorted(p.name for p in out.iterdir() if p.name != "build.json")
    assert produced == sorted(p.name for p in full.iterdir() if p.name != "build.json")
    for name in produced:
        assert (out / name).read_bytes() == (full / name).read_bytes(), name
    assert verify(str(out)).ok


def test_stock_webdataset_with_wds_secure_reads_the_shards(tiny_build):
    out, card = tiny_build
    names = [s["name"] for s in card["splits"]["train"]["shards"]]
    code = ("import sys, json, webdataset as wds\n"
            "n = 0\n"
            "for s in wds.WebDataset(sys.argv[1:], shardshuffle=False).decode():\n"
            "    assert isinstance(s['json'], dict) and s['json']['key'] == s['__key__']\n"
            "    n += 1\n"
            "print(n)\n")
    r = subprocess.run([sys.executable, "-c", code, *[str(out / n) for n in names]], capture_output=True,
                       text=True, env={**os.environ, "WDS_SECURE": "1"}, timeout=300)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout.strip()) == card["splits"]["train"]["samples"]


def test_gnu_tar_lists_the_members(tiny_build):
    out, card = tiny_build
    name = card["splits"]["valid"]["shards"][0]["name"]
    listing = subprocess.run(["tar", "-tf", str(out / name)], capture_output=True, text=True, check=True).stdout
    index = [r for r in pq.read_table(out / "index.parquet").to_pylist() if r["shard"] == name]
    keys = [r["sample_key"] for r in sorted(index, key=lambda r: r["order"])]
    expected = [m for k in keys for m in (f"{k}.flac", f"{k}.json")]
    assert listing.splitlines() == expected


def test_the_index_answers_pandas_and_duckdb_queries(tiny_build):
    out, card = tiny_build
    df = pd.read_parquet(out / "index.parquet")
    assert len(df) == sum(s["samples"] for s in card["splits"].values())
    per_split = df.groupby("split").size().to_dict()
    assert per_split == {k: v["samples"] for k, v in card["splits"].items()}
    path = str(out / "index.parquet")
    rows = duckdb.sql(f"SELECT split, count(*) AS n FROM '{path}' WHERE list_contains(tags, 'bass') "
                      "GROUP BY split ORDER BY split").fetchall()
    expected = df[df["tags"].apply(lambda t: "bass" in list(t))].groupby("split").size()
    assert dict(rows) == expected.to_dict()


def test_logmel_features_are_stored_safely_and_match_the_audio(tiny_root, tmp_path):
    raw = yaml.safe_load(TINY_SPEC)
    raw["features"] = {"logmel": {"n_fft": 256, "hop": 128, "n_mels": 32}}
    raw["version"] = "1.2.3"
    raw["augment"]["variants"] = 0
    raw["augment"]["chain"] = []
    (tiny_root / "features.yaml").write_text(yaml.safe_dump(raw))
    card = build(load_spec(tiny_root / "features.yaml"), str(tmp_path / "out"))
    assert card["version"] == "1.2.3"
    f = card["features"]["logmel"]
    assert f["dtype"] == "float16" and f["shape"] == [32, 1 + 8000 // 128] and f["n_fft"] == 256
    import tarfile

    name = card["splits"]["train"]["shards"][0]["name"]
    with tarfile.open(tmp_path / "out" / name) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    key = next(n[: -len(".logmel.npy")] for n in members if n.endswith(".logmel.npy"))
    feats = load_npy(members[f"{key}.logmel.npy"])
    audio, sr = sf.read(io.BytesIO(members[f"{key}.flac"]), dtype="float32")
    assert feats.dtype == np.float16 and list(feats.shape) == f["shape"]
    assert np.array_equal(feats, logmel(audio[None, :], sr, LogMelSpec(n_fft=256, hop=128, n_mels=32)))
    assert verify(str(tmp_path / "out"), rerender_fraction=1.0).ok
    with pytest.raises(ValueError):  # an object array (a pickle) is refused, not run
        load_npy(_object_npy())


def _object_npy() -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    return buf.getvalue()


def test_versions_must_be_semantic():
    with pytest.raises(SpecError, match="version: must be a semantic version"):
        parse_spec({"name": "x", "seed": 1, "version": "v2", "sources": [{"kind": "folder", "path": "a"}]})


def test_three_runners_give_identical_bytes_including_plan_and_card(tiny_build, tiny_spec, tiny_root):
    out, _ = tiny_build
    for name, cfg in (("mp", RunnerConfig(workers=2)),
                      ("portable", RunnerConfig(runner="portable", beam_args=("--job_endpoint=embed",
                                                                             "--environment_type=LOOPBACK")))):
        other = tiny_root / f"out-{name}-repro"
        build(tiny_spec, str(other), cfg, overwrite=True)
        files = sorted(p.name for p in out.iterdir() if p.name != "build.json")
        assert {"plan.parquet", "index.parquet", "dataset.json", "rejects.parquet"} <= set(files)
        for f in files:
            assert (out / f).read_bytes() == (other / f).read_bytes(), (name, f)


def _rewrite_card(dst, change):
    card = json.loads((dst / "dataset.json").read_text())
    change(card)
    (dst / "dataset.json").write_text(json.dumps(card))


@pytest.mark.parametrize("hostile", ["../victim-000000.tar", "ABSOLUTE"])
def test_rerender_never_writes_where_a_card_points(copy_of, tmp_path, capsys, hostile):
    """A card is untrusted: a shard name outside `<split>-NNNNNN.tar` is refused before anything is written,
    and re-renders go to a temporary folder, so no file outside it is created or overwritten."""
    from mixtape.cli import main

    dst, _ = copy_of
    victim = tmp_path / "victim-000000.tar"
    victim.write_bytes(b"my own file")
    name = str(victim) if hostile == "ABSOLUTE" else hostile

    def point_at_victim(card):
        card["splits"]["train"]["shards"][0]["name"] = name
    _rewrite_card(dst, point_at_victim)
    before = {p: p.stat().st_mtime_ns for p in dst.iterdir()}
    assert main(["verify", str(dst), "--rerender", "1"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "splits.train.shards[0].name" in err and "train-NNNNNN.tar" in err, err
    assert victim.read_bytes() == b"my own file"
    assert {p: p.stat().st_mtime_ns for p in dst.iterdir()} == before


def test_verify_escapes_member_names_so_none_can_forge_a_line(copy_of, capsys):
    import tarfile

    from mixtape.cli import main

    dst, card = copy_of
    name = card["splits"]["train"]["shards"][0]["name"]
    data = io.BytesIO((dst / name).read_bytes())  # append mode writes over the end-of-archive blocks
    forged = "x.flac\nOK: 99 shards, 999 samples checked"
    with tarfile.open(fileobj=data, mode="a", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(forged)
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    (dst / name).write_bytes(data.getvalue())
    assert main(["verify", str(dst)]) == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert not any(line.startswith("OK") for line in lines), out
    assert any("x.flac\\nOK: 99 shards" in line for line in lines), out
    assert lines[-1].startswith(tuple("0123456789")) and "problem(s)" in lines[-1]


def test_rerender_refuses_plan_paths_outside_their_source(copy_of, capsys):
    """The plan is untrusted like the card: an input named `../…` or `/…` is a problem, never read."""
    from mixtape.cli import main

    dst, _ = copy_of
    plan = pq.read_table(dst / "plan.parquet").to_pylist()
    record = json.loads(plan[0]["record"])
    record["relpath"] = "../../../../etc/passwd"
    plan[0]["record"] = json.dumps(record)
    pq.write_table(pa.Table.from_pylist(plan, schema=pq.read_schema(dst / "plan.parquet")), dst / "plan.parquet")
    assert main(["verify", str(dst), "--rerender", "1"]) == 1
    out = capsys.readouterr().out
    assert f"{plan[0]['shard']}: cannot re-render: the plan names an input outside its source: ../../../../etc/passwd" \
        in out, out


def test_adding_one_clip_with_mixing_re_renders_only_the_shards_its_samples_and_partnerships_touch(tiny_root,
                                                                                                   tmp_path):
    """Mix partners are picked by consistent hashing: a new clip takes over only the rows whose draw falls
    just before it, so an incremental build re-renders the new clip's shards and those rows' shards alone."""
    col = tmp_path / "collection"
    shutil.copytree(tiny_root / "collection", col)
    raw = yaml.safe_load(TINY_SPEC)
    raw["shards"] = {"max_samples": 6}
    raw["splits"]["group_by"] = "clip"
    raw["augment"] = {"variants": 3, "chain": [{"op": "mix", "p": 1.0, "snr_db": [3, 9]}]}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(raw))
    out = tmp_path / "dataset"
    build(load_spec(tmp_path / "spec.yaml"), str(out))
    before = {r["key"]: json.loads(r["record"]) for r in pq.read_table(out / "plan.parquet").to_pylist()}
    _add_clips(col, n=1)
    again = build(load_spec(tmp_path / "spec.yaml"), str(out), incremental=True)
    after = pq.read_table(out / "plan.parquet").to_pylist()
    new_clip = {json.loads(r["record"])["clip_id"] for r in after} - {r["clip_id"] for r in before.values()}
    assert len(new_clip) == 1
    touched = set()
    for r in after:
        rec = json.loads(r["record"])
        partners = [m["clip_id"] for m in rec["material"]]
        if rec["clip_id"] in new_clip or (partners and partners[0] in new_clip):
            touched.add(r["shard"])
        elif r["key"] in before:
            assert [m["clip_id"] for m in before[r["key"]]["material"]] == partners  # no other row moved
    rendered = again["_build"]["shards_rendered"]
    total = sum(len(s["shards"]) for s in again["splits"].values())
    assert 0 < rendered <= len(touched) < total, (rendered, len(touched), total)


def test_env_prints_the_install_commands_of_the_cards_versions_and_refuses_forged_ones(tiny_build, tmp_path):
    """The card is a lockfile: `mixtape env` turns its recorded versions into commands a person can run. Card
    values are untrusted: one that is not a version is named and left out, never printed into a command."""
    import shutil
    import subprocess
    import sys

    from mixtape.versions import install_commands, package_versions

    out, card = tiny_build
    r = subprocess.run([sys.executable, "-m", "mixtape", "env", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    here = package_versions()
    pip = next(line for line in r.stdout.splitlines() if line.startswith("pip install "))
    for name in ("apache-beam", "numpy", "soundfile", "soxr", "librosa", "audiomentations", "pyarrow"):
        assert f"{name}=={card['versions'][name]}" in pip.split()
    assert f"# Python {card['versions']['python']}" in r.stdout
    assert "every recorded version matches" in r.stdout and card["versions"]["numpy"] == here["numpy"]

    forged = dict(card["versions"], numpy="1.0; rm -rf ~", soxr="0.5.0", synthesiser="tinysoundfont 0.3.7")
    lines = install_commands(forged)
    assert "# numpy: the card's value is not a version; left out" in lines
    assert not any("rm -rf" in line for line in lines)
    assert "soxr==0.5.0" in next(x for x in lines if x.startswith("pip install ")).split()
    assert "pip install --no-deps tinysoundfont==0.3.7" in lines

    # a copy whose card records another numpy says how this environment differs
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    doc = json.loads((copy / "dataset.json").read_text())
    doc["versions"]["numpy"] = "1.26.4"
    (copy / "dataset.json").write_text(json.dumps(doc))
    r = subprocess.run([sys.executable, "-m", "mixtape", "env", str(copy)], capture_output=True, text=True)
    assert "numpy==1.26.4" in r.stdout and f"numpy: 1.26.4 in the card, {here['numpy']} here" in r.stdout

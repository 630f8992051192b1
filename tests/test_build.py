"""Real Beam builds of a tiny generated collection (DirectRunner: in-memory and 2 worker processes)."""

import io
import json
import shutil
import tarfile
from dataclasses import replace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import webdataset as wds

from mixtape.dataset.index import recorded_steps
from mixtape.pipelines.build import BuildError, RunnerConfig, build
from mixtape.spec import parse_spec

pytestmark = pytest.mark.slow


def shard_files(out):
    return sorted(p.name for p in out.iterdir() if p.suffix == ".tar")


def test_accounting_holds_and_rejects_have_reasons(tiny_build):
    out, card = tiny_build
    acc = card["accounting"]
    assert acc["clips_in"] == 14  # 12 generated + 2 deliberately broken
    assert acc["clips_in"] == acc["clips_used"] + acc["clips_rejected"]
    assert acc["rejects_by_reason"] == {"silent": 1, "truncated": 1}
    rejects = pq.read_table(out / "rejects.parquet").to_pylist()
    assert {(r["clip_id"], r["reason"]) for r in rejects} == {("freesound:399001", "truncated"),
                                                               ("freesound:399002", "silent")}
    assert all(r["detail"] and r["stage"] for r in rejects)


def test_splits_shards_and_counts_agree(tiny_build, tiny_spec):
    out, card = tiny_build
    index = pq.read_table(out / "index.parquet").to_pylist()
    names = [s["name"] for split in card["splits"].values() for s in split["shards"]]
    assert sorted(names) == shard_files(out)
    for split, info in card["splits"].items():
        assert info["samples"] == sum(1 for r in index if r["split"] == split) > 0
        for s in info["shards"]:
            assert 0 < s["samples"] <= tiny_spec.shards.max_samples
            assert s["bytes"] == (out / s["name"]).stat().st_size
    # a group (pack) never spans two splits; valid/test hold only clean originals
    clip_split = {r["clip_id"]: r["split"] for r in index}
    assert len(clip_split) == card["accounting"]["clips_used"]
    assert {r["variant"] for r in index if r["split"] != "train"} == {0}
    assert {r["variant"] for r in index if r["split"] == "train"} == {0, 1, 2}


def test_shards_are_readable_by_stock_webdataset_and_match_the_index(tiny_build):
    out, _card = tiny_build
    index = {r["sample_key"]: r for r in pq.read_table(out / "index.parquet").to_pylist()}
    seen = {}
    for name in shard_files(out):
        for sample in wds.WebDataset(str(out / name), shardshuffle=False):
            doc = json.loads(sample["json"])
            audio, sr = sf.read(io.BytesIO(sample["flac"]))
            assert sample["__key__"] == doc["key"]
            assert sr == 8000 and audio.ndim == 1 and len(audio) == 8000
            row = index[doc["key"]]
            assert row["shard"] == name and doc["split"] == row["split"]
            assert doc["labels"]["tags"] == row["tags"] and recorded_steps(row["augment"]) == doc["augment"]
            assert doc["licence"] and doc["attribution"] and doc["source"]["sha256"]
            if doc["variant"] > 0:
                assert doc["augment"] and doc["augment"][0]["op"] == "gain"
            seen[doc["key"]] = name
    assert seen.keys() == index.keys()


def test_tar_members_have_fixed_metadata(tiny_build):
    out, _ = tiny_build
    with tarfile.open(out / shard_files(out)[0]) as tar:
        members = tar.getmembers()
    assert members and all(m.mtime == 0 and m.uid == 0 and m.uname == "" for m in members)
    hashes = [m.name for m in members]
    assert hashes == sorted(hashes, key=lambda n: hashes.index(n))  # consecutive pairs per key
    assert [n.rsplit(".", 1)[1] for n in hashes[:2]] == ["flac", "json"]


def test_augmented_variant_differs_from_its_original_by_the_drawn_gain(tiny_build):
    out, _ = tiny_build
    index = pq.read_table(out / "index.parquet").to_pylist()
    variant = next(r for r in index if r["variant"] == 1 and r["augment"])
    original_key = variant["sample_key"].rsplit("/", 1)[0] + "/0"
    audio = {}
    for name in {variant["shard"], next(r["shard"] for r in index if r["sample_key"] == original_key)}:
        for s in wds.WebDataset(str(out / name), shardshuffle=False):
            if s["__key__"] in (variant["sample_key"], original_key):
                audio[s["__key__"]] = sf.read(io.BytesIO(s["flac"]))[0]
    db = recorded_steps(variant["augment"])[0]["db"]
    a, b = audio[original_key], audio[variant["sample_key"]]
    mask = abs(a) > 0.05
    ratio = (b[mask] / a[mask]).mean()
    assert ratio == pytest.approx(10 ** (db / 20), rel=0.01)


def test_multiprocessing_build_is_byte_identical(tiny_build, tiny_spec, tiny_root):
    out, _ = tiny_build
    other = tiny_root / "out-2workers"
    build(tiny_spec, str(other), RunnerConfig(workers=2))
    produced = sorted(p.name for p in out.iterdir() if p.name != "build.json")
    assert produced == sorted(p.name for p in other.iterdir() if p.name != "build.json")
    for name in produced:
        assert (out / name).read_bytes() == (other / name).read_bytes(), name
    info = json.loads((other / "build.json").read_text())
    assert info["workers"] == 2


def test_refuses_to_overwrite_without_asking(tiny_build, tiny_spec):
    out, _ = tiny_build
    with pytest.raises(BuildError, match="--overwrite"):
        build(tiny_spec, str(out))


def test_folder_source_and_wav_output(tmp_path, tiny_root):
    audio_dir = tiny_root / "collection" / "freesound" / "audio"
    spec = parse_spec({"name": "folder", "seed": 1, "sources": [{"kind": "folder", "path": str(audio_dir)}],
                       "audio": {"sample_rate": 8000, "channels": 2, "format": "wav"},
                       "snippets": {"duration": 2.0}, "splits": {"fractions": {"train": 1.0}},
                       "shards": {"max_samples": 100}})
    card = build(spec, str(tmp_path / "out"))
    acc = card["accounting"]
    assert acc["clips_in"] == 14 and acc["clips_used"] == 12
    assert card["splits"]["train"]["samples"] > 0
    with tarfile.open(tmp_path / "out" / "train-000000.tar") as tar:
        wav = next(m for m in tar.getmembers() if m.name.endswith(".wav"))
        audio, sr = sf.read(io.BytesIO(tar.extractfile(wav).read()))
    assert wav.name.startswith("folder:") and sr == 8000 and audio.shape == (16000, 2)


def test_portable_runner_with_embedded_job_service_is_byte_identical(tiny_build, tiny_spec, tiny_root):
    """The Fn API path Flink and Dataflow use, run here with Beam's embedded job service."""
    out, _ = tiny_build
    other = tiny_root / "out-portable"
    build(tiny_spec, str(other), RunnerConfig(runner="portable",
                                              beam_args=("--job_endpoint=embed", "--environment_type=LOOPBACK")))
    for p in out.iterdir():
        if p.name != "build.json":
            assert p.read_bytes() == (other / p.name).read_bytes(), p.name


def test_missing_source_folder_is_a_config_error(tmp_path):
    spec = parse_spec({"name": "m", "seed": 1, "sources": [{"kind": "folder", "path": "nope"}]}, tmp_path)
    with pytest.raises(BuildError, match=r"sources\[0\]\.path: .*nope does not exist"):
        build(spec, str(tmp_path / "out"))


def test_a_build_where_every_clip_is_rejected_fails_unless_allowed_and_later_commands_say_why(tmp_path, capsys):
    from mixtape.cli import main

    (tmp_path / "audio").mkdir()
    (tmp_path / "audio" / "empty.wav").write_bytes(b"")
    (tmp_path / "audio" / "text.flac").write_text("not audio at all")
    raw = {"name": "bad", "seed": 1, "sources": [{"kind": "folder", "path": "audio"}]}
    with pytest.raises(BuildError, match=r"splits test, train, valid would have no samples \(0 clips used, 2 "
                                         r"rejected: empty_file 1, undecodable 1\); nothing was written"):
        build(parse_spec(raw, tmp_path), str(tmp_path / "out"))
    assert not (tmp_path / "out" / "dataset.json").exists()
    spec = parse_spec({**raw, "splits": {"allow_empty": True}}, tmp_path)
    card = build(spec, str(tmp_path / "out"))
    out = str(tmp_path / "out")
    assert main(["train", "--shards", out, "--out", str(tmp_path / "run")]) == 2
    assert "split train has no samples" in capsys.readouterr().err  # not an IndexError
    assert main(["inspect", out]) == 0
    assert "WARNING: split test has no samples, split train has no samples" in capsys.readouterr().out
    assert main(["verify", out]) == 0
    assert "note: split valid has no samples" in capsys.readouterr().out
    acc = card["accounting"]
    assert (acc["clips_in"], acc["clips_used"], acc["clips_rejected"]) == (2, 0, 2)
    assert acc["rejects_by_reason"] == {"empty_file": 1, "undecodable": 1}
    assert all(s["samples"] == 0 for s in card["splits"].values())
    assert not list((tmp_path / "out").glob("*.tar"))


# ------------------------------------------------------------------------------- files the build does not own


def _folder_spec(audio_dir, **extra):
    return parse_spec({"name": "own", "seed": 1, "sources": [{"kind": "folder", "path": str(audio_dir)}],
                       "audio": {"sample_rate": 8000}, "snippets": {"duration": 2.0},
                       "splits": {"fractions": {"train": 1.0}}, "shards": {"max_samples": 100}, **extra})


def test_an_out_folder_inside_or_equal_to_a_source_is_refused(tmp_path, tiny_root):
    import shutil

    audio = tmp_path / "music"
    shutil.copytree(tiny_root / "collection" / "freesound" / "audio", audio)
    before = sorted(p.name for p in audio.iterdir())
    for out in (audio, audio / "dataset"):
        with pytest.raises(BuildError, match="inside the source folder"):
            build(_folder_spec(audio), str(out))
    assert sorted(p.name for p in audio.iterdir()) == before  # nothing written, nothing removed


def test_user_files_in_the_out_folder_survive_every_kind_of_build(tmp_path, tiny_root):
    """A build deletes only what its previous card lists: files named like its own temporaries or shards
    but not written by it stay, through --overwrite and --incremental alike."""
    out = tmp_path / "out"
    out.mkdir()
    mine = {"my-backup.tar": b"precious", ".tmp-notes.txt": b"notes", ".parts": None, "report.html": b"<p>"}
    for name, data in mine.items():
        (out / name).mkdir() if data is None else (out / name).write_bytes(data)
    (out / ".parts" / "keep.txt").write_text("mine too")
    spec = _folder_spec(tiny_root / "collection" / "freesound" / "audio")
    build(spec, str(out))
    build(spec, str(out), overwrite=True)
    build(_folder_spec(tiny_root / "collection" / "freesound" / "audio", snippets={"duration": 1.5}), str(out),
          incremental=True)  # other windows: the previous shards go, the user's files stay
    for name, data in mine.items():
        assert (out / name).exists() and (data is None or (out / name).read_bytes() == data), name
    assert (out / ".parts" / "keep.txt").read_text() == "mine too"


def test_a_user_file_named_like_a_shard_stops_the_build_before_anything_is_written(tmp_path, tiny_root):
    out = tmp_path / "out"
    out.mkdir()
    (out / "train-000000.tar").write_bytes(b"not mixtape's")
    with pytest.raises(BuildError, match="did not write them and will not overwrite them"):
        build(_folder_spec(tiny_root / "collection" / "freesound" / "audio"), str(out), overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["train-000000.tar"]
    assert (out / "train-000000.tar").read_bytes() == b"not mixtape's"


def test_a_second_build_into_a_locked_folder_is_refused_in_one_line(tmp_path, tiny_root):
    import os
    import socket
    import subprocess
    import sys

    out = tmp_path / "out"
    out.mkdir()
    (out / ".mixtape.lock").write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(json.dumps({"name": "own", "seed": 1, "sources": [
        {"kind": "folder", "path": str(tiny_root / "collection" / "freesound" / "audio")}],
        "splits": {"fractions": {"train": 1.0}}}))
    r = subprocess.run([sys.executable, "-m", "mixtape", "build", str(spec_file), "--out", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert f"pid {os.getpid()}" in r.stderr and ".mixtape.lock" in r.stderr
    assert sorted(p.name for p in out.iterdir()) == [".mixtape.lock"]  # the holder's lock stays
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a pid whose process has ended: its lock is stale and is taken over
    (out / ".mixtape.lock").write_text(json.dumps({"pid": gone.pid, "host": socket.gethostname()}))
    card = build(_folder_spec(tiny_root / "collection" / "freesound" / "audio"), str(out))
    assert card["splits"]["train"]["samples"] > 0 and not (out / ".mixtape.lock").exists()


def test_a_running_build_says_so_until_it_ends():
    """The ticker logs while a (Beam) build runs and stops with it: driven here by a short period and an
    event the test controls, not by sleeping."""
    import threading
    import time

    from mixtape.pipelines.build import Ticker

    said: list[str] = []
    heard = threading.Event()

    def log(message: str) -> None:
        said.append(message)
        heard.set()

    with Ticker(log, time.monotonic(), every=0.01):
        assert heard.wait(5)
    n = len(said)
    assert n >= 1 and said[0].startswith("build: running for ") and said[0].endswith(" s ...")
    assert len(said) == n  # nothing after the build ended


def test_build_logs_its_phases(tmp_path):
    (tmp_path / "a").mkdir()
    import numpy as np

    sf.write(tmp_path / "a" / "tone.wav", (0.3 * np.sin(np.arange(16000 * 3) / 8.0)).astype("float32"), 16000)
    said: list[str] = []
    build(_folder_spec(tmp_path / "a"), str(tmp_path / "out"), log=said.append)
    assert said[0].startswith("build: 1 source(s) -> list, probe, split, plan, render shards")
    assert any(x.startswith("build: pipeline done in ") for x in said)


@pytest.mark.parametrize("change, expected, readers", [
    (lambda t: t.rename_columns(["key" if n == "sample_key" else "key_label" if n == "musical_key" else n
                                 for n in t.column_names]),
     r"no column\(s\) (sample_key, )?musical_key.*rebuild the dataset", "verify inspect report"),
    (lambda t: t.set_column(t.column_names.index("classes"), "classes",
                            pa.array(['{"genre": "x"}'] * len(t))), "classes is string, not map<string, string>",
     "verify report"),  # inspect reads no classes column
])
def test_an_index_of_another_shape_is_a_clear_error_for_every_reader(tiny_build, tmp_path, change, expected,
                                                                    readers):
    from mixtape.dataset.index import IndexSchemaError
    from mixtape.dataset.inspect import describe
    from mixtape.dataset.verify import verify
    from mixtape.report.page import write_report

    out, _ = tiny_build
    copy = tmp_path / "ds"
    shutil.copytree(out, copy)
    pq.write_table(change(pq.read_table(copy / "index.parquet")), copy / "index.parquet")
    calls = {"verify": lambda: verify(str(copy)), "inspect": lambda: describe(str(copy)),
             "report": lambda: write_report(str(copy), str(tmp_path / "report"))}
    for name in readers.split():
        with pytest.raises(IndexSchemaError, match=expected):
            calls[name]()


def test_a_local_builds_progress_tallies_add_up_to_the_cards_totals(tiny_spec, tmp_path, monkeypatch):
    """What the progress line is made of, read when the pipeline has finished (the manifest's clean-up of
    the parts folder held back): clips listed and probed, samples planned, shards and samples rendered all
    agree with the card; then nothing of it is left in the dataset folder."""
    from mixtape.pipelines import build as build_module
    from mixtape.pipelines import manifest
    from mixtape.pipelines.progress import clean_progress, read_progress

    seen = []
    monkeypatch.setattr(manifest, "remove_parts", lambda _out: None)
    monkeypatch.setattr(build_module, "clean_progress", lambda stage: (seen.append(read_progress(stage)),
                                                                         clean_progress(stage)))
    card = build(tiny_spec, str(tmp_path / "out"))
    (progress, rendered_samples), = seen
    acc = card["accounting"]
    shards = sum(len(s["shards"]) for s in card["splits"].values())
    samples = sum(s["samples"] for s in card["splits"].values())
    listing_rejects = sum(1 for r in pq.read_table(tmp_path / "out" / "rejects.parquet").to_pylist()
                          if r["stage"] in ("source", "admit"))
    assert progress.listed == acc["clips_in"] - listing_rejects and progress.probed == progress.listed
    assert (progress.planned, progress.shards, progress.rendered_shards, progress.rendered, rendered_samples) == (
        samples, shards, shards, samples, samples)
    line = progress.line(12.0, 1.0, rendered_samples)
    assert f"rendered {shards}/{shards} shards ({samples}/{samples} samples" in line and "ETA" not in line
    half = samples // 2  # half-way after 12 s: the ETA is the time the other half takes at that rate
    # samples are rendered source by source and reach their shards only at the end: the tally says how far
    midway = replace(progress, rendered=half, rendered_shards=0)
    assert f"ETA 0m{round(12 * (samples - half) / half):02d}s" in midway.line(12.0, 1.0, 0)
    assert f"rendered 0/{shards} shards ({half}/{samples} samples" in midway.line(12.0, 1.0, 0)
    assert not [p for p in (tmp_path / "out").rglob("*") if "progress" in p.name or ".mixtape-staging" in str(p)]


def test_on_a_terminal_progress_is_one_line_rewritten_in_place():
    import io
    import threading
    import time

    from mixtape.pipelines.build import Ticker

    screen, asked = io.StringIO(), threading.Event()

    def status(seconds: float) -> str:
        asked.set()
        return "build 0m01s: probed 3/4 clips"

    with Ticker(lambda _m: None, time.monotonic(), status=status, live=screen):
        assert asked.wait(5)
    shown = screen.getvalue()
    assert shown.startswith("\r\x1b[K") and "probed 3/4 clips" in shown and shown.endswith("\r\x1b[K")
    assert "\n" not in shown  # never a new line: the terminal keeps one status line


def test_samples_a_runner_drops_fail_the_build_instead_of_leaving_holes():
    """The plan tells every used clip how many samples it made; the shards tell how many were written. Beam's
    multi-process DirectRunner was seen dropping plan rows at ~800k (bench/plan_scale.py): the manifest then
    refuses to write a card, and the build says what happened."""
    from mixtape.pipelines.manifest import SamplesLost, check_nothing_lost

    used = [{"clip_id": "a", "samples": 5}, {"clip_id": "b", "samples": 2}, {"clip_id": "ir", "samples": 0}]
    check_nothing_lost([{"samples": 4}, {"samples": 3}], used)
    with pytest.raises(SamplesLost, match="the plan made 7 samples, the runner delivered 6"):
        check_nothing_lost([{"samples": 4}, {"samples": 2}], used)


def test_a_build_whose_runner_lost_samples_says_so_and_writes_nothing(tiny_spec, tmp_path, monkeypatch):
    from mixtape.pipelines import manifest

    def lost(shards, used):
        raise manifest.SamplesLost(f"{manifest.SAMPLES_LOST}: the plan made 9 samples, the runner delivered 8 to "
                                   "the shards")

    monkeypatch.setattr(manifest, "check_nothing_lost", lost)
    with pytest.raises(BuildError, match=r"the runner lost samples \(the plan made 9 samples, the runner delivered "
                                         r"8 to the shards\); nothing was written there"):
        build(tiny_spec, str(tmp_path / "out"))
    assert not (tmp_path / "out" / "dataset.json").exists()
    assert not (tmp_path / "out" / ".mixtape-staging").exists()

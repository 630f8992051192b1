import json
import subprocess
import sys

import pytest

from mixtape.cli import COMMANDS, main


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "mixtape", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


def test_help_lists_every_command_with_one_line():
    r = run("--help")
    assert r.returncode == 0
    for name in COMMANDS:
        assert name in r.stdout


def test_bad_spec_exits_2_naming_the_field(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: x\nseed: 1\nsources: [{kind: folder, path: a}]\naudio: {format: mp3}\n")
    assert main(["build", str(spec), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "audio.format" in err and "flac" in err


def test_beam_args_only_for_build(capsys):
    assert main(["inspect", "x", "--", "--foo"]) == 2


@pytest.mark.slow
def test_build_then_inspect_from_the_command_line(tiny_root, tmp_path):
    r = run("build", str(tiny_root / "spec.yaml"), "--out", str(tmp_path / "ds"), "--",
            "--direct_num_workers=1")
    assert r.returncode == 0, r.stderr
    assert "clips in 14 = used 12 + rejected 2" in r.stdout
    r = run("inspect", str(tmp_path / "ds"))
    assert r.returncode == 0 and "truncated 1" in r.stdout and "train tags:" in r.stdout and "licences:" in r.stdout


@pytest.mark.slow
def test_demo_command_end_to_end_and_rerun_reproduces_the_dataset(tmp_path):
    demo = tmp_path / "demo"
    r = run("demo", "--out", str(demo), "--clips", "8", "--steps", "6")
    assert r.returncode == 0, r.stderr[-2000:]
    for expected in ("clips in 10 = used 8 + rejected 2", "training: 6 steps", "results on the valid split",
                     "genre             accuracy", "key               MIREX", "written:"):
        assert expected in r.stdout, r.stdout
    card = json.loads((demo / "dataset" / "dataset.json").read_text())
    kinds = {s["kind"] for s in card["spec"]["sources"]}
    assert kinds == {"score", "freesound_dump"}  # real music, rendered in the build and through the dump path
    assert card["accounting"]["by_source"]["freesound"]["clips_used"] == 2  # two folk tunes with AB documents
    assert {"genre", "composer"} <= set(card["vocabularies"]["classes"])
    for path in ("collection/freesound/metadata.jsonl", "spec.yaml", "dataset/dataset.json",
                 "dataset/index.parquet", "dataset/clips.parquet", "run/checkpoint.pt", "report/index.html"):
        assert (demo / path).exists(), path
    first = {p.name: p.read_bytes() for p in (demo / "dataset").iterdir() if p.name != "build.json"}
    (demo / "collection" / "freesound" / "audio" / "stale.wav").write_bytes(b"left over")
    r = run("demo", "--out", str(demo), "--clips", "8", "--steps", "1")
    assert r.returncode == 0, r.stderr[-2000:]
    again = {p.name: p.read_bytes() for p in (demo / "dataset").iterdir() if p.name != "build.json"}
    assert again == first  # regenerated collection, same bytes everywhere, stale files gone


def test_demo_refuses_to_replace_a_folder_it_did_not_write(tmp_path, capsys):
    (tmp_path / "collection").mkdir()
    assert main(["demo", "--out", str(tmp_path), "--clips", "4", "--steps", "1"]) == 2
    assert "not written by `mixtape demo`" in capsys.readouterr().err

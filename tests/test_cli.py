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


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["build", "--help"], ["--version"]])
def test_help_and_version_import_nothing_heavy(argv):
    """Starting a command costs what it uses: --help and --version load neither Beam, torch, librosa nor
    matplotlib (they made every command take ~4 s to start)."""
    code = ("import sys\nfrom mixtape.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('apache_beam', 'torch', 'librosa', 'matplotlib', 'music21') if m in sys.modules]\n"
            "print('HEAVY', heavy, file=sys.stderr)")
    r = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True)
    assert "HEAVY []" in r.stderr, r.stderr[-2000:]


def test_train_help_shows_every_default_from_the_config_dataclasses():
    import argparse

    from mixtape.cli import make_parser
    from mixtape.train.config import FrontendConfig, TrainConfig

    parser = make_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    train = sub.choices["train"]
    by_dest = {a.dest: a for a in train._actions if a.help != argparse.SUPPRESS}
    tc, fc = TrainConfig(shards="", out=""), FrontendConfig()
    pairs = {"batch_size": tc.batch_size, "lr": tc.lr, "dropout": tc.dropout, "warmup": tc.warmup_steps,
             "crop_seconds": tc.crop_seconds, "weight_decay": tc.weight_decay, "model": tc.model,
             "tasks": tc.tasks, "patience": tc.patience, "n_mels": fc.n_mels, "compression": fc.compression,
             "norm": fc.norm, "workers": tc.num_workers, "seed": tc.seed, "grad_clip": tc.grad_clip}
    assert {k: by_dest[k].default for k in pairs} == pairs
    text = train.format_help()
    for option in ("--batch-size", "--lr", "--dropout", "--warmup", "--n-fft", "--hop"):
        entry = text[text.index("\n  " + option + " "):]  # its entry in the option list, not the usage line
        assert "(default:" in " ".join(entry.split()[:30]), option
    assert "CRC" in sub.choices["fsd50k"].format_help() or "CRC" in run("fsd50k", "unpack", "--help").stdout


def test_loader_workers_is_the_dataloader_option_and_old_spellings_still_work(tmp_path, capsys):
    from mixtape.cli import make_parser

    assert make_parser().parse_args(["train", "--shards", "x", "--out", "y"]).workers == 0
    args = make_parser().parse_args(["train", "--shards", "x", "--out", "y", "--workers", "2"])
    assert args.workers == 2 and "--workers is deprecated; use --loader-workers" in capsys.readouterr().err
    args = make_parser().parse_args(["train", "--shards", "x", "--out", "y", "--loader-workers", "3"])
    assert args.workers == 3 and capsys.readouterr().err == ""
    args = make_parser().parse_args(["evaluate", "run", "--shards", "x", "--json", "r.json"])
    assert args.json == "r.json" and "--json is deprecated; use --out" in capsys.readouterr().err
    assert make_parser().parse_args(["evaluate", "run", "--shards", "x", "--out", "r.json"]).json == "r.json"
    assert make_parser().parse_args(["build", "s.yaml", "--out", "d", "--workers", "2"]).workers == 2


def test_the_trainer_is_an_extra_and_its_absence_is_one_clear_line(tmp_path):
    """torch is not a core dependency (a library that pins it breaks its users' environments): it comes with
    `mixtape[train]`, and a training command without it says so instead of a traceback."""
    from pathlib import Path

    import tomllib

    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
    core = {d.split(">")[0].split("=")[0].split("[")[0].strip() for d in project["dependencies"]}
    train = {d.split(">")[0].split("=")[0].strip() for d in project["optional-dependencies"]["train"]}
    assert "torch" not in core and {"torch", "webdataset", "scikit-learn"} <= train
    assert all("==" not in d for d in project["optional-dependencies"]["train"])  # no pin forced on users
    code = ("import sys, importlib.abc\n"
            "class Block(importlib.abc.MetaPathFinder):\n"
            "    def find_spec(self, name, path, target=None):\n"
            "        if name.split('.')[0] == 'torch':\n"
            "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
            "sys.meta_path.insert(0, Block())\n"
            "from mixtape.cli import main\n"
            f"sys.exit(main(['train', '--shards', {str(tmp_path)!r}, '--out', {str(tmp_path / 'run')!r}]))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 2, r.stderr
    assert "needs the training stack (torch is not installed): pip install 'mixtape[train]'" in r.stderr
    assert "Traceback" not in r.stderr

"""The trainer end to end: from HTTP shards, exact resume, early stopping, epochs, DDP, and the CLI tables."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mixtape.cli import main
from mixtape.train.checkpoint import load_checkpoint
from mixtape.train.loop import TrainConfig, TrainError, resolve_dataset, train

pytestmark = pytest.mark.slow
QUIET = {"log": lambda _m: None}


def _cfg(base: str, out: Path, **kw) -> TrainConfig:
    defaults = dict(shards=f"{base}/dataset.json", out=str(out), steps=40, batch_size=8, crop_seconds=0.75, lr=5e-3,
                    warmup_steps=5, seed=3, shuffle_buffer=16)
    return TrainConfig(**{**defaults, **kw})


def test_training_from_http_shards_logs_and_checkpoints(tiny_build, http_server, tmp_path):
    out, card = tiny_build
    base = http_server(out)
    result = train(_cfg(base, tmp_path / "run", tasks="tags,genre"), **QUIET)
    assert result.steps == 40 and result.samples == 320
    assert result.final_loss < 0.8 * result.first_loss
    assert result.valid["snippets"] == card["splits"]["valid"]["samples"]
    assert set(result.valid["clip"]) == {"tags", "genre"}
    run = tmp_path / "run"
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [e["step"] for e in events if e["event"] == "train"] == list(range(4, 41, 4))
    assert events[-1]["event"] == "eval" and "clip/tags/roc_auc" in events[-1]
    assert any((run / "tensorboard").iterdir())  # TensorBoard is installed in the dev environment
    ckpt = load_checkpoint(run)
    assert ckpt["step"] == 40 and ckpt["vocabularies"]["tags"] == card["vocabularies"]["tags"]
    assert {"model", "optimizer", "scheduler", "rng", "stream", "model_spec", "tasks"} <= set(ckpt)
    assert len(ckpt["stream"]) == 1 and ckpt["stream"][0]["positions"]  # stopped mid-epoch: a position


def _trace(run: Path) -> list[list[str]]:
    return [json.loads(line)["keys"] for line in (run / "trace.jsonl").read_text().splitlines()]


def test_a_resumed_run_sees_the_same_remaining_samples_and_losses(tiny_build, http_server, tmp_path):
    out, card = tiny_build
    base = http_server(out)
    kw = dict(steps=30, num_workers=2, trace=True, batch_size=4, checkpoint_every=5)
    full = train(_cfg(base, tmp_path / "full", **kw), **QUIET)
    per_epoch = card["splits"]["train"]["samples"] // 4
    assert full.epochs >= 1 and 30 > per_epoch  # the run crosses an epoch boundary
    part = train(_cfg(base, tmp_path / "part", stop_after=11, **kw), **QUIET)
    assert part.interrupted and part.steps == 11
    rest = train(_cfg(base, tmp_path / "part", resume=str(tmp_path / "part"), **kw), **QUIET)
    assert rest.steps == 30
    assert _trace(tmp_path / "part") == _trace(tmp_path / "full")  # same samples, same order, after the break too
    assert rest.losses == full.losses  # bit-identical training (optimiser, schedule, RNG restored), and the
    # summary describes the whole run, whatever the interruptions
    assert (rest.first_loss, rest.final_loss, rest.samples) == (full.first_loss, full.final_loss, full.samples)
    whole = json.loads((tmp_path / "part" / "metrics.json").read_text())
    assert whole["losses"] == json.loads((tmp_path / "full" / "metrics.json").read_text())["losses"]
    assert load_checkpoint(tmp_path / "part", "checkpoint.pt")["stream"][0]["epoch"] >= 1
    mid = train(_cfg(base, tmp_path / "mid", stop_after=3, **kw), **QUIET)
    assert mid.interrupted and load_checkpoint(tmp_path / "mid")["stream"][0]["positions"]
    with pytest.raises(TrainError, match="--loader-workers 2"):  # positions are per loader worker: same count
        train(_cfg(base, tmp_path / "mid", resume=str(tmp_path / "mid"), **{**kw, "num_workers": 0}), **QUIET)


def test_early_stopping_and_exact_epochs(tiny_build, tmp_path):
    out, card = tiny_build
    stopped = train(_cfg(str(out), tmp_path / "es", lr=1e-9, warmup_steps=1, eval_every=2, patience=2, steps=40),
                    **QUIET)
    assert stopped.stopped_early and stopped.steps == 6  # evals at 2 (best), 4 and 6 (no gain) -> stop
    assert (tmp_path / "es" / "best.pt").exists()
    n = card["splits"]["train"]["samples"]
    epochs = train(_cfg(str(out), tmp_path / "ep", steps=None, epochs=2, batch_size=5), **QUIET)
    assert epochs.epochs == 2 and epochs.steps == 2 * (n // 5)


def test_dataset_folder_or_url_stands_for_its_train_shards(tiny_build, http_server, tmp_path):
    out, card = tiny_build
    names = [s["name"] for s in card["splits"]["train"]["shards"]]
    for spec in (str(out), http_server(out) + "/dataset.json"):
        _, urls, valid = resolve_dataset(TrainConfig(shards=spec, out=str(tmp_path)))
        assert [u.rsplit("/", 1)[1] for u in urls] == names
        assert [u.rsplit("/", 1)[1] for u in valid] == [s["name"] for s in card["splits"]["valid"]["shards"]]
    with pytest.raises(TrainError, match="neither shard URLs nor a dataset folder"):
        resolve_dataset(TrainConfig(shards=str(tmp_path / "nothing"), out=str(tmp_path)))
    with pytest.raises(TrainError, match="--card"):
        train(TrainConfig(shards=str(tmp_path / "train-000000.tar"), out=str(tmp_path / "run"), steps=1))


def test_ddp_with_two_gloo_processes(tiny_build, tmp_path):
    """torchrun starts two ranks; they read disjoint shards, take the same number of steps and rank 0 writes."""
    out, _ = tiny_build
    run = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "mixtape",
           "train", "--shards", str(out), "--out", str(run), "--steps", "6", "--batch-size", "4",
           "--crop-seconds", "0.75", "--loader-workers", "1", "--trace", "--threads", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 rank(s)" in proc.stdout and proc.stdout.count("trained 6 steps") == 1
    traces = [[k for line in (run / f"trace-rank{r}.jsonl").read_text().splitlines()
               for k in json.loads(line)["keys"]] for r in (0, 1)]
    assert len(traces[0]) == len(traces[1]) == 24  # equal batch counts on both ranks
    assert not set(traces[0]) & set(traces[1])  # disjoint shards
    ckpt = load_checkpoint(run)
    assert ckpt["step"] == 6 and len(ckpt["stream"]) == 2 and len(ckpt["rng"]) == 2
    assert json.loads((run / "metrics.json").read_text())["samples"] == 48


def test_cli_train_evaluate_embed_probe_baseline(tiny_build, tmp_path, capsys):
    out, card = tiny_build
    run = tmp_path / "run"
    assert main(["train", "--shards", str(out), "--out", str(run), "--steps", "12", "--batch-size", "8",
                 "--crop-seconds", "0.75", "--tasks", "tags,genre,key,tempo", "--model", "pons-small",
                 "--compression", "db", "--norm", "a_weighting"]) == 0
    text = capsys.readouterr().out
    assert "trained 12 steps" in text and "ROC-AUC" in text and "MIREX" in text and "Acc1" in text

    assert main(["evaluate", str(run), "--shards", str(out), "--split", "test",
                 "--out", str(tmp_path / "e.json")]) == 0
    text = capsys.readouterr().out
    assert "per tag (clip level)" in text and "confusion genre" in text
    report = json.loads((tmp_path / "e.json").read_text())
    test = card["splits"]["test"]
    assert report["clips"] == test["clips"] and report["snippets"] == test["samples"]

    emb = tmp_path / "emb.parquet"
    assert main(["embed", str(run), "--shards", str(out), "--split", "train", "--out", str(emb)]) == 0
    import pyarrow.parquet as pq

    table = pq.read_table(emb)
    assert table.num_rows == card["splits"]["train"]["clips"]
    from mixtape.train.runs import embed_run

    index = pq.read_table(out / "index.parquet").to_pylist()
    originals = sum(1 for r in index if r["split"] == "train" and r["variant"] == 0)
    assert originals < card["splits"]["train"]["samples"]  # the train split has augmented variants...
    r = embed_run(str(run), str(out), str(tmp_path / "emb2.parquet"), "train")
    assert r["windows"] == 2 * originals  # ...which embeddings leave out (1 s snippets, two 0.75 s windows)
    assert {"clip_id", "embedding", "tags", "genre", "key", "tempo"} <= set(table.column_names)
    base = tmp_path / "baseline.parquet"
    assert main(["baseline", "--shards", str(out), "--split", "train", "--out", str(base)]) == 0
    text = capsys.readouterr().out
    assert "MIREX" in text and "Acc1" in text
    assert main(["probe", str(emb), str(base), "--label", "tag:bass", "--folds", "2"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "tag:bass" in ln]
    assert len(lines) == 4 and all(0.0 <= float(ln.split()[3]) <= 1.0 for ln in lines)
    assert main(["probe", str(emb), "--label", "mood"]) == 2
    assert "no label column 'mood'" in capsys.readouterr().err


def test_bad_training_options_are_named(tiny_build, tmp_path, capsys):
    out, _ = tiny_build
    assert main(["train", "--shards", str(out), "--out", str(tmp_path / "r"), "--tasks", "mood"]) == 2
    assert "unknown task 'mood'" in capsys.readouterr().err
    assert main(["train", "--shards", str(out), "--out", str(tmp_path / "r"), "--n-mels", "2"]) == 2
    assert "n_mels" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "nowhere"), "--shards", str(out)]) == 2
    assert "no checkpoint" in capsys.readouterr().err


@pytest.mark.parametrize("preset", ["samplecnn-small", "pons-small", "shortchunk-small"])
def test_each_model_family_learns_the_demo_tags_from_http_shards(preset, demo_dataset, http_server, tmp_path):
    base = http_server(demo_dataset)
    r = train(TrainConfig(shards=f"{base}/dataset.json", out=str(tmp_path / preset), model=preset, steps=150,
                          seed=0), **QUIET)
    clip, snippet = r.valid["clip"]["tags"]["roc_auc"], r.valid["snippet"]["tags"]["roc_auc"]
    print(f"{preset}: valid tags ROC-AUC clip {clip:.3f} snippet {snippet:.3f} ({r.valid['clips']} clips)")
    assert clip > 0.65 and snippet > 0.6  # chance is 0.5
    assert r.final_loss < 0.6 * r.first_loss


def test_training_continues_past_corrupt_input_and_reports_it_per_epoch(tiny_build, http_server, tmp_path):
    from tests.test_train_stream import _rewrite_shard

    out, card = tiny_build
    shards = [s["name"] for s in card["splits"]["train"]["shards"]]
    data = tmp_path / "data"
    data.mkdir()
    _rewrite_shard(out / shards[0], data / shards[0], corrupt_audio=0, corrupt_json=1)
    whole = (out / shards[1]).read_bytes()
    (data / shards[1]).write_bytes(whole[: len(whole) // 2])
    for name in shards[2:]:
        (data / name).write_bytes((out / name).read_bytes())
    (data / "dataset.json").write_bytes((out / "dataset.json").read_bytes())
    base = http_server(data)
    urls = " ".join(f"{base}/{n}" for n in [*shards, "train-999999.tar"])
    messages: list[str] = []
    r = train(TrainConfig(shards=urls, out=str(tmp_path / "run"), steps=None, epochs=2, batch_size=4,
                          crop_seconds=0.75, num_workers=2, seed=1), log=messages.append)
    assert r.epochs == 2 and r.steps > 0
    assert r.stream["corrupt"] == 2 * 4  # per epoch: bad FLAC, bad JSON, truncated shard, 404
    epochs = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
              if '"event": "epoch"' in line]
    assert [e["stream"]["corrupt"] for e in epochs] == [4, 4]
    assert sum("skipped 4 corrupt" in m for m in messages) == 2 and any("404" in m for m in messages)


def test_resuming_on_another_dataset_is_refused_naming_both_hashes(tiny_build, tmp_path, capsys):
    import shutil

    out, card = tiny_build
    run = tmp_path / "run"
    assert train(_cfg(str(out), run, stop_after=3, steps=10), **QUIET).interrupted

    def other(name, change):
        copy = tmp_path / name
        shutil.copytree(out, copy, ignore=shutil.ignore_patterns("report"))
        doc = json.loads((copy / "dataset.json").read_text())
        change(doc)
        (copy / "dataset.json").write_text(json.dumps(doc))
        return copy

    def rehash(doc):
        doc["spec_hash"] = "f" * 64

    def retag(doc):
        rehash(doc)
        doc["vocabularies"]["tags"] = doc["vocabularies"]["tags"][:-1]

    for copy, vocab in ((other("rehashed", rehash), False), (other("retagged", retag), True)):
        args = ["train", "--shards", str(copy), "--resume", str(run), "--out", str(run), "--steps", "10",
                "--batch-size", "8", "--crop-seconds", "0.75"]
        assert main(args) == 2
        err = capsys.readouterr().err
        assert f"spec hash {card['spec_hash'][:12]}" in err and "ffffffffffff" in err and "--force" in err, err
        assert ("the tags vocabulary differs" in err) == vocab
    result = train(_cfg(str(tmp_path / "rehashed"), run, steps=10, resume=str(run), force=True), **QUIET)
    assert result.steps == 10


def test_a_finished_run_says_so_and_extends_only_when_asked(tiny_build, tmp_path, capsys):
    out, _ = tiny_build
    run = tmp_path / "run"
    done = train(_cfg(str(out), run, steps=12), **QUIET)
    summary = (run / "metrics.json").read_text()
    for steps in (12, 8):  # the same budget, or a smaller one: nothing to do, and the summary untouched
        with pytest.raises(TrainError, match="is a finished run \\(12 steps"):
            train(_cfg(str(out), run, steps=steps, resume=str(run)), **QUIET)
    assert (run / "metrics.json").read_text() == summary
    more = train(_cfg(str(out), run, steps=16, resume=str(run)), **QUIET)
    assert more.steps == 16 and len(more.losses) == 16 and more.losses[:12] == done.losses
    epochs = tmp_path / "epochs"
    train(_cfg(str(out), epochs, steps=None, epochs=2), **QUIET)
    with pytest.raises(TrainError, match="finished run"):
        train(_cfg(str(out), epochs, steps=None, epochs=2, resume=str(epochs)), **QUIET)


def test_the_last_evaluation_runs_once_and_counts_once_for_patience(tiny_build, tmp_path):
    out, card = tiny_build
    per_epoch = card["splits"]["train"]["samples"] // 8
    run = tmp_path / "run"
    r = train(_cfg(str(out), run, steps=None, epochs=3, batch_size=8, eval_every=per_epoch, patience=1), **QUIET)
    evals = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if '"eval"' in x]
    steps = [e["step"] for e in evals]
    assert len(steps) == len(set(steps)), steps  # no step evaluated twice
    assert r.steps in steps


@pytest.mark.parametrize("workers", [0, 2])
def test_the_planned_step_count_is_the_steps_run(tiny_build, tmp_path, workers):
    out, _ = tiny_build
    lines: list[str] = []
    r = train(_cfg(str(out), tmp_path / f"w{workers}", steps=None, epochs=2, batch_size=8, num_workers=workers),
              log=lines.append)
    planned = next(int(x.split("/")[1].split()[0]) for x in lines if x.startswith("step "))
    assert planned == r.steps, lines
    banner = lines[0]
    assert ("2 loader worker process(es)" if workers else "in-process loading") in banner, banner


def test_a_split_smaller_than_a_batch_says_so(tiny_build, tmp_path):
    out, card = tiny_build
    n = card["splits"]["train"]["samples"]
    with pytest.raises(TrainError, match=f"the train shards hold {n} samples, fewer than one batch of "
                                         f"--batch-size {n + 1}"):
        train(_cfg(str(out), tmp_path / "run", batch_size=n + 1), **QUIET)


def test_samples_shorter_than_the_crop_are_counted_and_named(tiny_build, tmp_path):
    out, _ = tiny_build  # 1 s snippets
    lines: list[str] = []
    r = train(_cfg(str(out), tmp_path / "run", steps=None, epochs=1, crop_seconds=1.5), log=lines.append)
    assert r.stream["short"] == r.stream["samples"] > 0
    assert any(f"{r.stream['short']} of {r.stream['samples']} samples read were shorter than the 1.50 s input" in x
               for x in lines), lines
    quiet: list[str] = []
    assert train(_cfg(str(out), tmp_path / "ok", steps=None, epochs=1), log=quiet.append).stream["short"] == 0
    assert not any("shorter than" in x for x in quiet)


def test_evaluating_on_a_dataset_with_other_vocabularies_warns_naming_the_differences(tiny_build, tmp_path, capsys):
    import shutil

    out, _ = tiny_build
    run = tmp_path / "run"
    train(_cfg(str(out), run, steps=4, tasks="tags,genre"), **QUIET)
    other = tmp_path / "other"
    shutil.copytree(out, other, ignore=shutil.ignore_patterns("report"))
    doc = json.loads((other / "dataset.json").read_text())
    dropped = doc["vocabularies"]["tags"][0]
    doc["vocabularies"]["tags"] = [*doc["vocabularies"]["tags"][1:], "zither"]
    (other / "dataset.json").write_text(json.dumps(doc))
    assert main(["evaluate", str(run), "--shards", str(other)]) == 0
    err = capsys.readouterr().err
    assert f"tags: only in the run {dropped}; only in the dataset zither" in err, err
    assert main(["evaluate", str(run), "--shards", str(out)]) == 0
    assert "vocabularies differ" not in capsys.readouterr().err

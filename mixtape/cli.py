"""The ``mixtape`` command line. Each subcommand is a thin layer over a library function."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import replace
from typing import Any

from mixtape import __version__
from mixtape.errors import MixtapeError

COMMANDS = {
    "build": "build a dataset (WebDataset shards + index + card) from a spec with Apache Beam",
    "train": "train a model on shards given by URL (local path, file://, http(s)://, gs://, s3://)",
    "evaluate": "score a trained run on shards: per-clip ROC/PR-AUC, accuracy + confusion, MIREX key, tempo Acc1/2",
    "embed": "write per-clip embeddings (penultimate features of a trained run) to Parquet",
    "probe": "cross-validate a kNN or logistic-regression probe on an embeddings table",
    "baseline": "the non-learned key (chroma + key profiles) and tempo (onset autocorrelation) baseline",
    "report": "write an HTML report of a dataset: plots, spectrograms, audio players, attribution",
    "inspect": "summarise a built dataset from its card (counts, splits, rejects, vocabularies)",
    "verify": "check a dataset against its card (shards, samples, index); optionally re-render a sample of shards",
    "demo": "generate the embedded demo collection, build it, train briefly and print what happened",
    "freesound": "search Freesound (API v2) or download a search's sounds into a local dump (resumable)",
    "fsd50k": "unpack the FSD50K release (split zips) into the layout `kind: fsd50k` reads",
}


MODEL_PRESETS = ("samplecnn", "samplecnn-small", "pons", "pons-small", "shortchunk", "shortchunk-small", "keycnn")


class UsageError(MixtapeError, ValueError):
    """A command-line value that cannot work; the message names the option and the fix."""


def _split_beam_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """Everything after a bare ``--`` is passed to Beam untouched (e.g. ``-- --job_endpoint=...``)."""
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1:]
    return argv, []


def build_summary(card: dict[str, Any]) -> list[str]:
    acc = card["accounting"]
    lines = [f"clips in {acc['clips_in']} = used {acc['clips_used']} + rejected {acc['clips_rejected']}"]
    for reason, n in acc["rejects_by_reason"].items():
        lines.append(f"  rejected {n} x {reason}")
    for split, s in card["splits"].items():
        lines.append(f"{split:>6}: {s['samples']:5d} samples in {len(s['shards']):3d} shards from "
                     f"{s['clips']:4d} clips ({s['sample_seconds'] / 60:.1f} min of samples)")
    aug = card.get("augmentation", {})
    if aug.get("augmented_samples"):
        lines.append(f"augmented: {aug['augmented_samples']} samples ("
                     + ", ".join(f"{op} {n}" for op, n in aug["ops"].items()) + ")")
    vocab = card["vocabularies"]
    lines.append(f"vocabularies: {len(vocab['tags'])} tags; classes "
                 + (", ".join(f"{k} ({len(v)})" for k, v in vocab["classes"].items()) or "none"))
    lines += [f"WARNING: {w}" for w in empty_splits(card)]
    lines += [f"WARNING: {w}" for w in card.get("_build", {}).get("warnings", [])]
    return lines


def empty_splits(card: dict[str, Any]) -> list[str]:
    """A warning per split without samples (and one for a dataset without any)."""
    out = [f"split {name} has no samples" for name, s in card["splits"].items() if not s["samples"]]
    if card["splits"] and all(not s["samples"] for s in card["splits"].values()):
        out.append("the build wrote no samples at all: see the rejects above (`mixtape inspect` lists them)")
    return out


def _cmd_build(args: argparse.Namespace, beam_args: list[str]) -> int:
    from mixtape.pipelines.build import RunnerConfig, build
    from mixtape.spec import load_spec

    spec = load_spec(args.spec)
    if args.cache_mb is not None and args.cache_mb < 0:
        print("mixtape build: --cache-mb must be 0 or more (megabytes of decoded audio per render worker)",
              file=sys.stderr)
        return 2
    cache_mb = RunnerConfig.cache_mb if args.cache_mb is None else args.cache_mb  # the dataclass default
    card = build(spec, args.out, RunnerConfig(runner=args.runner, workers=args.workers, beam_args=tuple(beam_args),
                                              cache_mb=cache_mb),
                 overwrite=args.overwrite, incremental=args.incremental, log=print)
    if "dry_run" in card:
        job = card["dry_run"]
        print(json.dumps(job, indent=1, sort_keys=True))
        print(f"dry run: Dataflow job {job['job'].get('name')} built, not submitted")
        return 0
    for line in build_summary(card):
        print(line)
    b = card["_build"]
    if args.incremental:
        print(f"incremental: re-rendered {b['shards_rendered']} shards, kept {b['shards_reused']}")
    print(f"built {card['name']} (spec {card['spec_hash'][:12]}) in {card['_build']['wall_seconds']:.1f} s "
          f"-> {args.out}")
    return 0


def cli_frontend(args: argparse.Namespace) -> Any:
    """The front-end the train options name: unset options keep FrontendConfig's defaults (or, for a preset
    with a front-end of its own and no --frontend, that one)."""
    from mixtape.train.frontend import FrontendConfig
    from mixtape.train.models import PRESET_FRONTENDS

    kind = args.frontend or (PRESET_FRONTENDS[args.model].kind if args.model in PRESET_FRONTENDS else "logmel")
    base = PRESET_FRONTENDS.get(args.model) if args.model in PRESET_FRONTENDS and kind != "logmel" else None
    if base is None:
        base = FrontendConfig(kind=kind) if kind == "logmel" else FrontendConfig(kind=kind, n_fft=4096, hop=512)
    given = {"n_fft": args.n_fft, "hop": args.hop}
    return replace(base, kind=kind, n_mels=args.n_mels, f_min=args.f_min, f_max=args.f_max,
                   compression=args.compression, norm=args.norm, scale=args.scale,
                   bins_per_semitone=args.bins_per_semitone, octaves=args.octaves,
                   **{k: v for k, v in given.items() if v is not None})


def _cmd_train(args: argparse.Namespace, beam_args: list[str]) -> int:
    from mixtape.train.loop import TrainConfig, train

    try:
        frontend = cli_frontend(args)
    except ValueError as e:
        raise UsageError(str(e)) from e
    steps = None if args.epochs is not None and args.steps is None else (args.steps or TrainConfig.steps)
    cfg = TrainConfig(shards=args.shards, out=args.out, valid_shards=args.valid_shards, card=args.card,
                      model=args.model, width=args.width, blocks=args.blocks, tasks=args.tasks, frontend=frontend,
                      steps=steps, epochs=args.epochs, batch_size=args.batch_size, crop_seconds=args.crop_seconds,
                      crops=args.crops, lr=args.lr, weight_decay=args.weight_decay, warmup_steps=args.warmup,
                      grad_clip=args.grad_clip, dropout=args.dropout, shuffle_buffer=args.shuffle_buffer,
                      resampled=args.resampled, eval_every=args.eval_every, patience=args.patience,
                      checkpoint_every=args.checkpoint_every, num_workers=args.workers, seed=args.seed,
                      threads=args.threads, device=args.device, amp=not args.no_amp, resume=args.resume,
                      stop_after=args.stop_after, trace=args.trace, force=args.force,
                      verify_remote=args.verify_remote, clips=args.clips)
    r = train(cfg)
    if int(os.environ.get("RANK", "0")) != 0:
        return 0
    print(f"trained {r.steps} steps, {r.epochs} epoch(s) ({r.samples} samples, {r.samples_per_second:.0f} "
          f"samples/s): loss {r.first_loss:.4f} -> {r.final_loss:.4f}"
          + ("; stopped early" if r.stopped_early else "") + ("; interrupted as asked" if r.interrupted else ""))
    if r.valid.get("clip"):
        from mixtape.train.evaluate import format_report
        from mixtape.train.runs import LoadedRun

        for line in format_report(LoadedRun(args.out, "last").tasks, r.valid, per_tag=False):
            print(line)
    if r.stream.get("corrupt"):
        print(f"skipped {r.stream['corrupt']} corrupt sample(s): " + "; ".join(r.stream["errors"][:3]))
    print(f"checkpoint: {r.checkpoint}")
    return 0


def _cmd_evaluate(args: argparse.Namespace, beam_args: list[str]) -> int:
    from mixtape.train.evaluate import format_report
    from mixtape.train.runs import evaluate_run

    loaded, report = evaluate_run(args.run, args.shards, args.split, args.batch_size, args.workers)
    for warning in report.get("warnings", []):
        print(f"warning: {warning}", file=sys.stderr)
    print(f"run {loaded.path} (step {loaded.step}, {loaded.spec.preset})")
    for line in format_report(loaded.tasks, report):
        print(line)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)
        print(f"wrote {args.json}")
    return 0


def _cmd_embed(args: argparse.Namespace, beam_args: list[str]) -> int:
    from mixtape.train.runs import embed_run

    r = embed_run(args.run, args.shards, args.out, args.split, args.batch_size, args.workers)
    print(f"embedded {r['clips']} clips ({r['windows']} windows, {r['dim']} dims) -> {r['out']}")
    return 0


def _cmd_probe(args: argparse.Namespace, beam_args: list[str]) -> int:
    from mixtape.train.transfer import probe

    classifiers = ["knn", "logreg"] if args.classifier == "both" else [args.classifier]
    print(f"{'table':<28}{'label':<14}{'classifier':<11}{'accuracy':>9}{'± std':>8}{'chance':>8}{'clips':>7}"
          f"{'classes':>8}{'folds':>6}")
    for table in args.tables:
        for c in classifiers:
            r = probe(table, args.label, c, args.folds, args.seed)
            print(f"{os.path.basename(table)[:27]:<28}{r.label:<14}{r.classifier:<11}{r.accuracy:>9.3f}"
                  f"{r.std:>8.3f}{r.chance:>8.3f}{r.n:>7}{r.classes:>8}{r.folds:>6}"
                  + (f"  (left out, in one clip only: {', '.join(r.dropped)})" if r.dropped else ""))
    return 0


def _cmd_baseline(args: argparse.Namespace, beam_args: list[str]) -> int:
    from mixtape.train.runs import baseline_run

    r = baseline_run(args.shards, args.split, args.out)
    key, tempo = r["key"], r["tempo"]

    def f(v: float | None) -> str:
        return "-" if v is None else f"{v:.3f}"

    print(f"non-learned baseline on {r['clips']} clips ({r['snippets']} snippets)")
    print(f"key   (chroma + Krumhansl-Kessler profiles): MIREX {f(key['mirex'])}, accuracy {f(key['accuracy'])} "
          f"(n={key['n']}; chance accuracy 0.042)")
    print(f"tempo (onset autocorrelation, 120 bpm prior): Acc1 {f(tempo['acc1'])}, Acc2 {f(tempo['acc2'])} "
          f"(n={tempo['n']})")
    if args.out:
        print(f"features -> {args.out} (compare with `mixtape probe {args.out} ...`)")
    return 0


def _cmd_verify(args: argparse.Namespace, beam_args: list[str]) -> int:
    from mixtape.dataset.verify import verify

    report = verify(args.dataset, args.rerender, args.seed, args.spec)
    for problem in report.problems:
        print(f"PROBLEM {problem}")
    for note in report.notes:
        print(f"note: {note}")
    rerendered = f"; re-rendered {len(report.rerendered)} ({', '.join(report.rerendered)})" if report.rerendered else ""
    verdict = "OK" if report.ok else f"{len(report.problems)} problem(s)"
    print(f"{verdict}: {report.shards_checked} shards, {report.samples_checked} samples checked{rerendered}")
    return 0 if report.ok else 1


def _cmd_report(args: argparse.Namespace, beam_args: list[str]) -> int:
    from mixtape.report.page import write_report

    path = write_report(args.dataset, args.out, args.examples, args.seed, log=lambda m: print(m, flush=True))
    print(f"report: {path} (open it in a browser; it needs no network)")
    return 0


def _cmd_inspect(args: argparse.Namespace, beam_args: list[str]) -> int:
    from mixtape.dataset.inspect import describe

    for line in describe(args.dataset):
        print(line)
    return 0


def _cmd_demo(args: argparse.Namespace, beam_args: list[str]) -> int:
    from mixtape.demo.run import run_demo

    r = run_demo(args.out, clips=args.clips, steps=args.steps, seed=args.seed, workers=args.workers)
    card, t = r["card"], r["train"]
    print()
    print("=" * 78)
    print("mixtape demo: what happened")
    print("=" * 78)
    for line in build_summary(card):
        print(line)
    print(f"build time: {card['_build']['wall_seconds']:.1f} s (Beam {card['_build']['runner']} runner, "
          f"{card['_build']['workers']} worker(s)); folk-tune dump rendered in {r['generate_seconds']:.1f} s")
    print(f"training: {t.steps} steps, {t.samples} samples at {t.samples_per_second:.0f} samples/s, "
          f"{t.parameters:,} parameters; loss {t.first_loss:.4f} -> {t.final_loss:.4f}")
    from mixtape.train.evaluate import format_report
    from mixtape.train.runs import LoadedRun

    print("results on the valid split (a clip's snippets averaged; chance in brackets):")
    for line in format_report(LoadedRun(r["run"], "last").tasks, t.valid, per_tag=False):
        print(f"  {line}")
    print("written:")
    print(f"  collection  {r['collection']['path']}")
    print(f"  spec        {r['spec']}")
    print(f"  dataset     {r['dataset']}  (shards, index.parquet, rejects.parquet, dataset.json)")
    print(f"  run         {r['run']}  (checkpoint.pt, metrics.jsonl, metrics.json)")
    print(f"  report      {r['report']}  (plots, spectrograms, audio players; open in a browser)")
    print("try:")
    print(f"  .venv/bin/mixtape train --shards {r['dataset']} --model pons-small --tasks tags,genre,key --steps 300 "
          "--out RUN   (a dataset folder stands for its train shards)")
    print(f"  .venv/bin/mixtape evaluate {r['run']} --shards {r['dataset']} --split test")
    print(f"  .venv/bin/mixtape embed {r['run']} --shards {r['dataset']} --split test --out emb.parquet && "
          ".venv/bin/mixtape probe emb.parquet --label genre")
    print(f"total: {r['total_seconds']:.1f} s")
    return 0


def _cmd_freesound(args: argparse.Namespace, beam_args: list[str]) -> int:
    from mixtape.sources.freesound.client import FreesoundClient
    from mixtape.sources.freesound.download import FIELDS, download_dump

    def log(message: str) -> None:
        print(message, file=sys.stderr)

    client = FreesoundClient.from_env(requests_per_minute=args.rpm, log=log)
    if args.action == "search":
        fields = args.fields.split(",") if args.fields else FIELDS
        n = 0
        for _, page in client.pages(client.search_url(args.query, args.filter, args.sort, fields, args.page_size)):
            for sound in page["results"]:
                print(json.dumps(sound, ensure_ascii=False))
                n += 1
                if n >= args.max:
                    return 0
        return 0
    report = download_dump(client, args.out, args.query, args.filter, args.sort, args.max, args.originals,
                           args.preview, args.page_size, args.restart, log=log, verbose=args.verbose)
    print(f"{len(report.downloaded)} downloaded, {len(report.skipped)} already there, {len(report.failed)} failed "
          f"of {report.sounds_listed} listed -> {args.out} (read it with `kind: freesound_dump`)")
    for sid, reason in report.failed:
        print(f"  failed {sid}: {reason}")
    return 1 if report.failed else 0


def _cmd_fsd50k(args: argparse.Namespace, beam_args: list[str]) -> int:
    from mixtape.sources.fsd50k.unpack import unpack_release

    skipped: list[str] = []
    written = unpack_release(args.dist, args.out, skipped, log=lambda m: print(m, flush=True))
    for name in skipped:
        print(f"skipped {name}: only regular files are extracted")
    print(f"{len(written)} files -> {args.out} (read it with `kind: fsd50k, path: {args.out}`)")
    return 0


def _add_evaluation_shards(p: argparse.ArgumentParser) -> None:
    """The shards that evaluate, embed and baseline read: URLs, or a dataset and one of its splits."""
    p.add_argument("--shards", required=True, help="shard URLs (brace-expanded) or a dataset folder/URL")
    p.add_argument("--split", default="valid", help="which split of a dataset folder (default valid)")


class _Deprecated(argparse.Action):
    """An old option spelling that still works and says what replaced it."""

    def __init__(self, option_strings: list[str], dest: str, new: str, **kw: Any):
        super().__init__(option_strings, dest, **kw)
        self.new = new

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        print(f"mixtape: {option_string} is deprecated; use {self.new}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def _loader_workers(group: Any, default: int) -> None:
    """``--loader-workers``: DataLoader processes (``--workers`` means Beam worker processes in build and
    demo; here it still works, with a deprecation message)."""
    group.add_argument("--loader-workers", dest="workers", type=int, default=default,
                       help="DataLoader worker processes per rank")
    group.add_argument("--workers", dest="workers", type=int, help=argparse.SUPPRESS, action=_Deprecated,
                       new="--loader-workers", default=argparse.SUPPRESS)


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mixtape", description="Reproducible, augmented music-ML datasets: "
                                "Beam builds WebDataset shards from open collections; PyTorch trains on them.")
    p.add_argument("--version", action="version", version=f"mixtape {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    b = sub.add_parser("build", help=COMMANDS["build"], description=COMMANDS["build"] +
                       ". Beam pipeline options go after a bare `--`.")
    b.add_argument("spec", help="the dataset spec (YAML)")
    b.add_argument("--out", required=True, help="output folder for shards, index.parquet and dataset.json")
    b.add_argument("--runner", default="direct", choices=["direct", "portable", "flink", "dataflow"],
                   help="Beam runner (default: direct = in-process FnApiRunner)")
    b.add_argument("--workers", type=int, default=1, help="direct runner: worker processes (default 1)")
    b.add_argument("--cache-mb", type=int, default=None, metavar="MB",
                   help="memory each render worker process keeps for decoded source audio (default 512): a clip's "
                        "samples are spread over many shards, so clips that stay cached are decoded once per "
                        "worker; the output does not depend on it")
    b.add_argument("--overwrite", action="store_true", help="replace a dataset already in --out")
    b.add_argument("--incremental", action="store_true",
                   help="update the dataset in --out: keep unchanged shards, render the rest "
                        "(the same bytes as a full build)")
    b.set_defaults(func=_cmd_build)

    t = sub.add_parser("train", help=COMMANDS["train"], description=COMMANDS["train"] +
                       ". Under torchrun (--nproc_per_node N) it trains data-parallel: gloo on CPU, nccl on GPU.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    t.add_argument("--shards", required=True,
                   help="train shard URLs, brace-expanded ('DIR/train-{000000..000003}.tar'), or a dataset folder/URL")
    t.add_argument("--out", required=True, help="run folder: checkpoint.pt, best.pt, metrics.jsonl, metrics.json")
    t.add_argument("--valid-shards", help="valid shard URLs (default: the card's valid split, beside --shards)")
    t.add_argument("--card", help="dataset.json URL (default: beside the first shard)")
    t.add_argument("--clips", help="a file of clip ids, one per line: train only on those clips' samples "
                                   "(a subset for a data-scarcity study); valid shards are not filtered")
    from mixtape.train.config import FrontendConfig, TrainConfig

    tc, fc = TrainConfig(shards="", out=""), FrontendConfig()  # every default below is read from these
    g = t.add_argument_group("model")
    g.add_argument("--model", default=tc.model, choices=list(MODEL_PRESETS),
                   help="family and size; *-small presets have < 100k parameters")
    g.add_argument("--width", type=int, default=tc.width, help="channels of the first block (0: the preset's)")
    g.add_argument("--blocks", type=int, default=tc.blocks, help="samplecnn: stride-3 stages; input 3^(blocks+1)")
    g.add_argument("--tasks", default=tc.tasks,
                   help="comma-separated: tags, key, tempo, a class field (e.g. genre), or all")
    g.add_argument("--dropout", type=float, default=tc.dropout, help="dropout before the head")
    g = t.add_argument_group("spectrogram front-end")
    g.add_argument("--frontend", default=None, choices=["logmel", "logfreq", "chroma"],
                   help=f"{fc.kind} unless the preset has its own (keycnn: logfreq); logfreq has semitone-spaced "
                        "bins, chroma 12 pitch classes")
    g.add_argument("--bins-per-semitone", type=int, default=fc.bins_per_semitone, help="logfreq / chroma resolution")
    g.add_argument("--octaves", type=int, default=fc.octaves, help="logfreq / chroma range above --f-min")
    g.add_argument("--f-min", type=float, default=fc.f_min, help="lowest frequency (logfreq / chroma: 0 = C2)")
    g.add_argument("--n-fft", type=int, default=None, help=f"STFT size (None: {fc.n_fft}; logfreq / chroma 4096)")
    g.add_argument("--hop", type=int, default=None, help=f"STFT hop (None: {fc.hop}; logfreq / chroma 512)")
    g.add_argument("--n-mels", type=int, default=fc.n_mels, help="mel bands (logmel)")
    g.add_argument("--f-max", type=float, default=fc.f_max, help="highest mel frequency (None: Nyquist)")
    g.add_argument("--compression", default=fc.compression, choices=["log1p", "db"], help="log(1 + C·mel) or dB")
    g.add_argument("--norm", default=fc.norm, choices=["per_frequency", "a_weighting", "none"])
    g.add_argument("--scale", type=float, default=fc.scale, help="multiply the front-end output")
    g = t.add_argument_group("schedule")
    g.add_argument("--steps", type=int, default=None, help=f"optimiser steps (None: {tc.steps} unless --epochs)")
    g.add_argument("--epochs", type=int, default=tc.epochs, help="exact epochs over the train shards")
    g.add_argument("--batch-size", type=int, default=tc.batch_size, help="samples per optimiser step and rank")
    g.add_argument("--crop-seconds", type=float, default=tc.crop_seconds, help="spectrogram models' random crop")
    g.add_argument("--crops", type=int, default=tc.crops, help="random crops per sample")
    g.add_argument("--lr", type=float, default=tc.lr, help="peak learning rate (AdamW)")
    g.add_argument("--weight-decay", type=float, default=tc.weight_decay, help="AdamW weight decay")
    g.add_argument("--warmup", type=int, default=tc.warmup_steps, help="linear warm-up steps before the cosine decay")
    g.add_argument("--grad-clip", type=float, default=tc.grad_clip, help="gradient norm clipping")
    g.add_argument("--shuffle-buffer", type=int, default=tc.shuffle_buffer,
                   help="samples held for shuffling per reader")
    g.add_argument("--resampled", action="store_true", help="draw shards with replacement, endlessly (needs --steps)")
    g.add_argument("--eval-every", type=int, default=tc.eval_every,
                   help="evaluate every N steps (0: each epoch / at the end)")
    g.add_argument("--patience", type=int, default=tc.patience, help="stop after N evaluations without improvement")
    g.add_argument("--checkpoint-every", type=int, default=tc.checkpoint_every, help="also checkpoint every N steps")
    g.add_argument("--resume", help="continue the run in this folder (or checkpoint) exactly where it stopped")
    g.add_argument("--stop-after", type=int, help="leave after N steps of this invocation (resume later)")
    g.add_argument("--force", action="store_true",
                   help="with --resume: continue even on a dataset with another spec hash or vocabulary")
    g.add_argument("--verify-remote", action="store_true",
                   help="check remote shards against the card's sha256 before reading (local ones always are)")
    g = t.add_argument_group("machine")
    _loader_workers(g, tc.num_workers)
    g.add_argument("--threads", type=int, default=tc.threads, help="torch CPU threads (0: torch's default)")
    g.add_argument("--device", default=tc.device, help="auto (GPU when present), cpu, cuda:0, ...")
    g.add_argument("--no-amp", action="store_true", help="no mixed precision on GPU")
    g.add_argument("--seed", type=int, default=tc.seed, help="seeds initial weights, sample order and crops")
    g.add_argument("--trace", action="store_true", help="log every step's sample keys to trace.jsonl")
    t.set_defaults(func=_cmd_train)

    for name, fn in (("evaluate", _cmd_evaluate), ("embed", _cmd_embed)):
        e = sub.add_parser(name, help=COMMANDS[name], description=COMMANDS[name])
        e.add_argument("run", help="run folder written by `mixtape train` (best.pt if present, else checkpoint.pt)")
        _add_evaluation_shards(e)
        e.add_argument("--batch-size", type=int, default=32)
        _loader_workers(e, 0)
        if name == "evaluate":
            e.add_argument("--out", dest="json", help="also write the full report (per tag, confusion matrices), "
                                                      "as JSON, to this file")
            e.add_argument("--json", dest="json", help=argparse.SUPPRESS, action=_Deprecated, new="--out",
                           default=argparse.SUPPRESS)
        else:
            e.add_argument("--out", required=True, help="Parquet file: clip_id, embedding, label columns")
        e.set_defaults(func=fn)

    pr = sub.add_parser("probe", help=COMMANDS["probe"], description=COMMANDS["probe"])
    pr.add_argument("tables", nargs="+", help="embedding tables from `mixtape embed` or `mixtape baseline --out`")
    pr.add_argument("--label", required=True, help="a label column (genre, key, tempo, ...) or tag:NAME")
    pr.add_argument("--classifier", default="both", choices=["knn", "logreg", "both"])
    pr.add_argument("--folds", type=int, default=5, help="stratified folds (fewer if a class is rarer)")
    pr.add_argument("--seed", type=int, default=0)
    pr.set_defaults(func=_cmd_probe)

    bl = sub.add_parser("baseline", help=COMMANDS["baseline"], description=COMMANDS["baseline"])
    _add_evaluation_shards(bl)
    bl.add_argument("--out", help="also write the baseline's per-clip features (Parquet) for `mixtape probe`")
    bl.set_defaults(func=_cmd_baseline)

    v = sub.add_parser("verify", help=COMMANDS["verify"], description=COMMANDS["verify"])
    v.add_argument("dataset", help="dataset folder")
    v.add_argument("--rerender", type=float, default=0.0, metavar="FRACTION",
                   help="re-render this fraction of shards (seeded choice) and compare bytes, e.g. 0.05")
    v.add_argument("--seed", type=int, default=0, help="which seeded subset --rerender picks")
    v.add_argument("--spec", help="spec file to locate the inputs (default: the build's build.json)")
    v.set_defaults(func=_cmd_verify)

    rp = sub.add_parser("report", help=COMMANDS["report"], description=COMMANDS["report"])
    rp.add_argument("dataset", help="dataset folder")
    rp.add_argument("--out", help="report folder (default: DATASET/report)")
    rp.add_argument("--examples", type=int, default=3, help="seeded example samples per split (default 3)")
    rp.add_argument("--seed", type=int, default=0, help="which examples")
    rp.set_defaults(func=_cmd_report)

    i = sub.add_parser("inspect", help=COMMANDS["inspect"], description=COMMANDS["inspect"])
    i.add_argument("dataset", help="dataset folder or URL, or its dataset.json")
    i.set_defaults(func=_cmd_inspect)

    d = sub.add_parser("demo", help=COMMANDS["demo"], description=COMMANDS["demo"])
    d.add_argument("--out", default="demo-output", help="where to write collection/, spec.yaml, dataset/, run/")
    d.add_argument("--clips", type=int, default=260,
                   help="pieces to render (chorales, Palestrina, trecento, folk tunes); the default gives valid and "
                        "test splits of 30+ pieces each")
    d.add_argument("--steps", type=int, default=150, help="training steps")
    d.add_argument("--seed", type=int, default=7, help="seed of the generated collection")
    d.add_argument("--workers", type=int, default=1, help="Beam direct runner worker processes")
    d.set_defaults(func=_cmd_demo)

    f = sub.add_parser("freesound", help=COMMANDS["freesound"], description=COMMANDS["freesound"] +
                       ". Credentials come only from FREESOUND_API_KEY (search, previews) and FREESOUND_OAUTH_TOKEN "
                       "(original files); FREESOUND_API_BASE points at another server.")
    fsub = f.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action, text in (("search", "print matching sounds as JSON lines"),
                         ("download", "download matching sounds into a local dump; rerun to resume")):
        a = fsub.add_parser(action, help=text, description=text)
        a.add_argument("query", help="text query (may be empty: '')")
        a.add_argument("--filter", help="Solr filter, e.g. 'tag:piano duration:[1 TO 30]'")
        a.add_argument("--sort", help="e.g. score, rating_desc, created_desc")
        a.add_argument("--max", type=int, default=100, help="at most this many sounds (default 100)")
        a.add_argument("--page-size", type=int, default=150)
        a.add_argument("--rpm", type=float, default=60, help="request budget per minute (default 60)")
        if action == "search":
            a.add_argument("--fields", help="comma-separated response fields (default: what a dump needs)")
        else:
            a.add_argument("--out", required=True, help="dump folder (metadata.jsonl + audio/)")
            a.add_argument("--originals", action="store_true", help="original files (needs FREESOUND_OAUTH_TOKEN)")
            a.add_argument("--preview", default="hq-ogg", help="preview quality: hq-ogg, hq-mp3, lq-ogg, lq-mp3")
            a.add_argument("--restart", action="store_true", help="forget an earlier download's state in --out")
            a.add_argument("--verbose", action="store_true", help="report every chunk written")
    f.set_defaults(func=_cmd_freesound)

    k = sub.add_parser("fsd50k", help=COMMANDS["fsd50k"], description=COMMANDS["fsd50k"])
    ksub = k.add_subparsers(dest="action", metavar="ACTION", required=True)
    unpack = ("extract every archive of the FSD50K release folder (split .zNN parts are read in place, not "
              "joined): each member goes to a temporary name and is renamed only after its CRC checks; symlink "
              "members are skipped and named; files already there are kept when identical, never overwritten")
    u = ksub.add_parser("unpack", help="extract every archive of the release folder (parts read in place)",
                        description=unpack)
    u.add_argument("dist", help="the folder with FSD50K.dev_audio.z01 … .zip, FSD50K.ground_truth.zip, …")
    u.add_argument("--out", required=True, help="where the FSD50K.* folders go")
    k.set_defaults(func=_cmd_fsd50k)
    return p


def quiet_logging() -> None:
    """Warnings only; Beam's import-time notice about optional GCP client libraries is not the user's concern."""
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    import apache_beam  # noqa: F401

    logging.getLogger().setLevel(logging.WARNING)
    # Beam logs a failing DoFn's traceback itself before raising it; mixtape reports the failure once (as a
    # one-line message for known causes, with the traceback otherwise), so that log line is a duplicate.
    logging.getLogger("apache_beam.runners.common").setLevel(logging.CRITICAL)


#: commands that run Beam (and so import it: its import-time notices are silenced first)
BEAM_COMMANDS = ("build", "demo", "verify")


def main(argv: list[str] | None = None) -> int:
    own, beam_args = _split_beam_args(list(sys.argv[1:] if argv is None else argv))
    args = make_parser().parse_args(own)
    if args.command in BEAM_COMMANDS:
        quiet_logging()
    else:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if beam_args and args.command != "build":
        print(f"mixtape {args.command}: arguments after `--` are Beam options and only `build` takes them",
              file=sys.stderr)
        return 2
    try:
        return args.func(args, beam_args)
    except (MixtapeError, FileExistsError, FileNotFoundError) as e:  # every error a user can act on
        print(f"mixtape {args.command}: {e}", file=sys.stderr)
        return 2

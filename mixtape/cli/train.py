"""``mixtape train``, ``evaluate``, ``embed``, ``probe``, ``baseline``: models on shards by URL."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from typing import Any

from mixtape.cli.common import COMMANDS, Deprecated, UsageError, add_evaluation_shards, loader_workers
from mixtape.train.config import EVAL_BATCH_SIZE, LOGFREQ_STFT, PRESETS, PROBE_FOLDS

MODEL_PRESETS = tuple(PRESETS)


def cli_frontend(args: argparse.Namespace) -> Any:
    """The front-end the train options name: unset options keep FrontendConfig's defaults (or, for a preset
    with a front-end of its own and no --frontend, that one)."""
    from mixtape.train.config import PRESET_FRONTENDS, default_frontend

    kind = args.frontend or (PRESET_FRONTENDS[args.model].kind if args.model in PRESET_FRONTENDS else "logmel")
    base = PRESET_FRONTENDS.get(args.model) if args.model in PRESET_FRONTENDS and kind != "logmel" else None
    if base is None:
        base = default_frontend(kind)
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


def add_parsers(sub: Any) -> None:
    _add_train(sub)
    _add_evaluate_and_embed(sub)
    _add_probe(sub)
    _add_baseline(sub)


def _add_train(sub: Any) -> None:
    from mixtape.train.config import FrontendConfig, TrainConfig

    tc, fc = TrainConfig(shards="", out=""), FrontendConfig()  # every default below is read from these
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
    _add_model_options(t.add_argument_group("model"), tc)
    _add_frontend_options(t.add_argument_group("spectrogram front-end"), fc)
    _add_schedule_options(t.add_argument_group("schedule"), tc)
    _add_run_options(t.add_argument_group("resuming and checking"))
    _add_machine_options(t.add_argument_group("machine"), tc)
    t.set_defaults(func=_cmd_train)


def _add_model_options(g: Any, tc: Any) -> None:
    g.add_argument("--model", default=tc.model, choices=list(MODEL_PRESETS),
                   help="family and size; *-small presets have < 100k parameters")
    g.add_argument("--width", type=int, default=tc.width, help="channels of the first block (0: the preset's)")
    g.add_argument("--blocks", type=int, default=tc.blocks, help="samplecnn: stride-3 stages; input 3^(blocks+1)")
    g.add_argument("--tasks", default=tc.tasks,
                   help="comma-separated: tags, key, tempo, a class field (e.g. genre), or all")
    g.add_argument("--dropout", type=float, default=tc.dropout, help="dropout before the head")


def _add_frontend_options(g: Any, fc: Any) -> None:
    g.add_argument("--frontend", default=None, choices=["logmel", "logfreq", "chroma"],
                   help=f"{fc.kind} unless the preset has its own (keycnn: logfreq); logfreq has semitone-spaced "
                        "bins, chroma 12 pitch classes")
    g.add_argument("--bins-per-semitone", type=int, default=fc.bins_per_semitone, help="logfreq / chroma resolution")
    g.add_argument("--octaves", type=int, default=fc.octaves, help="logfreq / chroma range above --f-min")
    g.add_argument("--f-min", type=float, default=fc.f_min, help="lowest frequency (logfreq / chroma: 0 = C2)")
    long = LOGFREQ_STFT
    g.add_argument("--n-fft", type=int, default=None,
                   help=f"STFT size (None: {fc.n_fft}; logfreq / chroma {long['n_fft']})")
    g.add_argument("--hop", type=int, default=None, help=f"STFT hop (None: {fc.hop}; logfreq / chroma {long['hop']})")
    g.add_argument("--n-mels", type=int, default=fc.n_mels, help="mel bands (logmel)")
    g.add_argument("--f-max", type=float, default=fc.f_max, help="highest mel frequency (None: Nyquist)")
    g.add_argument("--compression", default=fc.compression, choices=["log1p", "db"], help="log(1 + C·mel) or dB")
    g.add_argument("--norm", default=fc.norm, choices=["per_frequency", "a_weighting", "none"])
    g.add_argument("--scale", type=float, default=fc.scale, help="multiply the front-end output")


def _add_schedule_options(g: Any, tc: Any) -> None:
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


def _add_run_options(g: Any) -> None:
    g.add_argument("--resume", help="continue the run in this folder (or checkpoint) exactly where it stopped")
    g.add_argument("--stop-after", type=int, help="leave after N steps of this invocation (resume later)")
    g.add_argument("--force", action="store_true",
                   help="with --resume: continue even on a dataset with another spec hash or vocabulary")
    g.add_argument("--verify-remote", action="store_true",
                   help="check remote shards against the card's sha256 before reading (local ones always are)")


def _add_machine_options(g: Any, tc: Any) -> None:
    loader_workers(g, tc.num_workers)
    g.add_argument("--threads", type=int, default=tc.threads, help="torch CPU threads (0: torch's default)")
    g.add_argument("--device", default=tc.device, help="auto (GPU when present), cpu, cuda:0, ...")
    g.add_argument("--no-amp", action="store_true", help="no mixed precision on GPU")
    g.add_argument("--seed", type=int, default=tc.seed, help="seeds initial weights, sample order and crops")
    g.add_argument("--trace", action="store_true", help="log every step's sample keys to trace.jsonl")


def _add_evaluate_and_embed(sub: Any) -> None:
    for name, fn in (("evaluate", _cmd_evaluate), ("embed", _cmd_embed)):
        e = sub.add_parser(name, help=COMMANDS[name], description=COMMANDS[name])
        e.add_argument("run", help="run folder written by `mixtape train` (best.pt if present, else checkpoint.pt)")
        add_evaluation_shards(e)
        e.add_argument("--batch-size", type=int, default=EVAL_BATCH_SIZE)
        loader_workers(e, 0)
        if name == "evaluate":
            e.add_argument("--out", dest="json", help="also write the full report (per tag, confusion matrices), "
                                                      "as JSON, to this file")
            e.add_argument("--json", dest="json", help=argparse.SUPPRESS, action=Deprecated, new="--out",
                           default=argparse.SUPPRESS)
        else:
            e.add_argument("--out", required=True, help="Parquet file: clip_id, embedding, label columns")
        e.set_defaults(func=fn)


def _add_probe(sub: Any) -> None:
    pr = sub.add_parser("probe", help=COMMANDS["probe"], description=COMMANDS["probe"])
    pr.add_argument("tables", nargs="+", help="embedding tables from `mixtape embed` or `mixtape baseline --out`")
    pr.add_argument("--label", required=True, help="a label column (genre, key, tempo, ...) or tag:NAME")
    pr.add_argument("--classifier", default="both", choices=["knn", "logreg", "both"])
    pr.add_argument("--folds", type=int, default=PROBE_FOLDS, help="stratified folds (fewer if a class is rarer)")
    pr.add_argument("--seed", type=int, default=0)
    pr.set_defaults(func=_cmd_probe)


def _add_baseline(sub: Any) -> None:
    bl = sub.add_parser("baseline", help=COMMANDS["baseline"], description=COMMANDS["baseline"])
    add_evaluation_shards(bl)
    bl.add_argument("--out", help="also write the baseline's per-clip features (Parquet) for `mixtape probe`")
    bl.set_defaults(func=_cmd_baseline)

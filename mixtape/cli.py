"""The ``mixtape`` command line. Each subcommand is a thin layer over a library function."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from mixtape import __version__

COMMANDS = {
    "build": "build a dataset (WebDataset shards + index + card) from a spec with Apache Beam",
    "train": "train a model on shards given by URL (local path, file://, http(s)://, gs://, s3://)",
    "inspect": "summarise a built dataset from its card (counts, splits, rejects, vocabularies)",
    "verify": "check a dataset against its card (shards, samples, index); optionally re-render a sample of shards",
    "demo": "generate the embedded demo collection, build it, train briefly and print what happened",
    "freesound": "search Freesound (API v2) or download a search's sounds into a local dump (resumable)",
    "fsd50k": "unpack the FSD50K release (split zips) into the layout `kind: fsd50k` reads",
}


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
                 + ", ".join(f"{k} ({len(v)})" for k, v in vocab["classes"].items()))
    return lines


def _cmd_build(args: argparse.Namespace, beam_args: list[str]) -> int:
    from mixtape.pipelines.build import RunnerConfig, build
    from mixtape.spec import load_spec

    spec = load_spec(args.spec)
    card = build(spec, args.out, RunnerConfig(runner=args.runner, workers=args.workers, beam_args=tuple(beam_args)),
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


def _cmd_train(args: argparse.Namespace, beam_args: list[str]) -> int:
    from mixtape.train.loop import TrainConfig, train

    cfg = TrainConfig(shards=args.shards, out=args.out, valid_shards=args.valid_shards, card=args.card,
                      steps=args.steps, batch_size=args.batch_size, lr=args.lr, width=args.width,
                      crop_seconds=args.crop_seconds, eval_every=args.eval_every, num_workers=args.workers,
                      seed=args.seed)
    r = train(cfg)
    print(f"trained {r.steps} steps ({r.samples} samples, {r.samples_per_second:.0f} samples/s): "
          f"loss {r.first_loss:.4f} -> {r.final_loss:.4f}")
    print(f"valid: {json.dumps(r.valid)}")
    print(f"checkpoint: {r.checkpoint}")
    return 0


def _cmd_verify(args: argparse.Namespace, beam_args: list[str]) -> int:
    from mixtape.verify import verify

    report = verify(args.dataset, args.rerender, args.seed, args.spec)
    for problem in report.problems:
        print(f"PROBLEM {problem}")
    for note in report.notes:
        print(f"note: {note}")
    rerendered = f"; re-rendered {len(report.rerendered)} ({', '.join(report.rerendered)})" if report.rerendered else ""
    verdict = "OK" if report.ok else f"{len(report.problems)} problem(s)"
    print(f"{verdict}: {report.shards_checked} shards, {report.samples_checked} samples checked{rerendered}")
    return 0 if report.ok else 1


def _cmd_inspect(args: argparse.Namespace, beam_args: list[str]) -> int:
    from mixtape.inspect_card import describe

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
          f"{card['_build']['workers']} worker(s)); collection generated in {r['generate_seconds']:.1f} s")
    v = t.valid
    auc = f"{v['roc_auc']:.3f}" if v.get("roc_auc") is not None else "n/a"
    clip_auc = f"{v['clip_roc_auc']:.3f}" if v.get("clip_roc_auc") is not None else "n/a"
    print(f"training: {t.steps} steps, {t.samples} samples at {t.samples_per_second:.0f} samples/s, "
          f"{t.parameters:,} parameters; loss {t.first_loss:.4f} -> {t.final_loss:.4f}")
    print(f"valid ROC-AUC (tags, macro): {auc} per snippet ({v.get('snippets', 0)}), "
          f"{clip_auc} per clip ({v.get('clips', 0)})")
    print("written:")
    print(f"  collection  {r['collection']['path']}")
    print(f"  spec        {r['spec']}")
    print(f"  dataset     {r['dataset']}  (shards, index.parquet, rejects.parquet, dataset.json)")
    print(f"  run         {r['run']}  (checkpoint.pt, metrics.json)")
    print(f"try: .venv/bin/mixtape train --shards {r['dataset']} --steps 200 --out RUN   "
          "(a dataset folder stands for its train shards)")
    print(f"total: {r['total_seconds']:.1f} s")
    return 0


def _cmd_freesound(args: argparse.Namespace, beam_args: list[str]) -> int:
    from mixtape.freesound.client import FreesoundClient
    from mixtape.freesound.download import FIELDS, download_dump

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
    from mixtape.fsd50k import unpack_release

    written = unpack_release(args.dist, args.out)
    print(f"{len(written)} files -> {args.out} (read it with `kind: fsd50k, path: {args.out}`)")
    return 0


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
    b.add_argument("--overwrite", action="store_true", help="replace a dataset already in --out")
    b.add_argument("--incremental", action="store_true",
                   help="update the dataset in --out: keep unchanged shards, render the rest "
                        "(the same bytes as a full build)")
    b.set_defaults(func=_cmd_build)

    t = sub.add_parser("train", help=COMMANDS["train"], description=COMMANDS["train"])
    t.add_argument("--shards", required=True,
                   help="train shard URLs, brace-expanded ('DIR/train-{000000..000003}.tar'), or a dataset folder/URL")
    t.add_argument("--out", required=True, help="run folder for checkpoint.pt and metrics.json")
    t.add_argument("--valid-shards", help="valid shard URLs (default: the card's valid split, beside --shards)")
    t.add_argument("--card", help="dataset.json URL (default: beside the first shard)")
    t.add_argument("--steps", type=int, default=200)
    t.add_argument("--batch-size", type=int, default=16)
    t.add_argument("--lr", type=float, default=3e-3)
    t.add_argument("--width", type=int, default=16, help="model width (channels of the first block)")
    t.add_argument("--crop-seconds", type=float, default=2.0, help="random crop length fed to the model")
    t.add_argument("--eval-every", type=int, default=0, help="evaluate every N steps (0: only at the end)")
    t.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    t.add_argument("--seed", type=int, default=0)
    t.set_defaults(func=_cmd_train)

    v = sub.add_parser("verify", help=COMMANDS["verify"], description=COMMANDS["verify"])
    v.add_argument("dataset", help="dataset folder")
    v.add_argument("--rerender", type=float, default=0.0, metavar="FRACTION",
                   help="re-render this fraction of shards (seeded choice) and compare bytes, e.g. 0.05")
    v.add_argument("--seed", type=int, default=0, help="which seeded subset --rerender picks")
    v.add_argument("--spec", help="spec file to locate the inputs (default: the build's build.json)")
    v.set_defaults(func=_cmd_verify)

    i = sub.add_parser("inspect", help=COMMANDS["inspect"], description=COMMANDS["inspect"])
    i.add_argument("dataset", help="dataset folder or URL, or its dataset.json")
    i.set_defaults(func=_cmd_inspect)

    d = sub.add_parser("demo", help=COMMANDS["demo"], description=COMMANDS["demo"])
    d.add_argument("--out", default="demo-output", help="where to write collection/, spec.yaml, dataset/, run/")
    d.add_argument("--clips", type=int, default=60, help="number of generated clips (40-100 is sensible)")
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
    u = ksub.add_parser("unpack", help="extract every archive of the release folder (parts read in place)")
    u.add_argument("dist", help="the folder with FSD50K.dev_audio.z01 … .zip, FSD50K.ground_truth.zip, …")
    u.add_argument("--out", required=True, help="where the FSD50K.* folders go")
    k.set_defaults(func=_cmd_fsd50k)
    return p


def quiet_logging() -> None:
    """Warnings only; Beam's import-time notice about optional GCP client libraries is not the user's concern."""
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    import apache_beam  # noqa: F401

    logging.getLogger().setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    quiet_logging()
    from mixtape.freesound.client import FreesoundError
    from mixtape.pipelines.build import BuildError
    from mixtape.spec import SpecError
    from mixtape.storage import ShardURLError
    from mixtape.train.loop import TrainError

    own, beam_args = _split_beam_args(list(sys.argv[1:] if argv is None else argv))
    args = make_parser().parse_args(own)
    if beam_args and args.command != "build":
        print(f"mixtape {args.command}: arguments after `--` are Beam options and only `build` takes them",
              file=sys.stderr)
        return 2
    try:
        return args.func(args, beam_args)
    except (SpecError, BuildError, TrainError, ShardURLError, FileExistsError, FileNotFoundError,
            FreesoundError) as e:
        print(f"mixtape {args.command}: {e}", file=sys.stderr)
        return 2

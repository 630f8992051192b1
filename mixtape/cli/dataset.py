"""``mixtape verify``, ``report``, ``inspect``, ``env``: a built dataset checked, shown, summarised, and the
environment that made it."""

from __future__ import annotations

import argparse
from typing import Any

from mixtape.cli.common import COMMANDS


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


def _cmd_env(args: argparse.Namespace, beam_args: list[str]) -> int:
    from mixtape.dataset.api import open_dataset
    from mixtape.dataset.verify import environment_differences
    from mixtape.versions import install_commands

    opened = open_dataset(args.dataset)
    print(f"# what built {opened.location} ({opened.name}, spec {opened.spec_hash[:12]}); to render it again byte "
          "for byte, install exactly this:")
    for line in install_commands(opened.card["versions"]):
        print(line)
    differences = environment_differences(opened.card)
    print("# this environment: " + ("every recorded version matches" if not differences else
                                    "differs in " + "; ".join(differences)))
    return 0


def _cmd_export(args: argparse.Namespace, beam_args: list[str]) -> int:
    from mixtape.dataset.api import open_dataset
    from mixtape.dataset.lhotse_shar import export_shar

    opened = open_dataset(args.dataset)
    counts = export_shar(opened.location, opened.card, args.out, log=print)
    print(f"exported {sum(counts.values())} samples as Lhotse Shar -> {args.out} "
          f"(lhotse.CutSet.from_shar(in_dir='{args.out}/train'))")
    return 0


def add_parsers(sub: Any) -> None:
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

    e = sub.add_parser("env", help=COMMANDS["env"], description=COMMANDS["env"])
    e.add_argument("dataset", help="dataset folder or URL, or its dataset.json")
    e.set_defaults(func=_cmd_env)

    x = sub.add_parser("export", help=COMMANDS["export"], description=COMMANDS["export"])
    x.add_argument("dataset", help="dataset folder or URL, or its dataset.json")
    x.add_argument("--format", default="lhotse-shar", choices=["lhotse-shar"],
                   help="lhotse-shar: cuts + recording shards per split (Hugging Face datasets needs no export: "
                        "see mixtape.dataset.hf)")
    x.add_argument("--out", required=True, help="a new (or empty) folder: OUT/<split>/cuts.*.jsonl.gz, recording.*.tar")
    x.set_defaults(func=_cmd_export)

    i = sub.add_parser("inspect", help=COMMANDS["inspect"], description=COMMANDS["inspect"])
    i.add_argument("dataset", help="dataset folder or URL, or its dataset.json")
    i.set_defaults(func=_cmd_inspect)

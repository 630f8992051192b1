"""``mixtape build``: a spec to a dataset with Beam."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from mixtape.cli.common import COMMANDS, build_summary


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
                 overwrite=args.overwrite, incremental=args.incremental, log=print,
                 live=sys.stdout if sys.stdout.isatty() else None)  # on a terminal: one progress line
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


def add_parsers(sub: Any) -> None:
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

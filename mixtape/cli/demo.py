"""``mixtape demo``: the embedded collection built, trained on and reported, in one command."""

from __future__ import annotations

import argparse
from typing import Any

from mixtape.cli.common import COMMANDS, build_summary
from mixtape.demo.config import DEMO


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


def add_parsers(sub: Any) -> None:
    d = sub.add_parser("demo", help=COMMANDS["demo"], description=COMMANDS["demo"],
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    d.add_argument("--out", default=DEMO.out, help="where to write collection/, spec.yaml, dataset/, run/")
    d.add_argument("--clips", type=int, default=DEMO.clips,
                   help="pieces to render (chorales, Palestrina, trecento, folk tunes); the default gives valid and "
                        "test splits of 30+ pieces each")
    d.add_argument("--steps", type=int, default=DEMO.steps, help="training steps")
    d.add_argument("--seed", type=int, default=DEMO.seed, help="seed of the generated collection")
    d.add_argument("--workers", type=int, default=DEMO.workers, help="Beam direct runner worker processes")
    d.set_defaults(func=_cmd_demo)

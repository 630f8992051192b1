"""Each model family on the demo dataset, trained from shards served over a local HTTP server.

    .venv/bin/python bench/models.py [--dataset demo-output/dataset] [--steps 300] [--tasks tags]

Builds the demo dataset first when --dataset does not exist (``mixtape demo``'s collection and spec), serves
the dataset folder with a real HTTP server, trains every preset given (default: the three small ones) and
prints the clip-level validation figures next to chance, plus parameters and samples/s.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mixtape.train.evaluate import format_report
from mixtape.train.loop import TrainConfig, train
from mixtape.train.runs import LoadedRun


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


def serve(folder: Path) -> tuple[str, http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}", server


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="demo-output/dataset")
    p.add_argument("--models", default="samplecnn-small,pons-small,shortchunk-small")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--tasks", default="tags")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", default="/tmp/mixtape-bench-models")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    dataset = Path(args.dataset)
    if not (dataset / "dataset.json").exists():
        from mixtape.demo.run import run_demo

        print(f"building the demo dataset under {dataset.parent} ...")
        run_demo(str(dataset.parent), steps=0, log=lambda _m: None)
    base, server = serve(dataset)
    rows = []
    try:
        for preset in args.models.split(","):
            t0 = time.monotonic()
            r = train(TrainConfig(shards=f"{base}/dataset.json", out=f"{args.out}/{preset}", model=preset,
                                  steps=args.steps, tasks=args.tasks, num_workers=args.workers, seed=args.seed),
                      log=lambda _m: None)
            run = LoadedRun(f"{args.out}/{preset}", "last")
            print(f"\n== {preset}: {r.parameters:,} parameters, {r.steps} steps in {time.monotonic() - t0:.0f} s "
                  f"({r.samples_per_second:.0f} samples/s), loss {r.first_loss:.3f} -> {r.final_loss:.3f}")
            for line in format_report(run.tasks, r.valid, per_tag=False):
                print(line)
            rows.append((preset, r))
    finally:
        server.shutdown()
    print(f"\n{'model':<18}{'params':>8}{'samples/s':>10}{'valid score (clip)':>20}")
    for preset, r in rows:
        print(f"{preset:<18}{r.parameters:>8,}{r.samples_per_second:>10.0f}{r.score:>20.3f}")


if __name__ == "__main__":
    main()

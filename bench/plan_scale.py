"""The plan phase at scale, by simulation: synthetic probed clips (metadata only, no audio), planned by
mixtape's own Beam ``Plan`` transform, at growing sizes.

    .venv/bin/python bench/plan_scale.py [--sizes 10000,100000] [--workers 1] [--seconds 30]

Each size runs in a fresh process (DirectRunner; ``--workers`` > 1: that many worker processes) and
prints wall time, peak RSS of the driver and of the biggest worker, and the plan's row count. Every clip
is ``--seconds`` (6) long at 16 kHz with loudness per 100 ms filled in, groups of 8 clips share an uploader,
and the spec is bench/build.py's (3 s snippets, 4 train variants with pitch, stretch and a 30 % mix), so
the plan draws parameters, picks partners from each split's pool and cuts hash-range shards as a real
build does. The issue's goal: time no worse than linear in the clip count, memory per worker flat.
Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _one(n: int, workers: int, seconds: float) -> dict:
    import importlib

    import apache_beam as beam

    from mixtape.pipelines.plan import Plan
    from mixtape.pipelines.runners import RunnerConfig, make_pipeline
    from mixtape.records import Clip
    from mixtape.spec import parse_spec

    sys.path.insert(0, str(ROOT / "bench"))  # bench/build.py's spec, imported by name: it is a script, not a package
    bench_spec = importlib.import_module("build").bench_spec
    spec = parse_spec({**bench_spec(4), "sources": [{"kind": "folder", "path": "."}]}, ROOT)
    blocks = round(seconds * 10)

    def clip(i: int) -> Clip:
        return Clip(clip_id=f"folder:c{i:07d}.flac", uri=f"/nowhere/c{i:07d}.flac", relpath=f"c{i:07d}.flac",
                    source=spec.sources[0].name, uploader=f"u{i // 8}", licence="cc0", sample_rate=16000,
                    channels=1, frames=round(seconds * 16000), sha256=f"{i:064x}",
                    block_rms_db=tuple(-20.0 - (i + k) % 7 for k in range(blocks)))

    t0 = time.monotonic()
    p = make_pipeline(RunnerConfig(workers=workers))
    planned = (p | "Clips" >> beam.Create(range(n), reshuffle=False) | "Make" >> beam.Map(clip)
               | "Plan" >> Plan(spec))
    # counted by the pipeline and left in a file (Beam's counters undercount on the multi-process runner)
    tally = Path(tempfile.mkdtemp(prefix="mixtape-plan-scale-")) / "rows"
    _ = (planned.rows | "Count" >> beam.combiners.Count.Globally()
         | "Note" >> beam.Map(lambda c, path: Path(path).write_text(str(c)), str(tally)))
    result = p.run()
    result.wait_until_finish()
    wall = time.monotonic() - t0
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"clips": n, "rows": int(tally.read_text()), "wall_s": round(wall, 1),
            "driver_peak_rss_mb": round(own), "worker_peak_rss_mb": round(kids) if workers > 1 else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a single size, in this process
    args = ap.parse_args()
    if args.one:
        print(json.dumps(_one(args.one, args.workers, args.seconds)))
        return
    from mixtape.cli import quiet_logging

    quiet_logging()
    results = []
    for n in (int(x) for x in args.sizes.split(",")):
        r = subprocess.run([sys.executable, __file__, "--one", str(n), "--workers", str(args.workers),
                            "--seconds", str(args.seconds)], capture_output=True, text=True)
        if r.returncode != 0:
            print(f"{n} clips: failed\n{r.stderr[-2000:]}")
            break
        results.append(json.loads(r.stdout.strip().splitlines()[-1]))
        x = results[-1]
        per = x["wall_s"] / n * 1e6
        print(f"{n:>9,} clips -> {x['rows']:>10,} rows in {x['wall_s']:7.1f} s ({per:6.0f} µs/clip); peak RSS "
              f"driver {x['driver_peak_rss_mb']} MB" + (f", worker {x['worker_peak_rss_mb']} MB"
                                                       if x["worker_peak_rss_mb"] else ""), flush=True)
    if len(results) > 1:
        a, b = results[0], results[-1]
        growth = (b["wall_s"] / a["wall_s"]) / (b["clips"] / a["clips"])
        print(f"time per clip grows {growth:.2f}x from {a['clips']:,} to {b['clips']:,} clips (1.0: linear); "
              f"driver RSS {a['driver_peak_rss_mb']} -> {b['driver_peak_rss_mb']} MB")
    print(json.dumps({"bench": "plan_scale", "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                      "results": results}))


if __name__ == "__main__":
    main()

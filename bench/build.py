"""Build throughput: audio-seconds of output per wall-second, DirectRunner with 1 and 2 worker processes.

Run with ``make bench`` (or ``.venv/bin/python bench/build.py --clips 40``). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import yaml

from mixtape.cli import quiet_logging
from mixtape.demo.collection import generate
from mixtape.pipelines.build import RunnerConfig, build
from mixtape.spec import load_spec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--clips", type=int, default=40)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--variants", type=int, default=4)
    ap.add_argument("--work", default=None, help="working folder (default: a temporary one)")
    args = ap.parse_args()
    quiet_logging()
    work = Path(args.work or tempfile.mkdtemp(prefix="mixtape-bench-"))
    t0 = time.monotonic()
    generate(work / "collection", seed=11, n_clips=args.clips, min_seconds=args.seconds, max_seconds=args.seconds,
             bad_clips=False)
    print(f"generated {args.clips} clips x {args.seconds:g} s in {time.monotonic() - t0:.1f} s ({work})")
    spec = {
        "name": "bench", "seed": 1,
        "sources": [{"kind": "freesound_dump", "path": "collection/freesound"}],
        "audio": {"sample_rate": 16000, "channels": 1, "format": "flac"},
        "snippets": {"duration": 3.0, "hop": 3.0},
        "splits": {"group_by": "clip", "fractions": {"train": 0.8, "valid": 0.1, "test": 0.1}},
        "augment": {"variants": args.variants, "chain": [{"op": "gain", "p": 1.0, "db": [-6, 6]}]},
        "shards": {"max_samples": 32},
    }
    (work / "spec.yaml").write_text(yaml.safe_dump(spec))
    loaded = load_spec(work / "spec.yaml")
    results = {}
    for workers in (1, 2):
        started = time.monotonic()
        card = build(loaded, str(work / f"out-{workers}"), RunnerConfig(workers=workers), overwrite=True)
        wall = time.monotonic() - started
        audio_out = sum(s["sample_seconds"] for s in card["splits"].values())
        results[workers] = {"wall_s": round(wall, 2), "audio_out_s": audio_out,
                            "audio_s_per_wall_s": round(audio_out / wall, 1)}
        print(f"mixtape build, DirectRunner, {workers} worker(s): {audio_out:.0f} s of audio in {wall:.1f} s "
              f"= {audio_out / wall:.1f} audio-s/s")
    print(f"1 -> 2 worker speed-up: {results[1]['wall_s'] / results[2]['wall_s']:.2f}x")
    print(json.dumps({"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                      "results": results}))


if __name__ == "__main__":
    main()

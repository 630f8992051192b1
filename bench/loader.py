"""Throughput of the training stream against a decode-only loop over the same shards.

    .venv/bin/python bench/loader.py [--dataset demo-output/dataset] [--repeat 3]

(a) the stream: ``ShardStream`` in a ``DataLoader`` with 2 workers, shuffle buffer, random crops, label
    encoding and batching, from local files and from a local HTTP server;
(b) decode-only: one process that reads each shard's members and decodes every FLAC, nothing else;
(c) decode-only on 2 forked processes (one per core, shards split between them): this machine's limit.
Goal: (a) >= 0.8 x (b). Prints samples/s and the ratios.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path

import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from models import serve
from torch.utils.data import DataLoader

from mixtape.dataset.shardformat import iter_members
from mixtape.train.data import ShardStream
from mixtape.train.targets import LabelEncoder


def decode_only(paths: list[str]) -> int:
    n = 0
    for path in paths:
        with open(path, "rb") as f:
            for _key, suffix, data in iter_members(f):
                if suffix in ("flac", "wav"):
                    sf.read(io.BytesIO(data), dtype="float32")
                    n += 1
    return n


def stream_rate(urls: list[str], card: dict, workers: int) -> tuple[int, float]:
    stream = ShardStream(urls, LabelEncoder.from_card(card), int(card["audio"]["sample_rate"]),
                         crop_samples=2 * int(card["audio"]["sample_rate"]), batch_size=16, shuffle_buffer=256, seed=0)
    t0 = time.perf_counter()
    n = sum(len(b["keys"]) for b in DataLoader(stream, batch_size=None, num_workers=workers))
    return n, time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="demo-output/dataset")
    p.add_argument("--repeat", type=int, default=3, help="best of N runs")
    p.add_argument("--passes", type=int, default=5, help="read the shard list this many times per run, so that "
                   "process start-up does not dominate a small dataset")
    args = p.parse_args()
    dataset = Path(args.dataset)
    if not (dataset / "dataset.json").exists():
        from mixtape.demo.run import run_demo

        print(f"building the demo dataset under {dataset.parent} ...")
        run_demo(str(dataset.parent), steps=0, log=lambda _m: None)
    card = json.loads((dataset / "dataset.json").read_text())
    names = [s["name"] for split in card["splits"].values() for s in split["shards"]] * args.passes
    paths = [str(dataset / n) for n in names]
    base, server = serve(dataset)
    results: dict[str, float] = {}

    def best(label: str, n: int, seconds: float) -> None:
        results[label] = max(results.get(label, 0.0), n / seconds)

    http_urls = [f"{base}/{x}" for x in names]
    try:
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            n = decode_only(paths)
            best("decode-only, 1 process", n, time.perf_counter() - t0)
            t0 = time.perf_counter()
            with mp.get_context("fork").Pool(2) as pool:
                n = sum(pool.map(decode_only, [paths[0::2], paths[1::2]]))
            best("decode-only, 2 processes", n, time.perf_counter() - t0)
            best("stream, 2 workers, files", *stream_rate(paths, card, 2))
            best("stream, 2 workers, http", *stream_rate(http_urls, card, 2))
            best("stream, in-process, files", *stream_rate(paths, card, 0))
    finally:
        server.shutdown()
    audio = card["audio"]
    print(f"{n} samples per run: {len(names) // args.passes} shards x {args.passes} passes ({audio['sample_rate']} Hz, "
          f"{audio['snippet_seconds']} s {audio['format']}); best of {args.repeat}")
    for label, rate in results.items():
        print(f"  {label:<28}{rate:8.0f} samples/s")
    one, two = results["decode-only, 1 process"], results["decode-only, 2 processes"]
    files, http = results["stream, 2 workers, files"], results["stream, 2 workers, http"]
    print(f"stream (2 workers, files) / decode-only (1 process):   {files / one:.2f}x (goal >= 0.8)")
    print(f"stream (2 workers, http)  / decode-only (1 process):   {http / one:.2f}x")
    print(f"stream (2 workers, files) / decode-only (2 processes): {files / two:.2f}x")


if __name__ == "__main__":
    main()

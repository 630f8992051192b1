"""Building and loading against the peers: the same collection, the same work, the same workers.

    .venv/bin/python bench/peers.py [--work DIR] [--clips 300] [--dataset DIR] [--workers 2] [--batch 32]
                                    [--crop 2.0] [--repeat 2] [--skip-build]

The build half (``bench/peer_build.py``): mixtape against Lhotse on a generated collection (windows, speed
perturbation, gain, resampling, FLAC shards). The load half reads the dataset mixtape just built (or
``--dataset``). Each reader goes once through the train split of a built dataset in a ``DataLoader`` with ``--workers``
workers, decoding every sample's FLAC to mono float32, taking a random ``--crop``, encoding the card's
targets (tags, classes, key, tempo) and batching:

  (a) mixtape's ``ShardStream`` (shuffle buffer 256, exact resumption);
  (b) stock webdataset: ``wds.WebDataset(urls)`` (its own tar reader and worker splitting) -> a decode map
      doing (a)'s work -> ``batched``; no resumption;
  (c) Lhotse Shar: the dataset exported with ``mixtape export --format lhotse-shar`` (timed apart), read
      by ``CutSet.from_shar(..., split_for_dataloading=True)`` through ``IterableDatasetWrapper`` and a
      ``SimpleCutSampler``; the labels from the supervision; resumption through Lhotse's sampler state;
  (d) the limit: decode only, one process per worker, shards split between them (no crop, no labels).

Prints samples/s and audio-seconds/s for each, the ratios against (a), and a JSON line. Asserts nothing.
Mosaic Streaming (MDS) is not measured: it is not installed here (the issue names it; see bench/README.md).
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing as mp
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
from torch.utils.data import DataLoader

from mixtape.dataset.api import open_dataset
from mixtape.dataset.lhotse_shar import export_shar
from mixtape.dataset.shardformat import iter_members
from mixtape.hashing import rng_for
from mixtape.train.data import ShardStream, crop
from mixtape.train.targets import LabelEncoder


def _mono(data: bytes) -> np.ndarray:
    audio, _ = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return audio.mean(axis=1)


def _timed(loader: Any) -> tuple[float, int]:
    t0, n = time.monotonic(), 0
    for batch in loader:
        n += len(batch["keys"]) if isinstance(batch, dict) else len(batch[0])
    return time.monotonic() - t0, n


def run_mixtape(card: dict, urls: list[str], workers: int, batch: int, crop_samples: int) -> tuple[float, int]:
    stream = ShardStream(urls, LabelEncoder.from_card(card), card["audio"]["sample_rate"], crop_samples,
                         batch_size=batch, crop="random", shuffle_buffer=256, seed=0)
    return _timed(DataLoader(stream, batch_size=None, num_workers=workers))


class _WdsDecode:
    """(b)'s per-sample work, the same as (a)'s: decode, random crop, the card's targets."""

    def __init__(self, card: dict, crop_samples: int):
        self.encoder, self.crop = LabelEncoder.from_card(card), crop_samples

    def __call__(self, sample: dict) -> tuple[np.ndarray, dict, str]:
        rng = rng_for(0, f"{sample['__key__']}/crop")
        labels = json.loads(sample["json"]).get("labels") or {}
        return crop(_mono(sample["flac"]), self.crop, rng), self.encoder.encode(labels), sample["__key__"]


def _collate(items: list) -> dict:
    return {"audio": torch.from_numpy(np.stack([i[0] for i in items])),
            "targets": {k: torch.from_numpy(np.stack([i[1][k] for i in items])) for k in items[0][1]},
            "keys": [i[2] for i in items]}


def run_webdataset(card: dict, urls: list[str], workers: int, batch: int, crop_samples: int) -> tuple[float, int]:
    import webdataset as wds

    pipeline = (wds.WebDataset(urls, shardshuffle=False, empty_check=False).shuffle(256)
                .map(_WdsDecode(card, crop_samples)).batched(batch, collation_fn=_collate, partial=True))
    return _timed(DataLoader(pipeline, batch_size=None, num_workers=workers))


class _LhotseBatches(torch.utils.data.Dataset):
    """(c)'s per-batch work, the same as (a)'s: each cut's audio, a random crop, targets from the labels
    its supervision carries."""

    def __init__(self, card: dict, crop_samples: int):
        self.encoder, self.crop = LabelEncoder.from_card(card), crop_samples

    def __getitem__(self, cuts: Any) -> dict:
        items = []
        for cut in cuts:
            rng = rng_for(0, f"{cut.id}/crop")
            audio = cut.load_audio().mean(axis=0).astype(np.float32)
            labels = cut.supervisions[0].custom if cut.supervisions else {}
            items.append((crop(audio, self.crop, rng), self.encoder.encode(labels), cut.id))
        return _collate(items)


def run_lhotse(card: dict, shar: Path, workers: int, batch: int, crop_samples: int) -> tuple[float, int]:
    from lhotse import CutSet
    from lhotse.dataset import SimpleCutSampler
    from lhotse.dataset.iterable_dataset import IterableDatasetWrapper

    cuts = CutSet.from_shar(in_dir=shar, split_for_dataloading=True, shuffle_shards=False)
    sampler = SimpleCutSampler(cuts, max_cuts=batch, shuffle=False)
    dataset = IterableDatasetWrapper(dataset=_LhotseBatches(card, crop_samples), sampler=sampler)
    return _timed(DataLoader(dataset, batch_size=None, num_workers=workers))


def _decode_only(paths: list[str]) -> int:
    n = 0
    for path in paths:
        with open(path, "rb") as f:
            for _key, suffix, data in iter_members(f):
                if suffix == "flac":
                    _mono(data)
                    n += 1
    return n


def run_limit(urls: list[str], workers: int) -> tuple[float, int]:
    t0 = time.monotonic()
    with mp.get_context("fork").Pool(workers) as pool:
        n = sum(pool.map(_decode_only, [urls[i::workers] for i in range(workers)]))
    return time.monotonic() - t0, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default=None, help="load this dataset instead of the one the build half makes")
    ap.add_argument("--work", default=None, help="working folder of the build half (default: a temporary one)")
    ap.add_argument("--clips", type=int, default=300, help="clips of 10 s in the build half's collection")
    ap.add_argument("--skip-build", action="store_true", help="only the load half (needs --dataset)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--crop", type=float, default=2.0, help="seconds")
    ap.add_argument("--repeat", type=int, default=2, help="passes per reader; the best is reported")
    args = ap.parse_args()
    built: dict[str, Any] = {}
    dataset = args.dataset
    if not args.skip_build:
        from peer_build import run as run_build  # bench/, beside this script

        work = Path(args.work or tempfile.mkdtemp(prefix="mixtape-peers-"))
        built = run_build(work, args.clips, workers=args.workers)
        dataset = dataset or str(work / "peers-mixtape")
    if dataset is None:
        ap.error("--skip-build needs --dataset")
    ds = open_dataset(dataset)
    card, urls = ds.card, ds.shards("train")
    sr = card["audio"]["sample_rate"]
    crop_samples = round(args.crop * sr)
    snippet = card["audio"]["snippet_seconds"]
    with tempfile.TemporaryDirectory(prefix="mixtape-peers-") as tmp:
        t0 = time.monotonic()
        export_shar(ds.location, {**card, "splits": {"train": card["splits"]["train"]}}, f"{tmp}/shar")
        export_s = time.monotonic() - t0
        readers = {
            "a_mixtape": lambda: run_mixtape(card, urls, args.workers, args.batch, crop_samples),
            "b_webdataset": lambda: run_webdataset(card, urls, args.workers, args.batch, crop_samples),
            "c_lhotse_shar": lambda: run_lhotse(card, Path(tmp) / "shar" / "train", args.workers, args.batch,
                                                crop_samples),
            "d_decode_only": lambda: run_limit(urls, args.workers),
        }
        results: dict[str, dict[str, float]] = {}
        for name, run in readers.items():
            best = min((run() for _ in range(args.repeat)), key=lambda r: r[0])
            wall, n = best
            results[name] = {"wall_s": round(wall, 2), "samples": n, "samples_per_s": round(n / wall, 1),
                             "audio_s_per_s": round(n * snippet / wall, 1)}
            print(f"{name:<15} {n:>6} samples in {wall:6.2f} s = {n / wall:7.1f} samples/s, "
                  f"{n * snippet / wall:8.1f} audio-s/s", flush=True)
    a = results["a_mixtape"]["samples_per_s"]
    ratios = {f"a/{k[0]}": round(a / v["samples_per_s"], 3) for k, v in results.items() if k != "a_mixtape"}
    print("mixtape / webdataset = {a/b}, / Lhotse Shar = {a/c}, / decode-only limit = {a/d}".format(**ratios))
    print(f"(export to Lhotse Shar: {export_s:.1f} s, once)")
    if built:
        print(json.dumps({"bench": "peers-build", **built}))
    print(json.dumps({"bench": "peers-load", "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                      "dataset": ds.location, "train_samples": ds.samples("train"), "workers": args.workers,
                      "results": results, "ratios": ratios, "lhotse_export_s": round(export_s, 1)}))


if __name__ == "__main__":
    main()

"""mixtape shards inside your own ``webdataset.DataPipeline``: stages that compose with webdataset's own.

::

    import webdataset as wds
    from mixtape.dataset.api import open_dataset
    from mixtape.train import wds_stages as mx

    ds = open_dataset("DIR")          # or an http(s) / gs / s3 URL
    pipeline = wds.DataPipeline(
        wds.SimpleShardList(ds.shards("train")),
        wds.split_by_node, wds.split_by_worker,
        mx.safe_samples(),             # instead of wds.tarfile_to_samples(): mixtape's safe tar reader
        wds.shuffle(200),
        mx.decode(ds.card),            # audio at the card's rate, targets from the card's vocabularies
        mx.random_crop(seconds=2.0, seed=0),
        wds.batched(16, collation_fn=mx.collate),
    )

Each stage is a function from an iterator of samples to an iterator of samples, the form webdataset's
stages take. ``safe_samples`` reads shards the way mixtape's own stream does (no links, devices, sparse
members, unsafe names or oversized members; only ``.flac``, ``.wav`` and ``.json`` are loaded, nothing is
unpickled), and yields webdataset-style dicts; ``decode`` also takes the dicts ``wds.tarfile_to_samples()``
makes, for users who keep webdataset's reader. Batches are dicts of tensors: ``audio`` (B, samples),
``targets`` {task: tensor} as :class:`mixtape.train.targets.LabelEncoder` encodes them, ``keys``, ``clips``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import torch

from mixtape.dataset.shardformat import AUDIO_EXTENSIONS, MAX_MEMBER_BYTES, iter_raw_samples
from mixtape.hashing import rng_for
from mixtape.storage import open_url
from mixtape.train.data import crop, decode_audio
from mixtape.train.targets import LabelEncoder
from mixtape.untrusted import load_json, show

Stage = Callable[[Iterable[dict[str, Any]]], Iterator[dict[str, Any]]]


def safe_samples(max_member_bytes: int = MAX_MEMBER_BYTES, on_error: Callable[[str], None] | None = None) -> Stage:
    """``{"url": ...}`` items (what ``wds.SimpleShardList`` and the splitters pass on) -> webdataset-style
    samples ``{"__key__", "__url__", "flac" | "wav": bytes, "json": bytes}``. A shard that cannot be read, or
    breaks off, is reported to ``on_error`` (default: raised) after the whole samples before the break."""

    def stage(items: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for item in items:
            url = item["url"]
            try:
                with open_url(url) as stream:
                    for raw in iter_raw_samples(stream, max_member_bytes=max_member_bytes):
                        yield {"__key__": raw.key, "__url__": url, **raw.members}
            except Exception as e:
                if on_error is None:
                    raise
                on_error(f"{show(url)}: {type(e).__name__}: {show(e)}")

    return stage


def decode(card: dict[str, Any], sample_rate: int | None = None, soft_tags: bool = True) -> Stage:
    """Samples -> ``{"__key__", "audio": float32 (samples,), "sample_rate", "targets", "clip", "variant"}``:
    mono audio at ``sample_rate`` (default: the card's), targets from the card's vocabularies. A sample
    without audio or JSON, or whose JSON is not an object, is an error naming it."""
    encoder = LabelEncoder.from_card(card, soft_tags=soft_tags)
    rate = int(sample_rate or card["audio"]["sample_rate"])

    def stage(samples: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for s in samples:
            key = str(s.get("__key__", ""))
            audio = next((s[ext] for ext in AUDIO_EXTENSIONS if isinstance(s.get(ext), bytes)), None)
            doc = s.get("json")
            if audio is None or not isinstance(doc, (bytes, dict)):
                raise ValueError(f"sample {show(key)} has no audio or no JSON member")
            meta = doc if isinstance(doc, dict) else load_json(doc, f"{show(key)}.json")
            if not isinstance(meta, dict):
                raise ValueError(f"{show(key)}.json is not an object")
            variant = meta.get("variant", 0)
            yield {"__key__": key, "audio": decode_audio(audio, rate), "sample_rate": rate,
                   "targets": encoder.encode(meta.get("labels") or {}), "clip": str(meta.get("clip_id", "")),
                   "variant": variant if isinstance(variant, int) else 0}

    return stage


def random_crop(seconds: float | None = None, samples: int | None = None, seed: int = 0, epoch: int = 0) -> Stage:
    """A crop of ``samples`` (or ``seconds`` at the decoded rate) per sample, drawn from a generator seeded by
    the sample's key, ``seed`` and ``epoch``: the same crops on every worker and rerun, the ones mixtape's
    own stream draws; shorter samples are padded with silence."""
    if (seconds is None) == (samples is None):
        raise ValueError("random_crop takes seconds or samples (one of them)")

    def stage(items: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for item in items:
            length = samples if samples is not None else round(float(seconds or 0) * item["sample_rate"])
            rng = rng_for(seed, f"{item['__key__']}/crop/{epoch}/0")
            yield {**item, "audio": crop(item["audio"], length, rng)}

    return stage


def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    """For ``wds.batched(n, collation_fn=collate)``: stacked audio and targets as tensors."""
    audio = torch.from_numpy(np.stack([i["audio"] for i in items]).astype(np.float32, copy=False))
    names = items[0]["targets"] if items else {}
    targets = {n: torch.from_numpy(np.stack([i["targets"][n] for i in items])) for n in names}
    return {"audio": audio, "targets": targets, "keys": [i["__key__"] for i in items],
            "clips": [i["clip"] for i in items], "variants": [i["variant"] for i in items]}

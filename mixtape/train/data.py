"""The shard stream: samples from WebDataset shards by URL, decoded from memory, cropped and labelled.

Security: members are read with ``mixtape.shardformat`` (only .flac/.wav/.json are ever loaded, nothing is
unpickled, unsafe member names raise) and URLs are opened in-process (urllib / fsspec), never through a
shell, unlike webdataset's own ``pipe:curl`` opener.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import soundfile as sf
import soxr
import torch
from braceexpand import braceexpand
from torch.utils.data import IterableDataset, get_worker_info

from mixtape.hashing import rng_for
from mixtape.shardformat import iter_samples
from mixtape.storage import ShardURLError, open_url


def expand_urls(spec: str | list[str]) -> list[str]:
    """Brace-expand one or more URL patterns (whitespace-separated in a string), keeping their order."""
    patterns = spec.split() if isinstance(spec, str) else list(spec)
    urls = [u for p in patterns for u in braceexpand(p)]
    if not urls:
        raise ShardURLError(f"no shard URLs in {spec!r}")
    return urls


def sibling_url(shard_url: str, name: str) -> str:
    """The URL of a file next to a shard (the dataset card lives beside its shards)."""
    head, _, _ = shard_url.rpartition("/")
    return f"{head}/{name}" if head else name


def read_json_url(url: str) -> dict[str, Any]:
    with open_url(url) as f:
        return json.loads(f.read().decode("utf-8"))


@dataclass
class LabelEncoder:
    """Multi-hot tag targets from the dataset card's tag vocabulary."""

    tags: list[str]
    _index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._index = {t: i for i, t in enumerate(self.tags)}

    def encode(self, labels: dict[str, Any]) -> np.ndarray:
        y = np.zeros(len(self.tags), dtype=np.float32)
        for t in labels.get("tags", []):
            i = self._index.get(t)
            if i is not None:
                y[i] = 1.0
        return y


def decode_audio(data: bytes, sample_rate: int) -> np.ndarray:
    """Mono float32 at ``sample_rate`` from encoded bytes, decoded in memory (no temporary files)."""
    audio, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    mono = audio.mean(axis=1) if audio.shape[1] > 1 else audio[:, 0]
    if sr != sample_rate:
        mono = soxr.resample(mono, sr, sample_rate)
    return np.ascontiguousarray(mono, dtype=np.float32)


def crop(audio: np.ndarray, length: int, rng: np.random.Generator | None) -> np.ndarray:
    """A random crop (rng given) or the centre crop; zero-pads audio shorter than ``length``."""
    if audio.shape[0] < length:
        return np.pad(audio, (0, length - audio.shape[0]))
    spare = audio.shape[0] - length
    start = int(rng.integers(0, spare + 1)) if rng is not None else spare // 2
    return audio[start:start + length]


@dataclass
class StreamStats:
    samples: int = 0
    corrupt: int = 0
    skipped_members: int = 0
    errors: list[str] = field(default_factory=list)


class ShardStream(IterableDataset):
    """An epoch over shard URLs: each shard read once across DataLoader workers, in a seeded order.

    ``crop_samples=None`` yields whole snippets (evaluation); otherwise random crops (training) from a
    generator seeded by the sample key and epoch, so a run is repeatable.
    """

    def __init__(self, urls: list[str], encoder: LabelEncoder, sample_rate: int, crop_samples: int | None,
                 shuffle_buffer: int = 0, seed: int = 0):
        super().__init__()
        self.urls = list(urls)
        self.encoder = encoder
        self.sample_rate = sample_rate
        self.crop_samples = crop_samples
        self.shuffle_buffer = shuffle_buffer
        self.seed = seed
        self.epoch = 0
        self.stats = StreamStats()

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _my_shards(self) -> list[str]:
        urls = list(self.urls)
        if self.shuffle_buffer:
            order = rng_for(self.seed, f"shards/{self.epoch}").permutation(len(urls))
            urls = [urls[i] for i in order]
        info = get_worker_info()
        if info is None:
            return urls
        return urls[info.id::info.num_workers]

    def _samples(self) -> Iterator[dict[str, Any]]:
        for url in self._my_shards():
            try:
                with open_url(url) as stream:
                    for s in iter_samples(stream, on_skip=lambda _n: self._count_skip()):
                        yield {**s, "__url__": url}
            except Exception as e:  # a broken shard must not stop training: count it and move on
                self.stats.corrupt += 1
                self.stats.errors.append(f"{url}: {type(e).__name__}: {e}")

    def _count_skip(self) -> None:
        self.stats.skipped_members += 1

    def _decode(self, sample: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, str, str] | None:
        doc = sample.get("json")
        data = sample.get("flac", sample.get("wav"))
        if not isinstance(doc, dict) or data is None:
            self.stats.corrupt += 1
            return None
        try:
            audio = decode_audio(data, self.sample_rate)
        except (sf.LibsndfileError, RuntimeError, ValueError) as e:
            self.stats.corrupt += 1
            self.stats.errors.append(f"{sample['__key__']}: {e}")
            return None
        rng = rng_for(self.seed, f"{sample['__key__']}/crop/{self.epoch}") if self.crop_samples else None
        if self.crop_samples:
            audio = crop(audio, self.crop_samples, rng)
        target = self.encoder.encode(doc.get("labels", {}))
        self.stats.samples += 1
        return torch.from_numpy(audio.copy()), torch.from_numpy(target), sample["__key__"], doc.get("clip_id", "")

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, str, str]]:
        info = get_worker_info()
        worker = info.id if info is not None else 0
        rng = rng_for(self.seed, f"buffer/{self.epoch}/{worker}")
        buffer: list[Any] = []
        for sample in self._samples():
            item = self._decode(sample)
            if item is None:
                continue
            if self.shuffle_buffer <= 1:
                yield item
                continue
            buffer.append(item)
            if len(buffer) >= self.shuffle_buffer:
                i = int(rng.integers(0, len(buffer)))
                buffer[i], buffer[-1] = buffer[-1], buffer[i]
                yield buffer.pop()
        while buffer:
            i = int(rng.integers(0, len(buffer)))
            buffer[i], buffer[-1] = buffer[-1], buffer[i]
            yield buffer.pop()

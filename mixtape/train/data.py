"""The shard stream: batches from WebDataset shards by URL, decoded from memory, cropped and labelled.

Why it is built the way it is:

* **Exact epochs.** Shards are dealt to (rank, worker) slots from one seeded permutation per epoch, so
  every shard is read exactly once per epoch across all ranks and DataLoader workers.
* **Exact resume.** Each worker's sample sequence is a pure function of (seed, epoch, slot): the shuffle
  buffer holds *raw* samples and crops are seeded by sample key, so a worker can skip what was already
  trained on without decoding it. Batches are made inside the worker and carry the worker's position;
  :class:`StreamTracker` turns the batches the loop consumed into a resumable state, including which worker
  the DataLoader's round-robin serves next.
* **Nothing is lost silently.** A corrupt sample (bad audio, bad JSON, a shard that fails to open or is
  truncated) is skipped and counted; counts travel back to the main process inside batches (workers live in
  other processes), and a final stats-only batch reports whatever came after the last full batch.

Security: members are read with ``mixtape.dataset.shardformat`` (only .flac/.wav/.json are ever loaded, nothing is
unpickled, unsafe member names raise) and URLs are opened in-process (urllib, Beam's filesystems), never through a
shell, unlike webdataset's own ``pipe:curl`` opener.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import soundfile as sf
import soxr
import torch
from braceexpand import braceexpand
from torch.utils.data import IterableDataset, get_worker_info

from mixtape.audio import SOURCE_RATES
from mixtape.dataset.shardformat import MAX_MEMBER_BYTES, RawSample, iter_raw_samples
from mixtape.hashing import rng_for, sha256_hex
from mixtape.storage import ShardURLError, is_remote, open_url
from mixtape.train.targets import LabelEncoder
from mixtape.untrusted import load_json, show

CROP_MODES = ("random", "centre", "windows")
#: How many error messages a batch carries back at most (the counts are always exact).
MAX_ERRORS = 20


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


def read_json_url(url: str) -> Any:
    with open_url(url) as f:
        return load_json(f.read(), url)


#: The longest sample a stream decodes: snippets are seconds long, and a member that claims hours (or a rate
#: that would resample into billions of samples) is refused before it is decoded.
MAX_SAMPLE_SECONDS = 600.0


def _checked(f: sf.SoundFile) -> sf.SoundFile:
    """An opened member, if its rate and length are ones a dataset sample can have."""
    lo, hi = SOURCE_RATES
    if not lo <= f.samplerate <= hi:
        raise ValueError(f"sample rate {f.samplerate} Hz is outside {lo}-{hi} Hz")
    if f.frames > MAX_SAMPLE_SECONDS * f.samplerate:
        raise ValueError(f"{f.frames} frames ({f.frames / f.samplerate:.0f} s) is longer than a sample can be "
                         f"({MAX_SAMPLE_SECONDS:g} s)")
    return f


def decode_audio(data: bytes, sample_rate: int) -> np.ndarray:
    """Mono float32 at ``sample_rate`` from encoded bytes, decoded in memory (no temporary files)."""
    with _checked(sf.SoundFile(io.BytesIO(data))) as f:
        sr = f.samplerate
        audio = f.read(dtype="float32", always_2d=True)
    return _mono_at(audio, sr, sample_rate)


def decode_random_crop(data: bytes, sample_rate: int, length: int, rng: np.random.Generator) -> np.ndarray:
    """The same crop as ``crop(decode_audio(data), length, rng)``, decoding only the cropped frames when the
    file is already at ``sample_rate`` (FLAC and WAV seek sample-exactly): a third less decoding for a
    2 s crop of a 3 s snippet."""
    return random_crop(data, sample_rate, length, rng)[0]


def random_crop(data: bytes, sample_rate: int, length: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """:func:`decode_random_crop`, and the sample's own length in frames at ``sample_rate`` (a sample shorter
    than the crop is padded, which the stream counts)."""
    with _checked(sf.SoundFile(io.BytesIO(data))) as f:
        if f.samplerate != sample_rate or f.frames <= length:
            audio = _mono_at(f.read(dtype="float32", always_2d=True), f.samplerate, sample_rate)
            return crop(audio, length, rng), audio.shape[0]
        frames = f.frames
        start = int(rng.integers(0, frames - length + 1))
        f.seek(start)
        audio = f.read(length, dtype="float32", always_2d=True)
    if audio.shape[0] != length:
        raise ValueError(f"short read: {audio.shape[0]} of {length} frames at {start}")
    return _mono_at(audio, sample_rate, sample_rate), frames


def _mono_at(audio: np.ndarray, sr: int, sample_rate: int) -> np.ndarray:
    mono = audio.mean(axis=1) if audio.shape[1] > 1 else audio[:, 0]
    if sr != sample_rate:
        mono = soxr.resample(mono, sr, sample_rate)
    if not np.isfinite(mono).all():
        raise ValueError("audio contains NaN or Inf")
    return np.ascontiguousarray(mono, dtype=np.float32)


def crop(audio: np.ndarray, length: int, rng: np.random.Generator | None) -> np.ndarray:
    """A random crop (rng given) or the centre crop; zero-pads audio shorter than ``length``."""
    if audio.shape[0] < length:
        return np.pad(audio, (0, length - audio.shape[0]))
    spare = audio.shape[0] - length
    start = int(rng.integers(0, spare + 1)) if rng is not None else spare // 2
    return audio[start:start + length]


def window_starts(n: int, length: int) -> list[int]:
    """Starts of the windows that tile ``n`` samples with hop ``length``; the last one ends at the end, so
    every sample of a snippet is seen by evaluation (a snippet shorter than a window gives one, padded)."""
    if n <= length:
        return [0]
    starts = list(range(0, n - length + 1, length))
    if starts[-1] + length < n:
        starts.append(n - length)
    return starts


def shard_slot(urls: list[str], epoch: int, seed: int, rank: int, world_size: int, worker: int,
               num_workers: int, shuffle: bool = True) -> list[str]:
    """The shards one (rank, worker) slot reads in an epoch: one seeded permutation of all shards, dealt
    round-robin over ``world_size * num_workers`` slots, so the slots partition the shards exactly."""
    order = list(urls)
    if shuffle:
        perm = rng_for(seed, f"shards/{epoch}").permutation(len(order))
        order = [order[i] for i in perm]
    slots = world_size * num_workers
    return order[rank * num_workers + worker::slots]


def resampled_shards(urls: list[str], epoch: int, seed: int, rank: int, worker: int) -> Iterator[str]:
    """An endless seeded draw of shards with replacement (the "resampled" mode for step-based training)."""
    rng = rng_for(seed, f"resampled/{epoch}/{rank}/{worker}")
    while True:
        yield urls[int(rng.integers(0, len(urls)))]


@dataclass
class StreamStats:
    """What a stream read: counts are exact; ``errors`` keeps the first few messages."""

    samples: int = 0
    corrupt: int = 0
    skipped_members: int = 0
    #: samples shorter than the crop (padded with silence to it)
    short: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, other: dict[str, Any]) -> None:
        self.samples += int(other.get("samples", 0))
        self.corrupt += int(other.get("corrupt", 0))
        self.skipped_members += int(other.get("skipped_members", 0))
        self.short += int(other.get("short", 0))
        room = MAX_ERRORS - len(self.errors)
        if room > 0:
            self.errors.extend(list(other.get("errors", []))[:room])

    def as_dict(self) -> dict[str, Any]:
        return {"samples": self.samples, "corrupt": self.corrupt, "skipped_members": self.skipped_members,
                "short": self.short, "errors": list(self.errors)}

    def take(self) -> dict[str, Any]:
        """The counts so far, resetting them in place (readers hold a reference to this object)."""
        out = self.as_dict()
        self.samples = self.corrupt = self.skipped_members = self.short = 0
        self.errors.clear()
        return out


@dataclass
class _RawSample:
    """A sample as read, and the shard it came from (for messages)."""

    url: str
    sample: RawSample

    @property
    def key(self) -> str:
        return self.sample.key


class ShardMismatch(ValueError):
    """A shard whose bytes differ from what its dataset card records."""


class ShardStream(IterableDataset):
    """Batches over shard URLs for one rank; use with ``DataLoader(stream, batch_size=None)``.

    A batch is a dict: ``audio`` (B, samples) float tensor, ``targets`` {task: tensor}, ``keys`` and
    ``clips`` (lists of str), ``variants`` (0 = the clean original, else an augmented variant),
    ``worker`` (the logical worker that made it), ``position`` (that worker's position after it),
    ``stats`` (what the worker counted since its previous batch) and ``end`` (True on the worker's final,
    stats-only batch, whose ``audio`` is empty).

    ``crop`` is ``random`` (training: ``crops`` random crops per sample, seeded by key and epoch),
    ``centre`` or ``windows`` (evaluation: every window of ``crop_samples`` tiling the snippet);
    ``crop_samples=None`` yields whole snippets.
    """

    def __init__(self, urls: list[str], encoder: LabelEncoder, sample_rate: int, crop_samples: int | None,
                 batch_size: int = 16, crop: str = "random", crops: int = 1, shuffle_buffer: int = 0,
                 shuffle_shards: bool = True, seed: int = 0, rank: int = 0, world_size: int = 1,
                 resampled: bool = False, drop_last: bool = False,
                 expected: dict[str, tuple[str, int]] | None = None, verify_remote: bool = False,
                 max_member_bytes: int = MAX_MEMBER_BYTES, clips: frozenset[str] | None = None):
        super().__init__()
        if crop not in CROP_MODES:
            raise ValueError(f"crop must be one of {CROP_MODES}, not {crop!r}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside world size {world_size}")
        self.urls = list(urls)
        self.encoder = encoder
        self.sample_rate = sample_rate
        self.crop_samples = crop_samples
        self.batch_size = batch_size
        self.crop = crop
        self.crops = max(1, crops) if crop == "random" else 1
        self.shuffle_buffer = shuffle_buffer
        self.shuffle_shards = shuffle_shards
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.resampled = resampled
        self.drop_last = drop_last
        #: url -> (sha256, bytes) from the dataset card: shards checked before they are read
        self.expected = dict(expected or {})
        self.verify_remote = verify_remote
        self.max_member_bytes = max_member_bytes
        #: when set, only samples of these clips are read (the rest are skipped before decoding)
        self.clips = clips
        self.epoch = 0
        self.resume: dict[str, Any] | None = None

    def set_epoch(self, epoch: int, resume: dict[str, Any] | None = None) -> None:
        """Start ``epoch``; ``resume`` (from :meth:`StreamTracker.state`) skips what was already consumed."""
        self.epoch = epoch
        self.resume = resume if resume and resume.get("epoch") == epoch else None

    # ---------------------------------------------------------------------------------------- reading

    def _shards(self, worker: int, num_workers: int) -> Iterator[str]:
        if self.resampled:
            return resampled_shards(self.urls, self.epoch, self.seed, self.rank, worker)
        return iter(shard_slot(self.urls, self.epoch, self.seed, self.rank, self.world_size, worker, num_workers,
                               self.shuffle_shards))

    def _open(self, url: str) -> Any:
        """The shard's bytes as a stream; checked against the card's sha256 first where the card lists the
        shard and checking applies (local files by default, remote ones when asked): a shard rewritten since
        its card (a build killed half-way, a copy gone wrong) is refused, never mixed into training."""
        expected = self.expected.get(url)
        if expected is None or (is_remote(url) and not self.verify_remote):
            return open_url(url)
        sha, size = expected
        with open_url(url) as f:
            data = f.read(size + 1)
        if len(data) != size or sha256_hex(data) != sha:
            raise ShardMismatch(f"{show(url)} does not match the dataset card ({len(data)} bytes, expected {size}; "
                                "sha256 differs): the dataset changed since its card was written (an interrupted "
                                "build?); run `mixtape verify` on it")
        return io.BytesIO(data)

    def _raw(self, worker: int, num_workers: int, stats: StreamStats) -> Iterator[_RawSample]:
        """Raw samples (bytes, undecoded) of this worker's shards in order. A member that cannot be read is
        skipped and counted; a shard that breaks off keeps the complete samples before the break."""
        def skipped(name: str, reason: str) -> None:
            stats.skipped_members += 1
            _note(stats, f"skipped member {name}: {reason}")

        clips = self.clips
        keep = None if clips is None else (lambda key: key.rsplit("/", 2)[0] in clips)  # leave other clips out
        for url in self._shards(worker, num_workers):
            try:
                with self._open(url) as stream:
                    for sample in iter_raw_samples(stream, skipped, self.max_member_bytes, keep):
                        yield _RawSample(url, sample)
            except Exception as e:
                stats.corrupt += 1
                _note(stats, f"{show(url)}: {type(e).__name__}: {show(e)}")

    def _shuffled(self, raw: Iterator[_RawSample], worker: int) -> Iterator[_RawSample]:
        if self.shuffle_buffer <= 1:
            yield from raw
            return
        rng = rng_for(self.seed, f"buffer/{self.epoch}/{self.rank}/{worker}")
        buffer: list[_RawSample] = []
        for sample in raw:
            buffer.append(sample)
            if len(buffer) >= self.shuffle_buffer:
                yield _pop_random(buffer, rng)
        while buffer:
            yield _pop_random(buffer, rng)

    def _decode(self, raw: _RawSample, stats: StreamStats) -> tuple[list[np.ndarray], dict[str, Any], str, int] | None:
        """(crops, targets, clip id, variant), or None for a corrupt sample (counted)."""
        try:
            audio, document = raw.sample.audio, raw.sample.doc
            if audio is None or document is None:
                raise ValueError("sample has no " + ("audio" if audio is None else "json") + " member")
            doc = load_json(document, f"{raw.key}.json")
            if not isinstance(doc, dict):
                raise ValueError("sample json is not an object")
            targets = self.encoder.encode(doc.get("labels") or {})
            crops, short = self._crops(raw.key, audio)
            stats.short += short
        except Exception as e:  # any undecodable sample is skipped and counted
            stats.corrupt += 1
            _note(stats, f"{show(raw.url)} {show(raw.key)}: {type(e).__name__}: {show(e)}")
            return None
        variant = doc.get("variant", 0)
        return crops, targets, str(doc.get("clip_id", "")), variant if isinstance(variant, int) else 0

    def _crops(self, key: str, data: bytes) -> tuple[list[np.ndarray], bool]:
        """The sample's crops, and whether it is shorter than a training crop (then padded)."""
        length = self.crop_samples
        if self.crop == "random" and length is not None:
            rngs = [rng_for(self.seed, f"{key}/crop/{self.epoch}/{c}") for c in range(self.crops)]
            if self.crops == 1:
                one, frames = random_crop(data, self.sample_rate, length, rngs[0])
                return [one], frames < length
            whole = decode_audio(data, self.sample_rate)
            return [crop(whole, length, r) for r in rngs], whole.shape[0] < length
        audio = decode_audio(data, self.sample_rate)
        if length is None:
            return [audio], False
        if self.crop == "windows":
            padded = audio if audio.shape[0] >= length else np.pad(audio, (0, length - audio.shape[0]))
            return [padded[s:s + length] for s in window_starts(padded.shape[0], length)], False
        return [crop(audio, length, None)], False

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        physical, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        resume = self.resume or {}
        # On resume the DataLoader's round-robin restarts at physical worker 0, so physical workers take
        # the logical roles rotated to start at the worker that was due next.
        worker = (physical + int(resume.get("next_worker", 0))) % num_workers
        skip = resume.get("positions", {}).get(str(worker), [0, 0])
        if str(worker) in resume.get("exhausted", []):
            return
        skip_raw, skip_crops = int(skip[0]), int(skip[1])
        stats = StreamStats()
        items: list[tuple[np.ndarray, dict[str, Any], str, str, int]] = []
        position = [skip_raw, skip_crops]
        for index, raw in enumerate(self._shuffled(self._raw(worker, num_workers, stats), worker)):
            if index < skip_raw:
                continue  # consumed before the checkpoint: not even decoded
            decoded = self._decode(raw, stats)
            crops = decoded[0] if decoded is not None else []
            first = skip_crops if index == skip_raw else 0
            if decoded is not None:
                stats.samples += 1
            for c in range(first, len(crops)):
                items.append((crops[c], decoded[1], raw.key, decoded[2], decoded[3]))  # type: ignore[index]
                position = [index, c + 1] if c + 1 < len(crops) else [index + 1, 0]
                if len(items) == self.batch_size:
                    yield self._batch(items, worker, position, stats.take())
                    items = []
        if items and not self.drop_last:
            yield self._batch(items, worker, position, stats.take())
            items = []
        yield {"audio": torch.empty(0), "targets": {}, "keys": [], "clips": [], "variants": [], "worker": worker,
               "position": position, "stats": stats.take(), "end": True, "dropped": len(items)}

    def _batch(self, items: list[tuple[np.ndarray, dict[str, Any], str, str, int]], worker: int,
               position: list[int], stats: dict[str, Any]) -> dict[str, Any]:
        audio = torch.from_numpy(np.stack([i[0] for i in items]).astype(np.float32, copy=False))
        targets = {name: torch.from_numpy(np.stack([i[1][name] for i in items])) for name in items[0][1]}
        return {"audio": audio, "targets": targets, "keys": [i[2] for i in items], "clips": [i[3] for i in items],
                "variants": [i[4] for i in items],
                "worker": worker, "position": list(position), "stats": stats, "end": False}


def _pop_random(buffer: list[Any], rng: np.random.Generator) -> Any:
    i = int(rng.integers(0, len(buffer)))
    buffer[i], buffer[-1] = buffer[-1], buffer[i]
    return buffer.pop()


def _note(stats: StreamStats, message: str) -> None:
    if len(stats.errors) < MAX_ERRORS:
        stats.errors.append(message)


class StreamTracker:
    """Follows the batches the loop consumed, for statistics and for a resumable stream position.

    The DataLoader serves workers round-robin, skipping exhausted ones; the tracker mirrors that so
    :meth:`state` can say which worker is due next. A worker whose final batch was consumed is exhausted.
    """

    def __init__(self, num_workers: int, epoch: int = 0, resume: dict[str, Any] | None = None):
        self.num_workers = max(1, num_workers)
        self.epoch = epoch
        self.stats = StreamStats()
        resume = resume if resume and resume.get("epoch") == epoch else {}
        self.positions: dict[str, list[int]] = {k: list(v) for k, v in resume.get("positions", {}).items()}
        self.exhausted: set[str] = set(resume.get("exhausted", []))
        self.next_worker = int(resume.get("next_worker", 0))

    def consume(self, batch: dict[str, Any]) -> None:
        worker = int(batch["worker"])
        self.positions[str(worker)] = list(batch["position"])
        self.stats.add(batch["stats"])
        if batch.get("end"):
            self.exhausted.add(str(worker))
        for step in range(1, self.num_workers + 1):
            candidate = (worker + step) % self.num_workers
            if str(candidate) not in self.exhausted:
                self.next_worker = candidate
                break

    def state(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "positions": {k: list(v) for k, v in sorted(self.positions.items())},
                "exhausted": sorted(self.exhausted), "next_worker": self.next_worker,
                "num_workers": self.num_workers}

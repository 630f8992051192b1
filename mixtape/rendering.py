"""Rendering samples from their plan rows (read source windows, augment, encode) and writing shards.

Pure of Beam, so ``verify`` and ``reproduce`` re-render a shard exactly as a build does; the Beam transforms
in ``mixtape.pipelines.render`` group rows by source to render them and by shard to write them, retry and
count. Decode, augment and encode stay fused per sample; a shard's bytes depend only on its samples.
"""

from __future__ import annotations

import io
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import soundfile as sf

from mixtape import storage
from mixtape.audio import convert, encode_pcm16, to_pcm16
from mixtape.augment import apply_chain
from mixtape.augment.ops import Context
from mixtape.dataset.features import MEMBER_SUFFIX, LogMelSpec, logmel, npy_bytes
from mixtape.dataset.index import index_row
from mixtape.dataset.shardformat import HashingWriter, ShardWriter, sample_json_bytes
from mixtape.faults import inject
from mixtape.hashing import canonical_json, sha256_hex
from mixtape.records import ClipWindow, PlanRow
from mixtape.spec import AudioSpec

#: Memory a render worker keeps for source audio (converted blocks, verified encoded bytes), across the
#: sources it renders: consecutive windows of a source share blocks, and mix partners and impulse
#: responses come from other sources.
CACHE_MB = 512


#: Attempts per sample render (and per shard write) before a render task gives up.
RENDER_ATTEMPTS = 3


class InputChanged(RuntimeError):
    pass


#: How source audio becomes samples; bumped whenever the same inputs would render other bytes, so that the card
#: records it and an incremental build never keeps shards rendered the old way (2: block-wise conversion).
RENDER_VERSION = 2

#: Sources reach the target rate and channel count in blocks of this length on a fixed grid from the clip's
#: start, each decoded after its own seek, with resampler context on both sides. A sample costs the blocks
#: its window touches, not the whole recording (a 4-minute song decoded whole for each 3 s sample costs 80x
#: the audio it yields), and a block is shared by every window and variant that touches it while cached.
#: Each block depends only on the source and its index, never on what is cached, so neither does the output.
BLOCK_MS = 2000
#: Source audio decoded on either side of a block: the resampler's context. The soxr filter spans a few
#: milliseconds; block-wise and whole-file conversion agree to float rounding (~2e-7) from 10 ms on.
CONTEXT_SECONDS = 0.05
#: Encoded sources a cache keeps besides its blocks, as a share of its capacity (1/16): reading and verifying
#: a source again costs less than converting a block, so converted audio gets most of the memory.
RECENT_SHARE = 16
#: Rendered scores kept, as a share of the capacity (1/4): rendering one again means parsing and
#: synthesising the whole score, far dearer than reading a file, and every shard of a split needs it.
RENDER_SHARE = 4


class SourceCache:
    """Converted source blocks for a render worker process, least recently used evicted first, within
    ``capacity_bytes`` (0: none kept), plus the last few encoded sources (a sixteenth more). Blocks are keyed
    by content (sha256, the clip's part of the file, block index), so one cache serves any build; inputs are
    checked against their planned sha256 each time their bytes are read. Safe to share between threads: the
    locks guard only the bookkeeping, never a decode."""

    def __init__(self, audio: AudioSpec, capacity_bytes: int = CACHE_MB << 20, fonts: dict[str, str] | None = None,
                 on_count: Callable[[str], None] | None = None):
        self.audio = audio
        #: told each read, conversion and hit as it happens (a pipeline's counters)
        self.on_count = on_count
        self.capacity = capacity_bytes
        #: SoundFonts by sha256 -> path: where rendered scores' recipes find theirs
        self.fonts = dict(fonts or {})
        self._items: OrderedDict[tuple[str, int, int, int], np.ndarray] = OrderedDict()
        self._size = 0
        self._recent: OrderedDict[str, bytes] = OrderedDict()
        self._recent_size = 0
        self._renders: OrderedDict[str, bytes] = OrderedDict()
        self._renders_size = 0
        self._lock = threading.Lock()
        #: source reads, blocks converted, blocks found in the cache (also Beam counters in a pipeline)
        self.stats = {"reads": 0, "blocks": 0, "block_hits": 0}

    def _count(self, name: str) -> None:
        """Under the lock: the cache's own figures, and the running pipeline's counters."""
        self.stats[name] += 1
        if self.on_count is not None:
            self.on_count(name)

    def _lookup(self, key: tuple[str, int, int, int]) -> np.ndarray | None:
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                self._count("block_hits")
            return hit

    def _keep(self, key: tuple[str, int, int, int], value: np.ndarray) -> None:
        with self._lock:
            self._count("blocks")
            if key in self._items:  # another thread converted it meanwhile (the same samples)
                return
            self._items[key] = value
            self._size += value.nbytes
            while self._size > self.capacity and self._items:
                self._size -= self._items.popitem(last=False)[1].nbytes

    def _encoded(self, w: ClipWindow) -> bytes:
        """A source's verified bytes (a rendered score's audio, rendered again from its recipe). The last few
        are kept apart from the blocks: a window's blocks are converted one after another from them, but they
        are worth less than converted audio once it is done."""
        clip_id, sha256, synth = w.clip_id, w.sha256, w.synth
        kept = self._renders if synth else self._recent
        with self._lock:
            data = kept.get(sha256)
            if data is not None:
                kept.move_to_end(sha256)
                return data
            self._count("reads")
        data = storage.read_bytes(w.uri)
        if synth:
            data = self._rendered(clip_id, data, synth)
        if sha256_hex(data) != sha256:
            raise InputChanged(f"{clip_id} changed since it was planned (sha256 differs): rebuild the plan")
        with self._lock:
            if synth:
                self._renders_size = _keep_recent(self._renders, self._renders_size, sha256, data,
                                                  self.capacity // RENDER_SHARE)
            else:
                self._recent_size = _keep_recent(self._recent, self._recent_size, sha256, data,
                                                 self.capacity // RECENT_SHARE)
        return data

    def _rendered(self, clip_id: str, score: bytes, synth: dict[str, Any]) -> bytes:
        from mixtape.sources.score.formats import ScoreError
        from mixtape.sources.score.recipe import render_recipe
        from mixtape.sources.score.synth import open_soundfont

        path = self.fonts.get(synth["soundfont"])
        if path is None:
            raise InputChanged(f"{clip_id} is rendered with SoundFont {synth['soundfont'][:12]}…, which no score "
                               "source of the spec names any more")
        try:
            return render_recipe(score, synth, open_soundfont(path))
        except ScoreError as e:
            raise InputChanged(f"{clip_id}: its score no longer renders ({e.detail})") from None

    def _blocks(self, w: ClipWindow, first: int, last: int) -> list[np.ndarray]:
        if w.synth:
            with self._lock:
                missing = any((w.sha256, w.offset_frames, w.length_frames, k) not in self._items
                              for k in range(first, last + 1))
            if missing:
                self._convert_all(w)
        out = []
        for k in range(first, last + 1):
            key = (w.sha256, w.offset_frames, w.length_frames, k)
            block = self._lookup(key)
            if block is None:
                block = self._convert(self._encoded(w), w.clip_id, key)
            out.append(block)
        return out

    def _convert_all(self, w: ClipWindow) -> None:
        """Every block of a rendered score at once: its samples are spread over every shard of its split,
        and rendering it again for each (parse + synthesis) costs far more than keeping its blocks."""
        data = self._encoded(w)
        info = sf.info(io.BytesIO(data))
        blocks = -(-info.frames * 1000 // (info.samplerate * BLOCK_MS))
        for k in range(blocks):
            key = (w.sha256, 0, 0, k)
            with self._lock:
                have = key in self._items
            if not have:
                self._convert(data, w.clip_id, key)

    def _convert(self, data: bytes, clip_id: str, key: tuple[str, int, int, int]) -> np.ndarray:
        """Block ``key`` (sha256, offset, length, index) of a source converted, kept and returned."""
        _, offset_frames, length_frames, k = key
        block = decode_window(data, clip_id, offset_frames, length_frames, k * BLOCK_MS, BLOCK_MS,
                              self.audio.sample_rate, self.audio.channels)
        block.flags.writeable = False  # windows are views of it: a transform writing in place would fail
        self._keep(key, block)
        return block

    def window(self, w: ClipWindow) -> np.ndarray:
        """A window of a clip (of its part of the file, if it has one) at the target rate and channel count,
        silence past its end."""
        sr = self.audio.sample_rate
        start, n = w.start_ms * sr // 1000, w.duration_ms * sr // 1000
        if n <= 0:
            return np.zeros((self.audio.channels, 0), dtype=np.float32)
        per_block = BLOCK_MS * sr // 1000
        first, last = start // per_block, (start + n - 1) // per_block
        blocks = self._blocks(w, first, last)
        joined = blocks[0] if len(blocks) == 1 else np.concatenate(blocks, axis=1)
        at = start - first * per_block
        return joined[:, at:at + n]

    def whole(self, w: ClipWindow) -> np.ndarray:
        """All of ``w``'s clip, whatever window it names, at the target rate and channel count (material
        such as an impulse response)."""
        info = sf.info(io.BytesIO(self._encoded(w)))
        frames = w.length_frames or info.frames - w.offset_frames
        duration_ms = -(-frames * 1000 // info.samplerate)
        n = -(-frames * self.audio.sample_rate // info.samplerate)
        return self.window(replace(w, start_ms=0, duration_ms=duration_ms))[:, :n]


def _keep_recent(kept: OrderedDict[str, bytes], size: int, sha256: str, data: bytes, budget: int) -> int:
    """Add one encoded source to an LRU of them within ``budget`` bytes (the newest always stays); its new
    size in bytes."""
    if sha256 not in kept:
        kept[sha256] = data
        size += len(data)
    while size > budget and len(kept) > 1:
        size -= len(kept.popitem(last=False)[1])
    return size


def decode_window(data: bytes, name: str, offset_frames: int, length_frames: int, start_ms: int,
                  duration_ms: int, target_sr: int, channels: int) -> np.ndarray:
    """A window of a source at the target rate, silence past its end: the source frames it needs plus
    context on both sides, started on a frame where source and target sample grids meet, so the converted
    window lines up exactly with the target grid. Always a fresh open and seek: libsndfile's Vorbis decoder
    gives other samples after a seek on a handle that has already read."""
    with sf.SoundFile(io.BytesIO(data)) as f:
        sr = f.samplerate
        total = length_frames or f.frames - offset_frames
        first, n = start_ms * target_sr // 1000, duration_ms * target_sr // 1000
        step = sr // math.gcd(sr, target_sr)  # source frames between shared grid points
        context = round(CONTEXT_SECONDS * sr)
        a = max(0, (first * sr // target_sr - context) // step * step)
        b = min(total, -(-(first + n) * sr // target_sr) + context)
        if b <= a:
            return np.zeros((channels, n), dtype=np.float32)
        f.seek(offset_frames + a)
        chunk = f.read(b - a, dtype="float32", always_2d=True).T
    converted = convert(np.ascontiguousarray(chunk), sr, target_sr, channels)
    at = first - a * target_sr // sr
    out = converted[:, at:at + n]
    if out.shape[1] < n:
        out = np.pad(out, ((0, 0), (0, n - out.shape[1])))
    return out


def cut(audio: np.ndarray, sr: int, start_ms: int, duration_ms: int) -> np.ndarray:
    """A window in milliseconds of a whole converted clip, padded with silence where the audio ends early:
    the reference that ``SourceCache.window`` (block-wise) matches to float rounding."""
    start, n = start_ms * sr // 1000, duration_ms * sr // 1000
    window = audio[:, start:start + n]
    if window.shape[1] < n:
        window = np.pad(window, ((0, 0), (0, n - window.shape[1])))
    return window


def render_sample(row: PlanRow, cache: SourceCache, logmel_spec: LogMelSpec | None = None
                  ) -> tuple[bytes, dict[str, Any], bytes | None, PlanRow]:
    """Cut the source window, apply the planned chain (with its partner / impulse response), encode. The
    row comes back as rendered: with what its render-time ops drew recorded in its chain."""
    audio = cache.audio
    sr = audio.sample_rate
    window = cache.window(row.source_window())
    ctx = Context()
    for ref in row.material:
        if ref["role"] == "partner":
            ctx.partner = cache.window(ClipWindow.from_dict(ref))
        else:
            ctx.ir = cache.whole(ClipWindow.from_dict(ref))
    n = row.duration_ms * sr // 1000
    realised: list[dict[str, Any]] = []
    out = apply_chain(window, sr, list(row.augment), n_out=n, ctx=ctx, realised=realised)
    meta = {"sample_rate": sr, "channels": audio.channels, "format": audio.format, "frames": n}
    pcm = to_pcm16(out)  # quantised once: the features describe exactly the samples written
    features = npy_bytes(logmel(pcm.T / np.float32(32768.0), sr, logmel_spec)) if logmel_spec else None
    rendered = row if realised == list(row.augment) else replace(row, augment=tuple(realised))
    return encode_pcm16(pcm, sr, audio.format), meta, features, rendered


def plan_hash(rows: list[PlanRow], audio: AudioSpec, logmel_spec: LogMelSpec | None = None) -> str:
    """What a shard's bytes depend on, besides the inputs' content (their sha256 is in each row) and the
    DSP versions recorded in the card: its rows, in order, the output format and the stored features."""
    return sha256_hex(canonical_json({"audio": asdict(audio), "rows": [r.record() for r in rows],
                                      "logmel": asdict(logmel_spec) if logmel_spec else None}).encode())


def file_sha256(uri: str) -> str | None:
    if not storage.exists(uri):
        return None
    return sha256_hex(storage.read_bytes(uri))


@dataclass(frozen=True)
class RenderedSample:
    """One sample's shard members, encoded, with its plan row as planned and as rendered: what a render task
    hands to its shard's writer (through the runner's shuffle when samples are rendered clip by clip)."""

    planned: PlanRow
    audio: bytes
    doc: bytes
    features: bytes | None
    #: the row with what its render-time ops drew recorded in its chain; None when nothing was drawn
    drawn: PlanRow | None = None

    @property
    def rendered(self) -> PlanRow:
        return self.drawn if self.drawn is not None else self.planned


def render_members(row: PlanRow, cache: SourceCache, logmel_spec: LogMelSpec | None = None) -> RenderedSample:
    """A plan row rendered to the bytes its shard members hold."""
    data, meta, features, rendered = render_sample(row, cache, logmel_spec)
    return RenderedSample(row, data, sample_json_bytes(rendered.sample_json(meta)), features,
                          None if rendered is row else rendered)


def source_key(row: PlanRow) -> str:
    """The source a row's window is cut from, as its cached blocks are keyed: rows rendered together under
    this key decode their source once between them, whatever shards they go to."""
    w = row.source_window()
    return f"{w.sha256}/{w.offset_frames}/{w.length_frames}"


def source_order(row: PlanRow) -> tuple[int, str]:
    """The order a source's rows are rendered in: by where their windows start, so consecutive windows share
    blocks and a block is converted once even when the cache holds only a few."""
    return row.source_window().start_ms, row.hash


def write_shard(name: str, samples: Iterable[RenderedSample], audio: AudioSpec, out_dir: str,
                logmel_spec: LogMelSpec | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Write one shard (atomically) from its rendered samples in hash order; its card entry and its index
    rows. The bytes depend only on the samples and their order, never on where or when each was rendered."""
    index: list[dict[str, Any]] = []
    planned: list[PlanRow] = []
    with storage.atomic_write(storage.join(out_dir, name)) as f:
        sink = HashingWriter(f)
        writer = ShardWriter(sink)
        try:
            for order, sample in enumerate(samples):
                key = sample.planned.key
                writer.add(f"{key}.{audio.format}", sample.audio)
                writer.add(f"{key}.json", sample.doc)
                if sample.features is not None:
                    writer.add(f"{key}.{MEMBER_SUFFIX}", sample.features)
                index.append(index_row(sample.rendered, order, sample.audio, sample.doc, sample.features))
                planned.append(sample.planned)
                if order == 0:
                    inject("render", name)
        except BaseException:
            writer.abandon()
            raise
        writer.close()
    info = {
        "name": name,
        "split": planned[0].split,
        "samples": len(planned),
        "bytes": sink.bytes_written,
        "sha256": sink.sha256,
        "hash_range": [planned[0].hash, planned[-1].hash],
        "plan_hash": plan_hash(planned, audio, logmel_spec),
    }
    return info, index


def render_shard(name: str, ordered: list[PlanRow], audio: AudioSpec, out_dir: str,
                 logmel_spec: LogMelSpec | None = None, cache: SourceCache | None = None
                 ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Render and write one shard from its rows in order, one sample at a time (what ``verify`` and
    ``reproduce`` do); the same bytes a build writes. The bytes never depend on ``cache``, only how often
    sources decode."""
    cache = cache if cache is not None else SourceCache(audio)
    return write_shard(name, (render_members(row, cache, logmel_spec) for row in ordered), audio, out_dir,
                       logmel_spec)

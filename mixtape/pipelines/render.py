"""The render phase in Beam: samples rendered source by source, then sent to their shards' writers.

Shards are hash ranges, so every shard holds samples of nearly every source: a worker rendering a shard at a
time needed every source's blocks, and once the collection outgrew its cache it decoded each block again for
nearly every sample (1.8x the single-pass work with a roomy cache on 2 workers, 6x with a small one). So
the rows are grouped by source instead: one task renders all of a source's samples in window order, and the
encoded members (a few tens of kilobytes per sample) go through the shuffle to the task that writes their
shard, which orders them by hash as always. The bytes are the same as rendering shard by shard; what is
kept in an incremental build is decided per shard before anything is rendered.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.metrics import Metrics
from apache_beam.utils.shared import Shared

from mixtape import storage
from mixtape.audio import AudioError
from mixtape.dataset.features import LogMelSpec
from mixtape.dataset.names import PARTS_DIR
from mixtape.hashing import canonical_json
from mixtape.pipelines.manifest import write_part
from mixtape.pipelines.progress import tally
from mixtape.records import PlanRow
from mixtape.rendering import (
    CACHE_MB,
    RENDER_ATTEMPTS,
    InputChanged,
    RenderedSample,
    SourceCache,
    file_sha256,
    plan_hash,
    render_members,
    source_key,
    source_order,
    write_shard,
)
from mixtape.spec import AudioSpec

#: Source reads, blocks converted and blocks served from a cache, summed over a build's workers.
_COUNTERS = {name: Metrics.counter("mixtape", f"source_{name}") for name in ("reads", "blocks", "block_hits")}


def _count(name: str) -> None:
    _COUNTERS[name].inc()


#: The plan rows of shards that must be rendered (the rest are kept from the previous build).
TO_RENDER = "to_render"

T = TypeVar("T")


@dataclass(frozen=True)
class Spilled:
    """A rendered sample left in a local build's scratch (``spill-<uuid>.bin`` in the parts folder): what
    the shuffle carries instead of its bytes there, so the DirectRunner, which holds everything between
    stages in memory, never holds the dataset's audio. Builds to object stores shuffle the bytes."""

    planned: PlanRow
    drawn: PlanRow | None
    path: str
    offset: int
    sizes: tuple[int, int, int]  # audio, JSON, features (-1: none)


def _load_spilled(samples: list[RenderedSample | Spilled]) -> list[RenderedSample]:
    """The samples with spilled ones read back (each spill file opened once)."""
    handles: dict[str, Any] = {}
    try:
        out = []
        for s in samples:
            if isinstance(s, RenderedSample):
                out.append(s)
                continue
            if s.path not in handles:
                handles[s.path] = open(s.path, "rb")  # closed below, once the shard's samples are read
            f = handles[s.path]
            f.seek(s.offset)
            audio, doc = f.read(s.sizes[0]), f.read(s.sizes[1])
            features = f.read(s.sizes[2]) if s.sizes[2] >= 0 else None
            out.append(RenderedSample(s.planned, audio, doc, features, s.drawn))
        return out
    finally:
        for f in handles.values():
            f.close()


def with_retries(what: str, attempt_once: Callable[[], T], on_retry: Callable[[], None]) -> T:
    """Run a render or write step, retrying transient failures here, so that every runner recovers the
    same way (the local FnApiRunner does not retry bundles). Each step is a pure function of the plan and
    each write is atomic, so a retried step gives the same bytes. Errors a retry cannot fix (a full disk,
    no permission, changed input, undecodable audio) fail at once."""
    for attempt in range(1, RENDER_ATTEMPTS + 1):
        try:
            return attempt_once()
        except OSError as e:
            if e.errno in storage.WRITE_ERRNOS or attempt == RENDER_ATTEMPTS:
                raise
            error: Exception = e
        except (InputChanged, AudioError):
            raise
        except Exception as e:  # transient until proven otherwise: retried, then raised
            if attempt == RENDER_ATTEMPTS:
                raise
            error = e
        on_retry()
        logging.getLogger(__name__).warning("render %s: attempt %d of %d failed (%s: %s); retrying", what,
                                            attempt, RENDER_ATTEMPTS, type(error).__name__, error)
    raise AssertionError("unreachable")


class PlanShard(beam.DoFn):
    """(shard name, plan rows) -> its plan part; then either the shard's info, kept from the previous build
    (its plan hash is unchanged and its file still has the recorded sha256), or its rows, to be rendered."""

    def __init__(self, audio: AudioSpec, out_dir: str, logmel_spec: LogMelSpec | None = None,
                 previous_dir: str | None = None):
        self.audio = audio
        self.out_dir = out_dir
        #: where the previous dataset's shards are (an incremental build writes its own elsewhere)
        self.previous_dir = previous_dir or out_dir
        self.logmel = logmel_spec
        self.reused = Metrics.counter("mixtape", "shards_reused")
        self.samples = Metrics.counter("mixtape", "samples_written")
        self.bytes = Metrics.counter("mixtape", "shard_bytes_written")

    def process(self, element: tuple[str, Iterable[PlanRow]], previous: dict[str, Any]) -> Iterator:
        name, rows = element
        ordered = sorted(rows, key=lambda r: r.hash)
        write_part(self.out_dir, name, "plan", [{"shard": name, "order": order, "key": row.key,
                                                 "record": canonical_json(row.record())}
                                                for order, row in enumerate(ordered)])
        kept = previous.get(name)
        if kept is not None and kept["info"]["plan_hash"] == plan_hash(ordered, self.audio, self.logmel) and \
                file_sha256(storage.join(self.previous_dir, name)) == kept["info"]["sha256"]:
            self.reused.inc()
            self.samples.inc(kept["info"]["samples"])
            self.bytes.inc(kept["info"]["bytes"])
            write_part(self.out_dir, name, "index", kept["index"])
            yield kept["info"]
            return
        for row in ordered:
            yield pvalue.TaggedOutput(TO_RENDER, row)


class RenderSource(beam.DoFn):
    """(source key, plan rows) -> (shard name, rendered sample) for each row, in window order, so that the
    source's blocks are converted about once for all its samples."""

    def __init__(self, audio: AudioSpec, logmel_spec: LogMelSpec | None = None, cache_mb: int = CACHE_MB,
                 fonts: dict[str, str] | None = None, spill_dir: str | None = None):
        #: a local build's staging folder: samples are spilled to its parts folder (None: shuffled as bytes)
        self.spill_dir = spill_dir
        self._spill: Any = None
        self.audio = audio
        self.fonts = dict(fonts or {})
        self.logmel = logmel_spec
        self.cache_mb = cache_mb
        self.cache: SourceCache | None = None
        self._shared = Shared()
        self.retries = Metrics.counter("mixtape", "render_retries")
        self.rendered = Metrics.counter("mixtape", "samples_rendered")

    def setup(self) -> None:
        # One cache per worker process, shared by the DoFn instances of its threads (a Dataflow worker runs
        # a dozen), so the memory bound holds per process; it goes when the last instance does. Within a
        # source it serves consecutive windows; across sources, mix partners and impulse responses.
        self.cache = self._shared.acquire(lambda: SourceCache(self.audio, self.cache_mb << 20, self.fonts, _count),
                                          tag=f"mixtape-source-cache/{self.audio}/{self.cache_mb}/"
                                              f"{','.join(sorted(self.fonts))}")

    def start_bundle(self) -> None:
        self._spill = None

    def process(self, element: tuple[str, Iterable[PlanRow]]) -> Iterator[tuple[str, RenderedSample | Spilled]]:
        _, rows = element
        cache = self.cache
        assert cache is not None, "setup() runs before process()"
        for row in sorted(rows, key=source_order):
            sample = with_retries(row.key, partial(render_members, row, cache, self.logmel), self.retries.inc)
            self.rendered.inc()
            yield row.shard, (sample if self.spill_dir is None else self._spilled(sample))

    def _spilled(self, sample: RenderedSample) -> Spilled:
        if self._spill is None:  # one file per bundle: its name is scratch, never part of an output
            assert self.spill_dir is not None
            path = os.path.join(self.spill_dir, PARTS_DIR, f"spill-{uuid.uuid4().hex}.bin")
            self._spill = open(path, "wb")
        f = self._spill
        offset = f.tell()
        f.write(sample.audio)
        f.write(sample.doc)
        if sample.features is not None:
            f.write(sample.features)
        sizes = (len(sample.audio), len(sample.doc), -1 if sample.features is None else len(sample.features))
        return Spilled(sample.planned, sample.drawn, f.name, offset, sizes)

    def finish_bundle(self) -> None:
        # the writers read the spill only after this stage has finished (a GroupByKey lies between)
        if self._spill is not None:
            self._spill.close()
            self._spill = None


class WriteShard(beam.DoFn):
    """(shard name, rendered samples) -> the shard's tar (written atomically, in hash order), its index
    part and its info. Memory: one shard's encoded samples (at most ``shards.max_samples``)."""

    def __init__(self, audio: AudioSpec, out_dir: str, logmel_spec: LogMelSpec | None = None):
        self.audio = audio
        self.out_dir = out_dir
        self.logmel = logmel_spec
        self.written = Metrics.counter("mixtape", "shards_rendered")
        self.samples = Metrics.counter("mixtape", "samples_written")
        self.bytes = Metrics.counter("mixtape", "shard_bytes_written")
        self.retries = Metrics.counter("mixtape", "render_retries")

    def process(self, element: tuple[str, Iterable[RenderedSample | Spilled]]) -> Iterator[dict[str, Any]]:
        name, samples = element
        ordered = _load_spilled(sorted(samples, key=lambda s: s.planned.hash))
        info, index = with_retries(name, lambda: write_shard(name, ordered, self.audio, self.out_dir, self.logmel),
                                   self.retries.inc)
        self.written.inc()
        self.samples.inc(info["samples"])
        self.bytes.inc(info["bytes"])
        write_part(self.out_dir, name, "index", index)
        yield info


class Render(beam.PTransform):
    """Plan rows -> one info dict per shard (name, split, samples, bytes, sha256, plan hash), each shard
    kept from the previous build when its plan is unchanged, or else written from samples rendered source by
    source."""

    def __init__(self, audio: AudioSpec, out_dir: str, previous: dict[str, Any] | None = None,
                 logmel_spec: LogMelSpec | None = None, cache_mb: int = CACHE_MB, previous_dir: str | None = None,
                 fonts: dict[str, str] | None = None, scratch_dir: str | None = None):
        super().__init__()
        #: a local build's staging folder: its parts folder takes progress tallies and spilled samples (None,
        #: a build to an object store: neither; the samples go through the shuffle as bytes)
        self.scratch_dir = scratch_dir
        self.audio = audio
        self.fonts = dict(fonts or {})
        self.out_dir = out_dir
        self.previous_dir = previous_dir or out_dir
        self.previous = previous or {}
        self.logmel = logmel_spec
        self.cache_mb = cache_mb

    def expand(self, rows: beam.pvalue.PCollection) -> beam.pvalue.PCollection:
        previous = rows.pipeline | "PreviousShards" >> beam.Create([self.previous])
        shards = (rows
                  | "KeyByShard" >> beam.Map(lambda r: (r.shard, r))  # (shard name, PlanRow)
                  | "GroupShards" >> beam.GroupByKey()  # (shard name, [PlanRow, ...])
                  | "PlanShard" >> beam.ParDo(PlanShard(self.audio, self.out_dir, self.logmel, self.previous_dir),
                                              beam.pvalue.AsSingleton(previous)).with_outputs(TO_RENDER,
                                                                                              main="kept"))
        samples = (shards[TO_RENDER]
                   | "KeyBySource" >> beam.Map(lambda r: (source_key(r), r))  # (source key, PlanRow)
                   | "GroupSources" >> beam.GroupByKey()  # (source key, [PlanRow, ...])
                   | "RenderSource" >> beam.ParDo(RenderSource(self.audio, self.logmel, self.cache_mb, self.fonts,
                                                             self.scratch_dir)))
        written = (tally(samples, "CountRendered", self.scratch_dir, "rendered")  # (shard name, RenderedSample)
                   | "GroupSamples" >> beam.GroupByKey()  # (shard name, [RenderedSample, ...])
                   | "WriteShard" >> beam.ParDo(WriteShard(self.audio, self.out_dir, self.logmel)))
        return (shards["kept"], written) | "AllShards" >> beam.Flatten()

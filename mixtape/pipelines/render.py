"""The render phase in Beam: shards dealt out to workers, each rendered by ``mixtape.rendering``, retried
here on transient failures, kept as they are in an incremental build when their plan is unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.utils.shared import Shared

from mixtape import storage
from mixtape.audio import AudioError
from mixtape.dataset.features import LogMelSpec
from mixtape.hashing import canonical_json
from mixtape.pipelines.manifest import write_part
from mixtape.records import PlanRow
from mixtape.rendering import CACHE_MB, RENDER_ATTEMPTS, InputChanged, SourceCache, file_sha256, plan_hash, render_shard
from mixtape.spec import AudioSpec

#: Source reads, blocks converted and blocks served from a cache, summed over a build's workers.
_COUNTERS = {name: Metrics.counter("mixtape", f"source_{name}") for name in ("reads", "blocks", "block_hits")}


def _count(name: str) -> None:
    _COUNTERS[name].inc()


class RenderShard(beam.DoFn):
    """(shard name, plan rows) -> the shard's tar (written atomically), its summary, and its index rows.

    With ``previous`` (an incremental build), a shard whose plan hash is unchanged and whose file on disk
    still has the recorded sha256 is kept as it is: its summary and index rows are the previous ones.
    """

    def __init__(self, audio: AudioSpec, out_dir: str, logmel_spec: LogMelSpec | None = None,
                 cache_mb: int = CACHE_MB, previous_dir: str | None = None, fonts: dict[str, str] | None = None):
        self.audio = audio
        self.fonts = dict(fonts or {})
        self.out_dir = out_dir
        #: where the previous dataset's shards are (an incremental build writes its own elsewhere)
        self.previous_dir = previous_dir or out_dir
        self.logmel = logmel_spec
        self.cache_mb = cache_mb
        self.cache: SourceCache | None = None
        self._shared = Shared()
        self.reused = Metrics.counter("mixtape", "shards_reused")
        self.rendered = Metrics.counter("mixtape", "shards_rendered")
        self.samples = Metrics.counter("mixtape", "samples_written")
        self.bytes = Metrics.counter("mixtape", "shard_bytes_written")
        self.retries = Metrics.counter("mixtape", "render_retries")

    def setup(self) -> None:
        # One cache per worker process, shared by the DoFn instances of its threads (a Dataflow worker runs
        # a dozen), so the memory bound holds per process; it goes when the last instance does.
        self.cache = self._shared.acquire(lambda: SourceCache(self.audio, self.cache_mb << 20, self.fonts, _count),
                                          tag=f"mixtape-source-cache/{self.audio}/{self.cache_mb}/"
                                              f"{','.join(sorted(self.fonts))}")

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
            info, index = kept["info"], kept["index"]
        else:
            self.rendered.inc()
            info, index = self._render_with_retries(name, ordered)
        self.samples.inc(info["samples"])
        self.bytes.inc(info["bytes"])
        write_part(self.out_dir, name, "index", index)
        yield info


    def _render_with_retries(self, name: str, ordered: list[PlanRow]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Render a shard, retrying transient failures here, so that every runner recovers the same way (the
        local FnApiRunner does not retry bundles). Rendering is a pure function of the plan and each write is
        atomic, so a retried shard is byte-identical. Errors a retry cannot fix (a full disk, no permission,
        changed input) fail at once."""
        for attempt in range(1, RENDER_ATTEMPTS + 1):
            try:
                return render_shard(name, ordered, self.audio, self.out_dir, self.logmel, self.cache)
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
            self.retries.inc()
            logging.getLogger(__name__).warning("render %s: attempt %d of %d failed (%s: %s); retrying", name,
                                                attempt, RENDER_ATTEMPTS, type(error).__name__, error)
        raise AssertionError("unreachable")


class Render(beam.PTransform):
    """Plan rows -> one info dict per shard (name, split, samples, bytes, sha256, plan hash), each shard
    rendered (or kept from the previous build when its plan is unchanged) by one worker."""

    def __init__(self, audio: AudioSpec, out_dir: str, previous: dict[str, Any] | None = None,
                 logmel_spec: LogMelSpec | None = None, cache_mb: int = CACHE_MB, previous_dir: str | None = None,
                 fonts: dict[str, str] | None = None):
        super().__init__()
        self.audio = audio
        self.fonts = dict(fonts or {})
        self.out_dir = out_dir
        self.previous_dir = previous_dir or out_dir
        self.previous = previous or {}
        self.logmel = logmel_spec
        self.cache_mb = cache_mb

    def expand(self, rows: beam.pvalue.PCollection) -> beam.pvalue.PCollection:
        # GroupByKey already deals the shards out to workers: a Reshuffle after it moved every plan row
        # through the runner once more (2.5% of a build's CPU) for no better spread.
        previous = rows.pipeline | "PreviousShards" >> beam.Create([self.previous])
        return (rows
                | "KeyByShard" >> beam.Map(lambda r: (r.shard, r))  # (shard name, PlanRow)
                | "GroupShards" >> beam.GroupByKey()  # (shard name, [PlanRow, ...])
                | "RenderShard" >> beam.ParDo(RenderShard(self.audio, self.out_dir, self.logmel, self.cache_mb,
                                                          self.previous_dir, self.fonts),
                                              beam.pvalue.AsSingleton(previous)))

"""Ingest: list every source, drop duplicate ids, probe each clip once. Every failure becomes a Reject."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace

import apache_beam as beam
from apache_beam import pvalue

from mixtape import storage
from mixtape.audio import AudioError, probe
from mixtape.hashing import sha256_hex
from mixtape.pipelines.sources import list_source
from mixtape.records import Clip, Reject
from mixtape.spec import SourceSpec

REJECTS = "rejects"


def _list(indexed_source: tuple[int, SourceSpec]) -> Iterator:
    index, source = indexed_source
    try:
        for item in list_source(source):
            if isinstance(item, Reject):
                yield pvalue.TaggedOutput(REJECTS, item)
            else:
                yield (index, item)
    except OSError as e:
        yield pvalue.TaggedOutput(REJECTS, Reject(f"{source.kind}:{source.path}", source.path, "source",
                                                  "unreadable_source", str(e)))


def _dedupe(kv: tuple[str, Iterable[tuple[int, Clip]]]) -> Iterator:
    """One clip per id: the first source in spec order wins (then the smallest path), the rest are rejects."""
    clip_id, entries = kv
    ordered = sorted(entries, key=lambda e: (e[0], e[1].relpath))
    yield ordered[0][1]
    for _, dup in ordered[1:]:
        yield pvalue.TaggedOutput(REJECTS, Reject(clip_id, dup.relpath, "source", "duplicate_clip_id",
                                                  f"{clip_id} is already provided by {ordered[0][1].relpath}"))


class ProbeClip(beam.DoFn):
    """Read and decode each clip once: exact length, format, checksum and per-block loudness."""

    def process(self, clip: Clip) -> Iterator:
        try:
            data = storage.read_bytes(clip.uri)
        except OSError as e:
            yield pvalue.TaggedOutput(REJECTS, Reject(clip.clip_id, clip.relpath, "probe", "unreadable",
                                                      f"{clip.relpath}: {e.strerror or e}"))
            return
        try:
            p = probe(data, clip.relpath)
        except AudioError as e:
            yield pvalue.TaggedOutput(REJECTS, Reject(clip.clip_id, clip.relpath, "probe", e.reason, e.detail))
            return
        yield replace(clip, sha256=sha256_hex(data), sample_rate=p.sample_rate, channels=p.channels,
                      frames=p.frames, container=p.container, block_rms_db=p.block_rms_db)


class Ingest(beam.PTransform):
    """Sources -> probed Clips (main output) and Rejects (``rejects``)."""

    def __init__(self, sources: tuple[SourceSpec, ...]):
        super().__init__()
        self.sources = sources

    def expand(self, pbegin):
        listed = (pbegin
                  | "Sources" >> beam.Create(list(enumerate(self.sources)))
                  | "ListClips" >> beam.FlatMap(_list).with_outputs(REJECTS, main="clips"))
        unique = (listed.clips
                  | "KeyById" >> beam.Map(lambda ic: (ic[1].clip_id, ic))
                  | "GroupById" >> beam.GroupByKey()
                  | "DropDuplicates" >> beam.FlatMap(_dedupe).with_outputs(REJECTS, main="clips"))
        probed = (unique.clips
                  | "Spread" >> beam.Reshuffle()
                  | "Probe" >> beam.ParDo(ProbeClip()).with_outputs(REJECTS, main="clips"))
        rejects = ((listed[REJECTS], unique[REJECTS], probed[REJECTS])
                   | "IngestRejects" >> beam.Flatten())
        return probed.clips, rejects

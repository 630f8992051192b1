"""Source readers: each turns one spec source into Clip records (metadata only) and Rejects.

Readers are plain generators so they can be tested without Beam; the ingest transform fans them out.
"""

from __future__ import annotations

from collections.abc import Iterator

from mixtape.pipelines.sources.folder import list_folder
from mixtape.pipelines.sources.freesound_dump import list_freesound_dump
from mixtape.records import Clip, Reject
from mixtape.spec import SourceSpec

READERS = {"freesound_dump": list_freesound_dump, "folder": list_folder}


def list_source(source: SourceSpec) -> Iterator[Clip | Reject]:
    yield from READERS[source.kind](source)

"""Source readers: each turns one spec source into Clip records (metadata only) and Rejects.

Readers are plain generators so they can be tested without Beam; the ingest transform fans them out.
"""

from __future__ import annotations

from collections.abc import Iterator

from mixtape.pipelines.sources.acousticbrainz import list_acousticbrainz
from mixtape.pipelines.sources.csv_index import list_csv_index
from mixtape.pipelines.sources.folder import list_folder
from mixtape.pipelines.sources.freesound_dump import list_freesound_dump
from mixtape.pipelines.sources.freesound_pack import list_freesound_pack
from mixtape.pipelines.sources.fsd50k import list_fsd50k
from mixtape.records import Clip, Reject
from mixtape.spec import SourceSpec

READERS = {
    "freesound_dump": list_freesound_dump,
    "freesound_pack": list_freesound_pack,
    "fsd50k": list_fsd50k,
    "csv_index": list_csv_index,
    "acousticbrainz": list_acousticbrainz,
    "folder": list_folder,
}


def list_source(source: SourceSpec) -> Iterator[Clip | Reject]:
    yield from READERS[source.kind](source)

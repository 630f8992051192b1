"""Source readers: each turns one spec source into Clip records (metadata only) and Rejects.

Readers are plain generators so they can be tested without Beam; the ingest transform fans them out.
"""

from __future__ import annotations

from collections.abc import Iterator

from mixtape import storage
from mixtape.records import Clip, Reject
from mixtape.sources.acousticbrainz.reader import list_acousticbrainz
from mixtape.sources.csv_index import list_csv_index
from mixtape.sources.folder import list_folder
from mixtape.sources.freesound.dump import list_freesound_dump
from mixtape.sources.freesound.pack import list_freesound_pack
from mixtape.sources.fsd50k.reader import PARTS as FSD50K_PARTS
from mixtape.sources.fsd50k.reader import list_fsd50k
from mixtape.sources.lhotse import list_lhotse
from mixtape.sources.score.reader import list_score
from mixtape.spec import SourceSpec

READERS = {
    "freesound_dump": list_freesound_dump,
    "freesound_pack": list_freesound_pack,
    "fsd50k": list_fsd50k,
    "csv_index": list_csv_index,
    "acousticbrainz": list_acousticbrainz,
    "folder": list_folder,
    "score": list_score,
    "lhotse": list_lhotse,
}


def list_source(source: SourceSpec) -> Iterator[Clip | Reject]:
    yield from READERS[source.kind](source)


def audio_roots(source: SourceSpec) -> list[tuple[str, str]]:
    """Where a source's audio files are, as (folder, prefix): a file ``rel`` of the folder appears in the
    source's clips and rejects as ``prefix + rel``. Used to account for every file when a reader fails."""
    if source.kind == "csv_index":
        return [(source.opt("audio_dir"), "")]
    if source.kind == "acousticbrainz":
        return [(source.opt("audio"), "")]
    if source.kind == "lhotse":
        return [(source.opt("audio_dir"), "")]
    if source.kind == "fsd50k":
        return [(storage.join(source.root, d), f"{d}/") for _, d in FSD50K_PARTS]
    return [(source.root, "")]

"""``kind: acousticbrainz``: AcousticBrainz labels joined to audio by MusicBrainz recording id.

``path`` holds the documents (any shape ``documents`` reads); ``audio`` is the tree of audio
files, each joined by the recording MBID in its own tags or, when given, by a ``mapping`` CSV with columns
``mbid,file``. ``genre_tsv`` adds MediaEval genre ground truth (as tags) and release groups (for grouping);
``class_csv`` adds AcousticBrainz "dataset" CSVs (``mbid,class`` rows, ``description`` pseudo-rows skipped)
as class field ``class_field``.

Every audio file becomes a clip or a reject (no_mbid, bad_mbid, no_acousticbrainz_document); every
recording with documents but no audio is a reject (no_audio), so nothing is dropped silently.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from typing import Any

from mixtape import storage
from mixtape.labels import empty_labels, labels_from_acousticbrainz, merge_labels, normalise_tags
from mixtape.records import Clip, Reject
from mixtape.sources.acousticbrainz.documents import (
    BadArchive,
    classify,
    document_files,
    read_document_file,
    read_genre_tsv,
    tag_value,
)
from mixtape.sources.common import audio_files, clip, read_csv, read_text, reject, unselected_audio
from mixtape.sources.filetags import is_mbid, read_tags
from mixtape.spec import SourceSpec
from mixtape.untrusted import load_json

#: One document's (or table row's) contribution to a recording's labels: what the keyed join merges, in
#: ``order`` (documents in listing order, then genre TSVs, then class CSVs), the first to set a field winning.
Partial = dict[str, Any]
#: What every step of the keyed form yields: (mbid, partial), (mbid, audio path), or a reject.
Keyed = tuple[str, Any] | Reject


def file_partials(source: SourceSpec, file_index: int, rel: str, uri: str) -> Iterator[Keyed]:
    """(mbid, partial) for every document in one file (a JSON file or a dump archive), or its rejects."""
    threshold, moods = source.options["genre_threshold"], source.options["moods"]
    position = 0
    for name, data in read_document_file(rel, uri):
        if isinstance(data, BadArchive):
            yield reject(source, name, name, "bad_acousticbrainz", str(data))
            continue
        try:
            docs = list(classify(name, load_json(data, name)))
        except ValueError as e:
            yield reject(source, name, name, "bad_acousticbrainz", str(e))
            continue
        for mbid, kind, doc in docs:
            if not is_mbid(mbid):
                yield reject(source, mbid, name, "bad_mbid", f"{mbid!r} is not a valid MusicBrainz id")
                continue
            if kind == "low":
                labels = labels_from_acousticbrainz(doc, None)
                meta = {k: tag_value(doc, t) for k, t in (("title", "title"), ("artist", "artist"), ("album", "album"),
                                                          ("release_group", "musicbrainz_releasegroupid"))}
            else:
                labels, meta = labels_from_acousticbrainz(None, doc, threshold, moods), {}
            yield mbid.lower(), {"order": (0, file_index, position), "doc": name, "labels": labels, "meta": meta}
            position += 1


def table_partials(source: SourceSpec) -> Iterator[Keyed]:
    """(mbid, partial) for every row of the genre TSVs (tags, release group) and class CSVs (a class)."""
    for t, tsv in enumerate(source.opt("genre_tsv")):
        for n, mbid, release_group, genres in read_genre_tsv(read_text(tsv)):
            if not is_mbid(mbid):
                yield reject(source, mbid or f"{tsv}:{n}", tsv, "bad_mbid",
                             f"line {n}: {mbid!r} is not a valid MusicBrainz id")
                continue
            yield mbid.lower(), {"order": (1, t, n), "doc": tsv, "tags": genres,
                                 "meta": {"release_group": release_group} if release_group else {}}
    for c, path in enumerate(source.opt("class_csv")):
        _, rows = read_csv(path, delimiter=",", header=False)
        for n, row in enumerate(rows, 1):
            first = row[0].strip() if row else ""
            if first.lower().startswith("description") or len(row) < 2:
                continue  # AcousticBrainz dataset CSVs carry `description,…` pseudo-rows
            if not is_mbid(first):
                yield reject(source, first, path, "bad_mbid", f"line {n}: {first!r} is not a valid MusicBrainz id")
                continue
            yield first.lower(), {"order": (2, c, n), "doc": path,
                                  "class": (source.options["class_field"], ",".join(row[1:]).strip())}


def merge_partials(partials: Iterable[Partial]) -> dict[str, Any]:
    """A recording's labels and metadata from its partials, in their order whatever order they arrive in:
    the first that has a field sets it and later ones fill only what is missing; TSV genres add tags."""
    ordered = sorted(partials, key=lambda p: p["order"])
    entry: dict[str, Any] = {"labels": empty_labels(), "meta": {}, "doc": ordered[0]["doc"]}
    for p in ordered:
        if "labels" in p:
            entry["labels"] = merge_labels(entry["labels"], p["labels"])
        if "tags" in p:
            entry["labels"]["tags"] = normalise_tags([*entry["labels"]["tags"], *p["tags"]])
        if "class" in p:
            entry["labels"]["classes"].setdefault(*p["class"])
        for k, v in p.get("meta", {}).items():
            entry["meta"][k] = entry["meta"].get(k) or v
    return entry


def _mbids_of_audio(source: SourceSpec) -> Iterator[tuple[str, str | None]]:
    """(relative audio path, mbid or None) for every audio file, from the mapping CSV or the file's tags."""
    audio_root = source.opt("audio")
    mapping: dict[str, str] = {}
    if source.opt("mapping"):
        header, rows = read_csv(source.opt("mapping"))
        cols = [h.strip().lower() for h in header]
        if "mbid" not in cols or "file" not in cols:
            raise ValueError(f"mapping {source.opt('mapping')} needs columns mbid,file (got {header})")
        for row in rows:
            rec = dict(zip(cols, row, strict=False))
            mapping[rec["file"]] = rec["mbid"].strip()
    listing = storage.list_files(audio_root)
    for rel in audio_files(audio_root, source.extensions, listing):
        if rel in mapping:
            yield rel, mapping[rel]
            continue
        yield rel, read_tags(storage.join(audio_root, rel)).get("mbid")


def audio_keys(source: SourceSpec) -> Iterator[Keyed]:
    """(mbid, audio path) for every audio file that names a valid recording id, and a reject for every
    other audio file (unread extensions, no id, a bad id, an unusable mapping)."""
    yield from unselected_audio(source, source.opt("audio"))
    audio_root = source.opt("audio")
    try:
        pairs = list(_mbids_of_audio(source))
    except (OSError, ValueError, UnicodeDecodeError) as e:
        yield reject(source, source.path, source.options.get("mapping") or "", "bad_metadata", str(e))
        for rel in audio_files(audio_root, source.extensions):  # none can be joined: each is accounted for
            yield reject(source, rel, rel, "bad_metadata", f"the mapping is unusable: {e}")
        return
    for rel, mbid in pairs:
        if not mbid:
            yield reject(source, rel, rel, "no_mbid", "no MusicBrainz recording id in the file's tags or the mapping")
        elif not is_mbid(mbid):
            yield reject(source, rel, rel, "bad_mbid", f"{mbid!r} is not a valid MusicBrainz id")
        else:
            yield mbid.strip().lower(), rel


def join_recording(source: SourceSpec, mbid: str, partials: Iterable[Partial], audio: Iterable[str]
                   ) -> Iterator[Clip | Reject]:
    """One recording's clips (one per audio file naming it), or the reject that says which half is missing."""
    partials, audio = list(partials), sorted(audio)
    if not partials:
        for rel in audio:
            yield reject(source, mbid, rel, "no_acousticbrainz_document", f"no AcousticBrainz document for {mbid}")
        return
    entry = merge_partials(partials)
    if not audio:
        yield reject(source, mbid, entry["doc"], "no_audio",
                     "AcousticBrainz labels for a recording with no audio file in `audio`")
        return
    labels = entry["labels"]
    labels["extra"] = {**labels.get("extra", {}), "mbid": mbid}
    meta = entry["meta"]
    for rel in audio:
        yield clip(source, mbid, rel, base=source.opt("audio"), title=meta.get("title", ""),
                   artist=meta.get("artist", ""), album=meta.get("album", ""),
                   release_group=meta.get("release_group", ""), source_id=mbid,
                   url=f"https://musicbrainz.org/recording/{mbid}", labels=copy.deepcopy(labels))


def keyed_parts(source: SourceSpec) -> Iterator[Keyed]:
    """Every keyed item of a source, read in one process: what the Beam form spreads over workers."""
    for i, (rel, uri) in enumerate(document_files(source.root)):
        yield from file_partials(source, i, rel, uri)
    yield from table_partials(source)


def list_acousticbrainz(source: SourceSpec) -> Iterator[Clip | Reject]:
    """The source read and joined in this process (the Beam build runs the same steps keyed by MBID, as a
    CoGroupByKey, so no worker holds every recording's summary)."""
    partials: dict[str, list[Partial]] = {}
    audio: dict[str, list[str]] = {}
    for item in keyed_parts(source):
        if isinstance(item, Reject):
            yield item
        else:
            partials.setdefault(item[0], []).append(item[1])
    for item in audio_keys(source):
        if isinstance(item, Reject):
            yield item
        else:
            audio.setdefault(item[0], []).append(item[1])
    for mbid in sorted(set(partials) | set(audio)):
        yield from join_recording(source, mbid, partials.get(mbid, []), audio.get(mbid, []))

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

from collections.abc import Iterator
from typing import Any

from mixtape import storage
from mixtape.labels import empty_labels, labels_from_acousticbrainz, merge_labels, normalise_tags
from mixtape.records import Clip, Reject
from mixtape.sources.acousticbrainz.documents import BadArchive, classify, iter_json_files, read_genre_tsv, tag_value
from mixtape.sources.common import audio_files, clip, read_csv, read_text, reject, unselected_audio
from mixtape.sources.filetags import is_mbid, read_tags
from mixtape.spec import SourceSpec
from mixtape.untrusted import load_json


def _summaries(source: SourceSpec) -> tuple[dict[str, dict[str, Any]], list[Reject]]:
    """mbid -> the labels and metadata its documents give (the documents themselves are not kept)."""
    threshold, moods = source.options["genre_threshold"], source.options["moods"]
    out: dict[str, dict[str, Any]] = {}
    rejects: list[Reject] = []
    for name, data in iter_json_files(source.root):
        if isinstance(data, BadArchive):
            rejects.append(reject(source, name, name, "bad_acousticbrainz", str(data)))
            continue
        try:
            docs = list(classify(name, load_json(data, name)))
        except ValueError as e:
            rejects.append(reject(source, name, name, "bad_acousticbrainz", str(e)))
            continue
        for mbid, kind, doc in docs:
            if not is_mbid(mbid):
                rejects.append(reject(source, mbid, name, "bad_mbid", f"{mbid!r} is not a valid MusicBrainz id"))
                continue
            entry = out.setdefault(mbid.lower(), {"labels": empty_labels(), "meta": {}, "doc": name})
            # Several documents of one recording (a bulk API excerpt, a full document, a second submission):
            # in the order read, the first that has a field sets it and later ones fill only what is missing.
            if kind == "low":
                entry["labels"] = merge_labels(entry["labels"], labels_from_acousticbrainz(doc, None))
                for k, t in (("title", "title"), ("artist", "artist"), ("album", "album"),
                             ("release_group", "musicbrainz_releasegroupid")):
                    entry["meta"][k] = entry["meta"].get(k) or tag_value(doc, t)
            else:
                entry["labels"] = merge_labels(entry["labels"],
                                               labels_from_acousticbrainz(None, doc, threshold, moods))
    for tsv in source.opt("genre_tsv"):
        for n, mbid, release_group, genres in read_genre_tsv(read_text(tsv)):
            if not is_mbid(mbid):
                rejects.append(reject(source, mbid or f"{tsv}:{n}", tsv, "bad_mbid",
                                      f"line {n}: {mbid!r} is not a valid MusicBrainz id"))
                continue
            entry = out.setdefault(mbid.lower(), {"labels": empty_labels(), "meta": {}, "doc": tsv})
            entry["labels"]["tags"] = normalise_tags([*entry["labels"]["tags"], *genres])
            if release_group and not entry["meta"].get("release_group"):
                entry["meta"]["release_group"] = release_group
    for path in source.opt("class_csv"):
        _, rows = read_csv(path, delimiter=",", header=False)
        for n, row in enumerate(rows, 1):
            first = row[0].strip() if row else ""
            if first.lower().startswith("description") or len(row) < 2:
                continue  # AcousticBrainz dataset CSVs carry `description,…` pseudo-rows
            if not is_mbid(first):
                rejects.append(reject(source, first, path, "bad_mbid",
                                      f"line {n}: {first!r} is not a valid MusicBrainz id"))
                continue
            entry = out.setdefault(first.lower(), {"labels": empty_labels(), "meta": {}, "doc": path})
            entry["labels"]["classes"].setdefault(source.options["class_field"], ",".join(row[1:]).strip())
    return out, rejects


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


def list_acousticbrainz(source: SourceSpec) -> Iterator[Clip | Reject]:
    summaries, rejects = _summaries(source)
    yield from rejects
    yield from unselected_audio(source, source.opt("audio"))
    audio_root = source.opt("audio")
    joined: set[str] = set()
    try:
        pairs = list(_mbids_of_audio(source))
    except (OSError, ValueError, UnicodeDecodeError) as e:
        yield reject(source, source.path, source.options.get("mapping") or "", "bad_metadata", str(e))
        for rel in audio_files(audio_root, source.extensions):  # none can be joined: each is accounted for
            yield reject(source, rel, rel, "bad_metadata", f"the mapping is unusable: {e}")
        pairs = []
    for rel, mbid in pairs:
        if not mbid:
            yield reject(source, rel, rel, "no_mbid", "no MusicBrainz recording id in the file's tags or the mapping")
            continue
        if not is_mbid(mbid):
            yield reject(source, rel, rel, "bad_mbid", f"{mbid!r} is not a valid MusicBrainz id")
            continue
        mbid = mbid.strip().lower()
        entry = summaries.get(mbid)
        if entry is None:
            yield reject(source, mbid, rel, "no_acousticbrainz_document", f"no AcousticBrainz document for {mbid}")
            continue
        joined.add(mbid)
        labels = entry["labels"]
        labels["extra"] = {**labels.get("extra", {}), "mbid": mbid}
        meta = entry["meta"]
        yield clip(source, mbid, rel, base=audio_root, title=meta.get("title", ""), artist=meta.get("artist", ""),
                   album=meta.get("album", ""), release_group=meta.get("release_group", ""), source_id=mbid,
                   url=f"https://musicbrainz.org/recording/{mbid}", labels=labels)
    for mbid in sorted(set(summaries) - joined):
        yield reject(source, mbid, summaries[mbid]["doc"], "no_audio",
                     "AcousticBrainz labels for a recording with no audio file in `audio`")

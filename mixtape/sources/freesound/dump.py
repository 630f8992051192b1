"""``kind: freesound_dump``: a local copy of Freesound sounds, the layout the demo and the downloader write.

Layout::

    <path>/metadata.jsonl            one Freesound API v2 sound object per line (or metadata.json: a list,
                                     an API page {"results": [...]}, or an object keyed by id)
    <path>/audio/<id>.<ext>          the audio (original or preview), named by Freesound id

Fields read, with their API names: id, name, tags, username, license, pack, url. mixtape adds one optional
field, ``mbid`` (a MusicBrainz recording id); with ``acousticbrainz: DIR`` in the source (relative to its
``path``), the clip's AcousticBrainz documents ``DIR/lowlevel/<mbid>.json`` and
``DIR/highlevel/<mbid>_highlevel.json`` supply key, tempo and genre labels. ``geotag`` (null or "lat lon"),
``previews`` (object or string) and other API fields are kept in the file and ignored by the reader.
``ac_analysis`` (Freesound's AudioCommons descriptors) supplies key (``ac_tonality``) and tempo
(``ac_tempo``) when their confidence reaches ``ac_min_confidence`` (default 0.5; Freesound reports tempo 0
with confidence 0 when it found none); AcousticBrainz labels, when present, take precedence.
``extra_metadata`` names a JSON object keyed by id whose fields fill what the records lack (e.g. a
``licenses.txt`` holding ``{"183": {"username": …, "license": …}}``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from mixtape import storage
from mixtape.labels import labels_from_acousticbrainz, merge_labels, normalise_key, normalise_tags
from mixtape.records import Clip, Reject
from mixtape.sources.common import audio_files, clip, is_junk, read_text, reject, unselected_audio
from mixtape.sources.filetags import is_mbid
from mixtape.spec import SourceSpec
from mixtape.untrusted import UntrustedInputError, brief, load_json

METADATA_NAMES = ("metadata.jsonl", "metadata.json")


def _records(text: str, name: str) -> Iterator[tuple[int, Any]]:
    """(line or position, record) pairs; a record that does not parse is yielded as an Exception."""
    if name.endswith(".jsonl"):
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    yield n, load_json(line, f"{name} line {n}")
                except UntrustedInputError as e:
                    yield n, e
        return
    doc = load_json(text, name)
    if isinstance(doc, dict) and isinstance(doc.get("results"), list):
        doc = doc["results"]
    elif isinstance(doc, dict) and "id" in doc:  # a single sound object
        doc = [doc]
    elif isinstance(doc, dict):
        doc = [{"id": k, **v} if isinstance(v, dict) and "id" not in v else v for k, v in doc.items()]
    if not isinstance(doc, list):
        raise UntrustedInputError(f"{name} holds neither sound records nor an API page")
    yield from enumerate(doc, 1)


def _load_json(uri: str) -> dict[str, Any] | None:
    if not storage.exists(uri):
        return None
    doc = load_json(storage.read_bytes(uri), uri.rsplit("/", 1)[-1])
    if not isinstance(doc, dict):
        raise UntrustedInputError(f"{uri.rsplit('/', 1)[-1]} is not a JSON object")
    return doc


def _pack_value(pack: Any) -> str:
    """The API gives a pack URL (``.../apiv2/packs/123/``) or null; dumps sometimes hold a name."""
    if pack is None or pack == "":
        return ""
    m = re.search(r"/packs/(\d+)/?$", str(pack))
    return m.group(1) if m else str(pack)


def freesound_url(sid: int, username: str = "") -> str:
    return f"https://freesound.org/people/{username}/sounds/{sid}/" if username else f"https://freesound.org/s/{sid}/"


def labels_from_audiocommons(ac: Any, min_confidence: float) -> dict[str, Any]:
    """Key and tempo from a Freesound ``ac_analysis`` object, each only when confident enough."""
    out: dict[str, Any] = {"tags": [], "classes": {}, "key": None, "tempo": None, "extra": {}}
    if not isinstance(ac, dict):
        return out

    def confident(field: str) -> bool:
        c = ac.get(f"{field}_confidence")
        return isinstance(c, (int, float)) and not isinstance(c, bool) and c >= min_confidence

    tonality = ac.get("ac_tonality")
    if isinstance(tonality, str) and confident("ac_tonality"):
        tonic, _, mode = tonality.strip().partition(" ")
        out["key"] = normalise_key(tonic, mode)
    tempo = ac.get("ac_tempo")
    if isinstance(tempo, (int, float)) and not isinstance(tempo, bool) and 20 <= tempo <= 400 and confident("ac_tempo"):
        out["tempo"] = float(tempo)
    return out


def is_numeric_id(text: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also accepts "²" and other digits that ``int`` refuses."""
    return re.fullmatch(r"[0-9]{1,18}", text) is not None


def _stem(rel: str) -> str:
    return PurePosixPath(rel).name.split(".", 1)[0]


@dataclass(frozen=True)
class _DumpFiles:
    """What the dump's folder holds, indexed by the Freesound id its file names carry."""

    meta_uri: str
    meta_name: str
    listing: list[str]
    audio_by_id: dict[str, list[str]]
    other_by_id: dict[str, list[str]]  # named by an id but with an extension mixtape does not read


def _dump_files(source: SourceSpec) -> _DumpFiles | Reject:
    root = source.root
    names = (source.options["metadata"],) if source.options.get("metadata") else METADATA_NAMES
    meta_uri = next((storage.join(root, n) for n in names if storage.exists(storage.join(root, n))), None)
    if meta_uri is None:
        return reject(source, source.path, source.path, "missing_metadata", f"no {' or '.join(names)} in {root}")
    listing = storage.list_files(root)
    audio = audio_files(root, source.extensions, listing)
    audio_by_id: dict[str, list[str]] = {}
    for rel in audio:
        audio_by_id.setdefault(_stem(rel), []).append(rel)
    other_by_id: dict[str, list[str]] = {}
    readable = set(audio)
    for rel in listing:
        if rel.startswith("audio/") and not is_junk(rel) and rel not in readable:
            other_by_id.setdefault(_stem(rel), []).append(rel)
    return _DumpFiles(meta_uri, PurePosixPath(meta_uri).name, listing, audio_by_id, other_by_id)


def _extra_metadata(source: SourceSpec) -> tuple[dict[str, dict], Reject | None]:
    """The ``extra_metadata`` file's records keyed by id, or a reject saying why it could not be read."""
    if not source.opt("extra_metadata"):
        return {}, None
    name = source.options["extra_metadata"]
    try:
        doc = load_json(read_text(source.opt("extra_metadata")), name)
        return {str(k): v for k, v in doc.items() if isinstance(v, dict)}, None
    except (ValueError, AttributeError, UnicodeDecodeError) as e:
        return {}, reject(source, name, name, "bad_metadata",
                          f"extra_metadata must be a JSON object keyed by sound id: {e}")


def _acousticbrainz_labels(source: SourceSpec, sid: str, audio: str, mbid: Any,
                           labels: dict[str, Any]) -> dict[str, Any] | Reject:
    """``labels`` with the recording's AcousticBrainz key, tempo and genre merged in."""
    if not is_mbid(mbid):
        return reject(source, sid, audio, "bad_mbid", f"`mbid` {mbid!r} is not a valid UUID")
    mbid = mbid.strip().lower()
    ab_root = source.opt("acousticbrainz")
    try:
        low = _load_json(storage.join(ab_root, "lowlevel", f"{mbid}.json"))
        high = _load_json(storage.join(ab_root, "highlevel", f"{mbid}_highlevel.json"))
    except (ValueError, UnicodeDecodeError) as e:
        return reject(source, sid, audio, "bad_acousticbrainz",
                      f"AcousticBrainz document for {mbid} is not valid JSON: {e}")
    merged = merge_labels(labels, labels_from_acousticbrainz(low, high))
    merged["extra"]["mbid"] = mbid
    return merged


def _record_clip(source: SourceSpec, sid: str, audio: str, rec: dict[str, Any]) -> Clip | Reject:
    """One metadata record, already known to have an id and an audio file, as a clip."""
    labels: dict[str, Any] = {"tags": normalise_tags(rec.get("tags") or []), "classes": {}, "key": None,
                              "tempo": None, "extra": {}}
    if rec.get("mbid") and source.opt("acousticbrainz"):
        merged = _acousticbrainz_labels(source, sid, audio, rec["mbid"], labels)
        if isinstance(merged, Reject):
            return merged
        labels = merged
    labels = merge_labels(labels, labels_from_audiocommons(rec.get("ac_analysis"),
                                                           float(source.options.get("ac_min_confidence", 0.5))))
    username = str(rec.get("username") or "")
    return clip(
        source, sid, audio,
        title=str(rec.get("name") or ""),
        uploader=username,
        pack=_pack_value(rec.get("pack")),
        source_id=sid,
        licence=str(rec.get("license") or ""),
        url=str(rec.get("url") or freesound_url(int(sid), username)),
        labels=labels,
    )


def list_freesound_dump(source: SourceSpec) -> Iterator[Clip | Reject]:
    files = _dump_files(source)
    if isinstance(files, Reject):
        yield files
        return
    meta_name = files.meta_name
    try:
        records = list(_records(read_text(files.meta_uri), meta_name))
    except (ValueError, UnicodeDecodeError) as e:
        yield reject(source, meta_name, meta_name, "bad_metadata", f"{meta_name} is not valid JSON: {e}")
        records = []
    extra_meta, bad_extra = _extra_metadata(source)
    if bad_extra is not None:
        yield bad_extra
    described: set[str] = set()
    reported: set[str] = set()
    for n, rec in records:
        where = f"{meta_name}:{n}"
        if isinstance(rec, Exception) or not isinstance(rec, dict):
            yield reject(source, where, meta_name, "bad_metadata", f"record {n} is not a JSON object: {rec}")
            continue
        sid = str(rec.get("id", "")).strip()
        if not is_numeric_id(sid):
            yield reject(source, where, meta_name, "bad_metadata",
                         f"record {n} has no numeric `id` (got {brief(rec.get('id'))})")
            continue
        sid = str(int(sid))
        rec = {**extra_meta.get(sid, {}), **{k: v for k, v in rec.items() if v not in (None, "")}}
        first_record = sid not in described
        described.add(sid)
        audio = sorted(files.audio_by_id.get(sid, []))
        other = files.other_by_id.get(sid)
        if not audio and other:
            reported.add(other[0])
            yield reject(source, sid, other[0], "unsupported_format",
                         f"{other[0]} has an extension mixtape does not read (it reads "
                         f"{', '.join(source.extensions)}); convert it, or add the extension to the source's "
                         "`extensions` if libsndfile can decode it")
            continue
        if not audio:
            yield reject(source, sid, meta_name, "missing_audio",
                         f"no audio file named {sid}.<{'|'.join(source.extensions)}> in "
                         f"{storage.join(source.root, 'audio')} (where `mixtape freesound download` puts them) "
                         f"or anywhere else under {source.root}")
            continue
        for extra in audio[1:] if first_record else []:
            yield reject(source, extra, extra, "duplicate_audio",
                         f"{audio[0]} is used for id {sid}; this second file for the same id is not")
        yield _record_clip(source, sid, audio[0], rec)

    for sid in sorted(set(files.audio_by_id) - described):
        for rel in sorted(files.audio_by_id[sid]):
            yield reject(source, rel, rel, "no_metadata",
                         "audio file has no metadata record, so its licence is unknown")
    for r in unselected_audio(source, root=source.root, listing=files.listing):
        if r.path not in reported:
            yield r

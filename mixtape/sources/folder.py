"""``kind: folder``: any tree of audio files.

Labels come from (in order of precedence) a sidecar file, the path (``pattern: "{genre}/{artist}/*"`` or
``class_field: genre`` for the parent folder), and the files' own tags (title, artist, album, genre).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Any

from mixtape import storage
from mixtape.labels import empty_labels, normalise_tags
from mixtape.records import Clip, Reject
from mixtape.sources.common import audio_files, clip, read_csv, reject, unselected_audio
from mixtape.sources.filetags import read_tags
from mixtape.spec import SourceSpec
from mixtape.untrusted import load_json

#: Pattern fields that set clip attributes (used for grouping and attribution) instead of class labels.
ATTRIBUTE_FIELDS = ("artist", "album", "uploader", "pack", "release_group", "source_id", "fold", "title")


def match_pattern(pattern: str, relpath: str) -> dict[str, str] | None:
    """Fields of a path pattern such as ``{genre}/{artist}/*`` (matched against the folders, last first)."""
    parts = PurePosixPath(pattern).parts
    path = PurePosixPath(relpath).parts
    if parts and parts[-1] in ("*", "{file}"):
        parts = parts[:-1]
    folders = path[:-1]
    if len(folders) < len(parts):
        return None
    out = {}
    for p, value in zip(reversed(parts), reversed(folders), strict=False):
        if p.startswith("{") and p.endswith("}"):
            out[p[1:-1]] = value
        elif p != value and p != "*":
            return None
    return out


def _sidecar(source: SourceSpec) -> dict[str, dict[str, Any]]:
    """file -> labels/attributes from a CSV (``file`` column, ``tags`` ';'-separated, others classes) or
    JSON object keyed by file."""
    path = source.opt("sidecar")
    if not path:
        return {}
    if path.lower().endswith(".json"):
        doc = load_json(storage.read_bytes(path), source.options["sidecar"])
        if not isinstance(doc, dict) or not all(isinstance(v, dict) for v in doc.values()):
            raise ValueError(f"sidecar {source.options['sidecar']} must be a JSON object of objects keyed by file")
        return doc
    header, rows = read_csv(path)
    if "file" not in header:
        raise ValueError(f"sidecar {path} needs a `file` column (got {header})")
    out = {}
    for row in rows:
        rec = dict(zip(header, row, strict=False))
        out[rec.pop("file")] = rec
    return out


def _apply(fields: dict[str, Any], labels: dict[str, Any], values: dict[str, Any]) -> None:
    for k, v in values.items():
        if v in (None, ""):
            continue
        if k == "tags":
            tags = v if isinstance(v, list) else str(v).split(";")
            labels["tags"] = normalise_tags([*labels["tags"], *tags])
        elif k == "classes" and isinstance(v, dict):
            labels["classes"].update({str(a): str(b) for a, b in v.items()})
        elif k in ("key", "tempo", "extra"):
            labels[k] = v
        elif k in ATTRIBUTE_FIELDS:
            fields[k] = str(v)
        else:
            labels["classes"][k] = str(v)


def list_folder(source: SourceSpec) -> Iterator[Clip | Reject]:
    listing = storage.list_files(source.root)
    files = audio_files(source.root, source.extensions, listing)
    yield from unselected_audio(source, source.root, listing)
    try:
        sidecar = _sidecar(source)
    except (OSError, ValueError, UnicodeDecodeError) as e:
        yield reject(source, source.path, source.options.get("sidecar") or "", "bad_metadata", str(e))
        for rel in files:  # without its labels no file can be used, and each is accounted for
            yield reject(source, rel, rel, "bad_metadata", f"the sidecar is unusable: {e}")
        return
    pattern = source.options.get("pattern")
    class_field = source.options.get("class_field")
    for rel in files:
        labels = empty_labels()
        fields: dict[str, Any] = {"title": PurePosixPath(rel).stem}
        if source.options.get("read_tags"):
            tags = read_tags(storage.join(source.root, rel))  # an unreadable file is the probe's to reject
            _apply(fields, labels, {k: tags[k] for k in ("title", "artist", "album") if k in tags})
            if tags.get("genre"):
                labels["classes"]["genre"] = tags["genre"]
        if class_field and len(PurePosixPath(rel).parts) > 1:
            labels["classes"][class_field] = PurePosixPath(rel).parts[-2]
        if pattern:
            matched = match_pattern(pattern, rel)
            if matched is None:
                yield reject(source, rel, rel, "path_pattern", f"path does not match pattern {pattern!r}")
                continue
            _apply(fields, labels, matched)
        if rel in sidecar:
            _apply(fields, labels, sidecar[rel])
        yield clip(source, rel, rel, labels=labels, **fields)

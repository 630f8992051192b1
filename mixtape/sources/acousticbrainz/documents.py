"""AcousticBrainz documents in every shape they come in, reduced to per-recording label summaries.

Shapes read:
- low-level documents (``lowlevel``/``rhythm``/``tonal``/``metadata``) and high-level documents
  (``highlevel`` + ``metadata``), as single files named ``<mbid>.json`` / ``<mbid>_highlevel.json`` /
  ``<mbid>-<n>.json``, in a tree sharded by MBID prefix (``be/be9e01e5-….json``), or inside tar, tar.gz,
  tar.bz2 and tar.zst dump archives (macOS ``._*`` / ``.DS_Store`` / ``__MACOSX`` members skipped);
- the flat high-level "models" dict (``{model: {value, probability, all}}``);
- the bulk API response ``{mbid: {"0": document}}`` (submission offset as a string key);
- MediaEval genre ground-truth TSVs: ``recordingmbid releasegroupmbid genre…`` with variable width, empty
  padding columns and ``parent---child`` subgenres.

No audio here: these labels join to audio by MusicBrainz recording id.
"""

from __future__ import annotations

import io
import os
import re
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Any

from mixtape import storage
from mixtape.sources.common import is_junk
from mixtape.untrusted import show

MBID_IN_NAME = re.compile(r"([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})")
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.zst", ".tar.zstd")


class BadDocument(ValueError):
    def __init__(self, name: str, detail: str):
        self.name = name
        super().__init__(f"{name}: {detail}")


#: The largest document read from an archive (real low-level documents are about 100 KB): a member that
#: claims more is refused before it is read, so a crafted archive cannot exhaust memory.
MAX_DOCUMENT_BYTES = 64 << 20


class BadArchive(ValueError):
    """An archive that cannot be read to its end; ``documents`` were read before the problem."""

    def __init__(self, name: str, documents: int, detail: str):
        self.name, self.documents = name, documents
        super().__init__(f"{name}: {detail} after {documents} document(s); the documents before it are used")


def _open_archive(data: bytes, name: str) -> tarfile.TarFile:
    """A streaming reader of a dump archive, decompressing as it goes (never the whole archive at once)."""
    lower = name.lower()
    if lower.endswith((".tar.zst", ".tar.zstd")):
        import zstandard

        raw = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data))
        return tarfile.open(fileobj=raw, mode="r|")
    if lower.endswith(".tar.bz2"):
        return tarfile.open(fileobj=io.BytesIO(data), mode="r|bz2")
    if lower.endswith((".tar.gz", ".tgz")):
        return tarfile.open(fileobj=io.BytesIO(data), mode="r|gz")
    return tarfile.open(fileobj=io.BytesIO(data), mode="r|")


def _archive_documents(data: bytes, rel: str) -> Iterator[tuple[str, bytes]]:
    """The JSON members of one archive; a truncated or corrupt archive raises :class:`BadArchive` after
    yielding every document before the damage."""
    count = 0
    try:
        with _open_archive(data, rel) as tar:
            for member in tar:
                if not (member.isreg() and member.name.lower().endswith(".json") and not is_junk(member.name)):
                    continue
                if member.size > MAX_DOCUMENT_BYTES:
                    raise BadArchive(rel, count, f"member {show(member.name)} claims {member.size} bytes")
                f = tar.extractfile(member)
                yield f"{rel}!{member.name}", f.read() if f else b""
                count += 1
    except BadArchive:
        raise
    except (tarfile.TarError, EOFError, OSError, zlib.error, ValueError) as e:
        raise BadArchive(rel, count, f"the archive is damaged or truncated ({type(e).__name__}: {e})") from None


def document_files(path: str) -> list[tuple[str, str]]:
    """(name, uri) of every JSON file and dump archive under ``path`` (a file, a folder tree), in listing
    order: the units a keyed build reads in parallel."""
    if os.path.isdir(path) or (storage.is_remote(path) and not path.endswith((".json", *ARCHIVE_SUFFIXES))):
        entries = [(rel, storage.join(path, rel)) for rel in storage.list_files(path)]
    else:
        entries = [(PurePosixPath(path).name, path)]
    return [(rel, uri) for rel, uri in entries
            if not is_junk(rel) and rel.lower().endswith((".json", *ARCHIVE_SUFFIXES))]


def read_document_file(rel: str, uri: str) -> Iterator[tuple[str, bytes | BadArchive]]:
    """(name, bytes) of the documents of one file: itself, or an archive's members. A damaged archive yields
    its readable documents, then ``(archive name, BadArchive)``."""
    if rel.lower().endswith(ARCHIVE_SUFFIXES):
        try:
            yield from _archive_documents(storage.read_bytes(uri), rel)
        except BadArchive as e:
            yield rel, e
    else:
        yield rel, storage.read_bytes(uri)


def iter_json_files(path: str) -> Iterator[tuple[str, bytes | BadArchive]]:
    """(name, bytes) of every JSON document under ``path``: a file, a folder tree, or archives in it."""
    for rel, uri in document_files(path):
        yield from read_document_file(rel, uri)


def classify(name: str, doc: Any) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(mbid, "low" | "high", document) for each document in one parsed JSON file."""
    if not isinstance(doc, dict):
        raise BadDocument(name, "not a JSON object")
    if doc and all(isinstance(k, str) and MBID_IN_NAME.fullmatch(k) for k in doc):  # bulk API response
        for mbid, offsets in doc.items():
            if isinstance(offsets, dict):
                for _, sub in sorted(offsets.items(), key=lambda kv: str(kv[0]))[:1]:
                    yield from classify_one(mbid, sub, name)
        return
    m = MBID_IN_NAME.search(PurePosixPath(name.split("!")[-1]).name)
    mbid = m.group(1) if m else ((doc.get("metadata") or {}).get("tags") or {}).get("musicbrainz_recordingid",
                                                                                 [""])[0]
    if not mbid:
        raise BadDocument(name, "no MusicBrainz recording id in the file name or metadata.tags")
    yield from classify_one(mbid, doc, name)


def classify_one(mbid: str, doc: Any, name: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    if not isinstance(doc, dict):
        raise BadDocument(name, f"document for {mbid} is not an object")
    if "highlevel" in doc:
        yield mbid, "high", doc
    elif any(k in doc for k in ("lowlevel", "rhythm", "tonal")):
        yield mbid, "low", doc
    elif doc and all(isinstance(v, dict) and "value" in v for v in doc.values()):  # flat models dict
        yield mbid, "high", {"highlevel": doc}
    else:
        raise BadDocument(name, "neither a low-level nor a high-level AcousticBrainz document")


def tag_value(low: dict[str, Any] | None, key: str) -> str:
    """A value from a low-level document's ``metadata.tags`` (where every value is a list)."""
    tags = ((low or {}).get("metadata") or {}).get("tags") or {}
    v = tags.get(key)
    if isinstance(v, list):
        v = v[0] if v else ""
    return str(v or "")


def read_genre_tsv(text: str) -> Iterator[tuple[int, str, str, list[str]]]:
    """(line, recording mbid, release group mbid, genres) from a MediaEval ground-truth TSV."""
    for n, line in enumerate(text.splitlines(), 1):
        cells = line.rstrip("\r").split("\t")
        if n == 1 and cells and cells[0].strip().lower() == "recordingmbid":
            continue
        if not any(c.strip() for c in cells):
            continue
        genres = [c.strip() for c in cells[2:] if c.strip()]
        yield n, cells[0].strip(), (cells[1].strip() if len(cells) > 1 else ""), genres

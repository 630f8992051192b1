"""Helpers every source reader shares: listing audio files, making namespaced clips and rejects.

Every audio-looking file a source sees is accounted for: used, or a reject with a reason. That includes
files with an extension the source does not select (``not_selected``) or that mixtape cannot decode
(``unsupported_format``), symlinks that leave the source (``outside_source``) and things that are not files
at all (``not_a_file``: FIFOs, sockets, devices), which are never opened for reading.
"""

from __future__ import annotations

import csv
import io
import os
import stat
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Any

from mixtape import storage
from mixtape.records import Clip, Reject
from mixtape.spec import SourceSpec
from mixtape.untrusted import show

#: Files that archivers and file managers leave behind; never inputs.
JUNK_NAMES = (".DS_Store", "Thumbs.db", "desktop.ini")
#: Extensions of audio that libsndfile decodes (a source reads those it lists in ``extensions``).
DECODABLE_EXTENSIONS = frozenset({"flac", "mp3", "mp2", "ogg", "oga", "opus", "wav", "wave", "aif", "aiff", "aifc",
                                  "au", "snd", "caf", "w64", "rf64"})
#: Extensions of audio that mixtape cannot decode: accounted as ``unsupported_format``.
UNDECODABLE_EXTENSIONS = frozenset({"m4a", "m4b", "mp4", "aac", "alac", "wma", "ape", "wv", "mka", "webm", "amr",
                                    "ac3", "dts", "ra", "mpc"})
AUDIO_LOOKING = DECODABLE_EXTENSIONS | UNDECODABLE_EXTENSIONS
#: csv's own limit is 128 KiB per cell; descriptions can be longer. A cell past this fails its row only.
CSV_FIELD_LIMIT = 16 << 20


def is_junk(relpath: str) -> bool:
    parts = PurePosixPath(relpath).parts
    return any(p == "__MACOSX" or p.startswith("._") or p in JUNK_NAMES for p in parts)


def extension(relpath: str) -> str:
    return PurePosixPath(relpath).suffix.lower().lstrip(".")


def _candidate(rel: str) -> bool:
    return not is_junk(rel) and not PurePosixPath(rel).name.startswith(".")


def audio_files(root: str, extensions: tuple[str, ...], listing: list[str] | None = None) -> list[str]:
    """Audio files under ``root`` (sorted relative paths), junk and hidden files excluded; ``listing`` is
    ``storage.list_files(root)`` when the caller has it already."""
    listing = storage.list_files(root) if listing is None else listing
    return [rel for rel in listing if _candidate(rel) and extension(rel) in extensions]


def unselected_audio(source: SourceSpec, root: str, listing: list[str] | None = None, prefix: str = ""
                     ) -> Iterator[Reject]:
    """A reject for every audio-looking file under ``root`` whose extension the source does not read, so
    that ``clips_in`` counts every audio file the source saw. ``prefix`` places ``root`` in the source."""
    listing = storage.list_files(root) if listing is None else listing
    for rel in listing:
        ext = extension(rel)
        if not _candidate(rel) or ext in source.extensions or ext not in AUDIO_LOOKING:
            continue
        path = f"{prefix}{rel}"
        if ext in UNDECODABLE_EXTENSIONS:
            yield reject(source, path, path, "unsupported_format", f"{path}: .{ext} files cannot be decoded by "
                         "mixtape; convert them to FLAC, WAV, OGG or MP3")
        else:
            yield reject(source, path, path, "not_selected", f"{path}: .{ext} is not in the source's extensions "
                         f"({', '.join(source.extensions)}); add it to `extensions` to read these files")


def file_problem(source: SourceSpec, uri: str, base: str, relpath: str) -> tuple[str, str] | None:
    """Why a listed local file must not be read: it is not a regular file, or a symlink leads out of the
    source (unless the source says ``follow_symlinks: true``). Unreadable paths (dangling links, loops,
    permissions) are left to the probe, which says ``unreadable``."""
    if storage.is_remote(uri):
        return None
    try:
        mode = os.stat(uri).st_mode
    except OSError:
        return None
    inside = storage.within(uri, base) or storage.within(uri, source.root)
    if not inside and not source.options.get("follow_symlinks"):
        return "outside_source", (f"{show(relpath)} is a symlink to {show(os.path.realpath(uri))}, outside the "
                                  "source folder; set `follow_symlinks: true` on the source to read it")
    if not stat.S_ISREG(mode):
        return "not_a_file", f"{show(relpath)} is {storage.file_kind(mode)}, not an audio file: it is never read"
    return None


def clip(source: SourceSpec, local_id: str, relpath: str, base: str | None = None, **fields: Any) -> Clip | Reject:
    """A clip whose id is namespaced by its source (the source's `licence` fills a missing licence), or the
    reject that says why its file must not be read."""
    base = base or source.root
    uri = storage.join(base, relpath)
    problem = file_problem(source, uri, base, relpath)
    if problem is not None:
        return reject(source, local_id, relpath, *problem)
    if not fields.get("licence") and source.options.get("licence"):
        fields["licence"] = source.options["licence"]
    return Clip(clip_id=f"{source.name}:{local_id}", uri=uri, relpath=relpath, source=source.name, **fields)


def reject(source: SourceSpec, local_id: str, path: str, reason: str, detail: str, stage: str = "source") -> Reject:
    return Reject(f"{source.name}:{local_id}", path, stage, reason, detail)


def read_text(uri: str) -> str:
    """Text with a BOM stripped and line endings kept for the csv module to handle (CRLF included)."""
    return storage.read_bytes(uri).decode("utf-8-sig")


def sniff_delimiter(header: str) -> str:
    counts = {d: header.count(d) for d in (",", ";", "\t", "|")}
    return max(counts, key=lambda d: (counts[d], d == ","))


def csv_rows(text: str, delimiter: str) -> Iterator[tuple[int, list[str] | csv.Error]]:
    """(line number, cells) per non-blank row; a row the csv module cannot parse (a cell over
    ``CSV_FIELD_LIMIT``, say) comes as its error, and the rows after it are still read."""
    if csv.field_size_limit() < CSV_FIELD_LIMIT:
        csv.field_size_limit(CSV_FIELD_LIMIT)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            yield reader.line_num, e
            continue
        if any(cell.strip() for cell in row):
            yield reader.line_num, row


def read_csv(uri: str, delimiter: str | None = None, header: bool = True) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of a CSV/TSV file; the delimiter is sniffed from the first line when not given. A row
    that cannot be parsed makes the file unusable (ValueError naming the line): callers account for the
    files it would have described."""
    text = read_text(uri)
    first = text.splitlines()[0] if text else ""
    rows = []
    for line, row in csv_rows(text, delimiter or sniff_delimiter(first)):
        if isinstance(row, csv.Error):
            raise ValueError(f"{PurePosixPath(uri).name} line {line}: {row}")
        rows.append(row)
    if not header:
        return [], rows
    return (rows[0], rows[1:]) if rows else ([], [])

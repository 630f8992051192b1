"""Helpers every source reader shares: listing audio files, making namespaced clips and rejects."""

from __future__ import annotations

import csv
import io
from pathlib import PurePosixPath
from typing import Any

from mixtape import storage
from mixtape.records import Clip, Reject
from mixtape.spec import SourceSpec

#: Files that archivers and file managers leave behind; never inputs.
JUNK_NAMES = (".DS_Store", "Thumbs.db", "desktop.ini")


def is_junk(relpath: str) -> bool:
    parts = PurePosixPath(relpath).parts
    return any(p == "__MACOSX" or p.startswith("._") or p in JUNK_NAMES for p in parts)


def audio_files(root: str, extensions: tuple[str, ...], listing: list[str] | None = None) -> list[str]:
    """Audio files under ``root`` (sorted relative paths), junk and hidden files excluded; ``listing`` is
    ``storage.list_files(root)`` when the caller has it already."""
    out = []
    for rel in storage.list_files(root) if listing is None else listing:
        name = PurePosixPath(rel).name
        if is_junk(rel) or name.startswith("."):
            continue
        if PurePosixPath(rel).suffix.lower().lstrip(".") in extensions:
            out.append(rel)
    return out


def clip(source: SourceSpec, local_id: str, relpath: str, base: str | None = None, **fields: Any) -> Clip:
    """A clip whose id is namespaced by its source; the source's `licence` fills a missing licence."""
    if not fields.get("licence") and source.options.get("licence"):
        fields["licence"] = source.options["licence"]
    return Clip(clip_id=f"{source.name}:{local_id}", uri=storage.join(base or source.root, relpath),
                relpath=relpath, source=source.name, **fields)


def reject(source: SourceSpec, local_id: str, path: str, reason: str, detail: str, stage: str = "source") -> Reject:
    return Reject(f"{source.name}:{local_id}", path, stage, reason, detail)


def read_text(uri: str) -> str:
    """Text with a BOM stripped and line endings kept for the csv module to handle (CRLF included)."""
    return storage.read_bytes(uri).decode("utf-8-sig")


def sniff_delimiter(header: str) -> str:
    counts = {d: header.count(d) for d in (",", ";", "\t", "|")}
    return max(counts, key=lambda d: (counts[d], d == ","))


def read_csv(uri: str, delimiter: str | None = None, header: bool = True) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of a CSV/TSV file; the delimiter is sniffed from the first line when not given."""
    text = read_text(uri)
    first = text.splitlines()[0] if text else ""
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter or sniff_delimiter(first)))
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not header:
        return [], rows
    return (rows[0], rows[1:]) if rows else ([], [])

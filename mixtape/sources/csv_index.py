"""``kind: csv_index``: collections described by one CSV/TSV index (ESC-50, UrbanSound8K, Clotho, …).

``columns`` maps roles to column names: ``file`` (required; a column name, or a template over columns such
as ``fold{fold}/{slice_file_name}``), ``id`` (default: the file), ``class``, ``tags`` (split on
``tags_sep``, default ';'), ``fold``, ``start`` / ``end`` (a window of the file, in ``window_unit``; a
single column holding ``[start, end]`` works too, as in Clotho's ``start_end_samples``), ``licence``,
``uploader``, ``title``, ``source_id`` (the recording a slice came from), ``url``. Unmapped columns are
kept in ``labels.extra``. The delimiter is sniffed (``,``, ``;``, tab) unless given; a BOM and CRLF line
endings are handled; file names are used exactly as written (Clotho has one that starts with a space).
"""

from __future__ import annotations

import csv
import re
import string
from collections.abc import Iterator
from typing import Any

from mixtape import storage
from mixtape.labels import empty_labels, normalise_tags
from mixtape.records import Clip, Reject
from mixtape.sources.common import (
    audio_files,
    clip,
    csv_rows,
    read_text,
    reject,
    sniff_delimiter,
    unselected_audio,
)
from mixtape.spec import SourceSpec

_PAIR = re.compile(r"^\s*\[\s*([-+0-9.eE]+)\s*,\s*([-+0-9.eE]+)\s*\]\s*$")


def _file_of(template: str, row: dict[str, str]) -> str:
    if "{" not in template:
        return row.get(template, "")
    fields = [f for _, f, _, _ in string.Formatter().parse(template) if f]
    return template.format(**{f: row.get(f, "").strip() for f in fields})


def _window(row: dict[str, str], cols: dict[str, str]) -> tuple[float, float] | None:
    start = row.get(cols.get("start", ""), "").strip()
    end = row.get(cols.get("end", ""), "").strip() if "end" in cols else ""
    if not start and not end:
        return None
    pair = _PAIR.match(start)
    if pair:
        return float(pair.group(1)), float(pair.group(2))
    return float(start or 0), float(end) if end else 0.0


def _read_index(uri: str, delimiter: str | None) -> tuple[list[str], list[tuple[int, list[str] | csv.Error]]]:
    """The header and the (line, cells or parse error) rows of the index."""
    text = read_text(uri)
    first = text.splitlines()[0] if text else ""
    rows = list(csv_rows(text, delimiter or sniff_delimiter(first)))
    if not rows or isinstance(rows[0][1], csv.Error):
        return [], rows
    return [h.strip() for h in rows[0][1]], rows[1:]


def list_csv_index(source: SourceSpec) -> Iterator[Clip | Reject]:
    cols: dict[str, str] = source.options["columns"]
    csv_path = source.opt("csv")
    audio_root = source.opt("audio_dir")
    header, rows = _read_index(csv_path, source.options.get("delimiter"))
    needed = [c for role, c in cols.items() if role not in ("tags_sep", "file") and c]
    needed += [f for _, f, _, _ in string.Formatter().parse(cols["file"]) if f] if "{" in cols["file"] else [
        cols["file"]]
    missing = sorted(set(needed) - set(header))
    listing = storage.list_files(audio_root)
    present = set(audio_files(audio_root, source.extensions, listing))
    yield from unselected_audio(source, audio_root, listing)
    if missing:
        problem = f"columns {missing} are not in the CSV header {header}"
        yield reject(source, source.options["csv"], source.options["csv"], "bad_metadata", problem)
        for rel in sorted(present):  # the index cannot describe them: each file is accounted for
            yield reject(source, rel, rel, "bad_metadata", f"{source.options['csv']} is unusable: {problem}")
        return
    used_files: set[str] = set()
    mapped = set(cols.values())
    for n, cells in rows:
        if isinstance(cells, csv.Error):
            yield reject(source, f"{source.options['csv']}:{n}", source.options["csv"], "bad_metadata",
                         f"row {n} cannot be read ({cells}); the file it names, if any, is accounted as no_metadata")
            continue
        if len(cells) < len(header):
            cells = cells + [""] * (len(header) - len(cells))
        row = dict(zip(header, (c.rstrip("\r") for c in cells), strict=False))
        rel = _file_of(cols["file"], row)
        if rel not in present and rel.strip() in present:
            rel = rel.strip()  # padding around the cell (a name that really starts with a space is kept)
        local_id = (row.get(cols["id"], "").strip() if "id" in cols else "") or rel
        if not rel.strip():
            yield reject(source, f"{source.options['csv']}:{n}", source.options["csv"], "bad_metadata",
                         f"row {n} names no file")
            continue
        used_files.add(rel)
        if rel not in present:
            yield reject(source, local_id, rel, "missing_audio",
                         f"row {n} names {rel!r}, which is not in the audio folder")
            continue
        try:
            window = _window(row, cols)
        except ValueError:
            yield reject(source, local_id, rel, "bad_metadata", f"row {n}: start/end are not numbers")
            continue
        labels = empty_labels()
        if cols.get("class") and row.get(cols["class"], "").strip():
            labels["classes"][source.options["class_field"]] = row[cols["class"]].strip()
        if cols.get("tags"):
            labels["tags"] = normalise_tags(row.get(cols["tags"], "").split(cols.get("tags_sep", ";")))
        labels["extra"] = {k: v.strip() for k, v in sorted(row.items()) if k not in mapped and v.strip()}
        value = {role: row.get(cols[role], "").strip() if role in cols else ""
                 for role in ("title", "uploader", "licence", "fold", "source_id", "url")}
        fields: dict[str, Any] = {**value, "title": value["title"] or rel}
        if window is not None:
            fields.update(window_start=window[0], window_end=window[1], window_unit=source.options["window_unit"])
        yield clip(source, local_id, rel, base=audio_root, labels=labels, **fields)
    for rel in sorted(present - used_files):
        yield reject(source, rel, rel, "no_metadata", "audio file is not named by any row of the index")

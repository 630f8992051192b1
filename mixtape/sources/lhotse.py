"""``kind: lhotse``: a corpus described by Lhotse manifests, so anything with a Lhotse recipe builds here.

Layout (paths relative to the source's ``path``)::

    recordings: recordings.jsonl.gz     a RecordingSet: id, sources [{type: file, source: PATH}], ...
    supervisions: supervisions.jsonl.gz optional SupervisionSet: recording_id, start, duration, custom, ...
    cuts: cuts.jsonl.gz                 or a CutSet (MonoCut: id, start, duration, recording, supervisions)

A recording becomes one clip (the whole file); a cut becomes a clip that is a window of its recording's
file, grouped by recording (``splits: {group_by: source_id}`` keeps a recording's cuts in one split).
Labels come from the supervisions of the recording (or cut) and the recording's own ``custom``: string
fields become classes (``custom.genre`` -> ``classes.genre``; ``language``, ``speaker`` and ``gender`` too),
lists of strings become tags, and the supervision ``text`` is kept in ``labels.extra.text``.

Manifests are read as untrusted JSON lines (``.jsonl`` or ``.jsonl.gz``; Lhotse itself is not needed). Only
``type: file`` audio sources are read: ``url`` and ``memory`` sources are rejects, and ``command`` sources (a
shell command Lhotse would run to produce the audio) are never run. A path inside the manifest, absolute
or relative, must lie under ``audio_dir`` (default: the source's ``path``). Audio files the manifests do not
name are not looked for: a Lhotse recipe's folder often holds more than one manifest describes.
"""

from __future__ import annotations

import gzip
import io
import os
import posixpath
from collections.abc import Iterator
from typing import Any

from mixtape import storage
from mixtape.labels import empty_labels, normalise_tags
from mixtape.records import Clip, Reject
from mixtape.sources.common import clip, reject
from mixtape.spec import SourceSpec
from mixtape.untrusted import UntrustedInputError, brief, load_json, show

#: supervision fields that are class labels as they are (besides ``custom``'s string fields)
CLASS_FIELDS = ("language", "speaker", "gender")
#: the most a manifest may expand to when decompressed
MAX_MANIFEST_BYTES = 1 << 30


def _lines(uri: str) -> Iterator[tuple[int, Any]]:
    """(line number, record or the exception that line raised) of a jsonl / jsonl.gz manifest."""
    data = storage.read_bytes(uri)
    if uri.endswith(".gz"):
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
            data = f.read(MAX_MANIFEST_BYTES + 1)
        if len(data) > MAX_MANIFEST_BYTES:
            raise UntrustedInputError(f"{os.path.basename(uri)} expands past {MAX_MANIFEST_BYTES >> 20} MB")
    for n, line in enumerate(data.decode("utf-8").splitlines(), 1):
        if line.strip():
            try:
                yield n, load_json(line, f"{os.path.basename(uri)} line {n}")
            except UntrustedInputError as e:
                yield n, e


def _records(source: SourceSpec, option: str) -> Iterator[dict[str, Any] | Reject]:
    name = source.options[option]
    try:
        lines = list(_lines(source.opt(option)))
    except (OSError, ValueError, EOFError) as e:  # unreadable, not gzip, not UTF-8, too large
        yield reject(source, name, name, "bad_metadata", f"{option} manifest {show(name)} cannot be read: {show(e)}")
        return
    for n, rec in lines:
        if isinstance(rec, dict) and isinstance(rec.get("id"), str) and rec["id"].strip():
            yield rec
        else:
            why = rec if isinstance(rec, Exception) else f"got {brief(rec)}"
            yield reject(source, f"{name}:{n}", name, "bad_metadata", f"line {n} is not a record with an `id`: {why}")


class _Unreadable(Exception):
    """Why a recording's audio must not be read: a reject's reason and detail."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def _audio_path(source: SourceSpec, recording: dict[str, Any]) -> str:
    """The recording's file relative to ``audio_dir``, or :class:`_Unreadable`."""
    sources = recording.get("sources")
    if not isinstance(sources, list) or len(sources) != 1 or not isinstance(sources[0], dict):
        raise _Unreadable("unsupported_source", "mixtape reads recordings with exactly one audio source (one "
                                                f"file); this one has {brief(sources)}")
    kind, where = sources[0].get("type"), sources[0].get("source")
    if kind != "file" or not isinstance(where, str) or not where:
        raise _Unreadable("unsupported_source", f"audio source of type {brief(kind)}: only `file` sources are read "
                                                "(a `command` source is a shell command, which mixtape never runs)")
    base = source.opt("audio_dir")
    if storage.is_remote(base):  # in a bucket, paths are relative to audio_dir and may not climb out of it
        rel = posixpath.normpath(where) if not where.startswith("/") and "://" not in where else "../"
    else:
        full = where if os.path.isabs(where) else os.path.join(base, where)
        rel = os.path.relpath(os.path.normpath(full), base)
    if rel.startswith("..") or os.path.isabs(rel):
        raise _Unreadable("outside_source", f"{show(where)} is outside audio_dir {show(base)}; set the source's "
                                            "`audio_dir` to the folder the manifest's paths lie under")
    if not storage.exists(storage.join(base, rel)):
        raise _Unreadable("missing_audio", f"{show(where)} (named by the manifest) does not exist")
    return rel.replace(os.sep, "/")


def _labels(supervisions: list[dict[str, Any]], custom: Any) -> dict[str, Any]:
    labels = empty_labels()
    tags: list[str] = []
    texts = []
    for fields in [_mapping(custom)] + [{**{k: s.get(k) for k in CLASS_FIELDS}, **_mapping(s.get("custom"))}
                                        for s in supervisions]:
        for key, value in sorted(fields.items()):
            if isinstance(value, str) and value.strip():
                labels["classes"].setdefault(str(key), value.strip())
            elif isinstance(value, list) and all(isinstance(v, str) for v in value):
                tags += value
    for s in supervisions:
        if isinstance(s.get("text"), str) and s["text"].strip():
            texts.append(s["text"].strip())
    labels["tags"] = normalise_tags(tags)
    if texts:
        labels["extra"]["text"] = " | ".join(texts)
    return labels


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _clip(source: SourceSpec, local_id: str, recording: dict[str, Any], supervisions: list[dict[str, Any]],
          window: tuple[float, float] | None) -> Clip | Reject:
    try:
        rel = _audio_path(source, recording)
    except _Unreadable as e:
        return reject(source, local_id, str(recording.get("id")), e.reason, e.detail)
    fields: dict[str, Any] = {"title": local_id, "source_id": str(recording["id"])}
    if window is not None:
        fields.update(window_start=window[0], window_end=window[1], window_unit="seconds")
    return clip(source, local_id, rel, base=source.opt("audio_dir"),
                labels=_labels(supervisions, recording.get("custom")), **fields)


def list_lhotse(source: SourceSpec) -> Iterator[Clip | Reject]:
    if not source.options.get("recordings") and not source.options.get("cuts"):
        yield reject(source, source.path, source.path, "missing_metadata",
                     "a lhotse source names `recordings` (a RecordingSet) or `cuts` (a CutSet)")
        return
    if source.options.get("cuts"):
        for cut in _records(source, "cuts"):
            if isinstance(cut, Reject):
                yield cut
                continue
            recording, start, duration = cut.get("recording"), _number(cut.get("start")), _number(cut.get("duration"))
            if not isinstance(recording, dict) or not isinstance(recording.get("id"), str) or start is None \
                    or duration is None or duration <= 0 or start < 0:
                yield reject(source, cut["id"], source.options["cuts"], "bad_metadata",
                             "a cut needs a recording (with an id), a start >= 0 and a duration > 0")
                continue
            sups = [s for s in cut.get("supervisions") or [] if isinstance(s, dict)]
            yield _clip(source, cut["id"], recording, sups, (start, start + duration))
        return
    by_recording: dict[str, list[dict[str, Any]]] = {}
    if source.options.get("supervisions"):
        for sup in _records(source, "supervisions"):
            if isinstance(sup, Reject):
                yield sup
            elif isinstance(sup.get("recording_id"), str):
                by_recording.setdefault(sup["recording_id"], []).append(sup)
    for recording in _records(source, "recordings"):
        if isinstance(recording, Reject):
            yield recording
            continue
        yield _clip(source, recording["id"], recording, by_recording.get(recording["id"], []), None)

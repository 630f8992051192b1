"""``kind: score``: symbolic music (MIDI, MusicXML, Humdrum, ABC) from a folder or music21's corpus.

Listing is cheap and reads no score but ABC files (to count their tunes): one clip per score, per ABC tune
and per render (``renders: N`` gives N instrumentations of each). Parsing, labels and synthesis happen in
the probe, one clip at a time on whichever worker holds it, so a folder of 100,000 MIDI files is never
parsed in one place. A clip's ``synth`` says which tune and render it is; the probe completes it into the
recipe its audio is rendered from (see ``mixtape.sources.score.recipe``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePosixPath

from mixtape import storage
from mixtape.labels import empty_labels
from mixtape.records import Clip, Reject
from mixtape.sources.common import audio_files, clip, reject, unselected_audio
from mixtape.sources.score.formats import MAX_SCORE_BYTES, abc_tunes, score_format
from mixtape.sources.score.recipe import CORPUS_LICENCE, collection_classes
from mixtape.spec import SourceSpec


def score_files(source: SourceSpec) -> list[tuple[str, list[str]]]:
    """(collection, score files as paths relative to the source's root, sorted) for each corpus
    collection the source names, or ("", every score file) for a folder."""
    if source.options.get("corpus"):
        return [(c, [f"{c}/{f}" for f in audio_files(storage.join(source.root, c), source.extensions)])
                for c in source.options["corpus"]]
    return [("", audio_files(source.root, source.extensions))]


def _tunes(source: SourceSpec, rel: str) -> int:
    """How many clips a file gives before renders: its tunes when it is ABC, else one."""
    if score_format(rel) != "abc":
        return 1
    with storage.open_url(storage.join(source.root, rel)) as f:
        data = f.read(MAX_SCORE_BYTES + 1)
    if len(data) > MAX_SCORE_BYTES:
        return 1  # the probe rejects it, with the reason
    return len(abc_tunes(data))


def list_score(source: SourceSpec) -> Iterator[Clip | Reject]:
    """Clips of every piece (a score, or a tune of an ABC file) times ``renders``; ``limit`` keeps the first
    that many pieces of each collection (of the folder)."""
    if not source.options.get("corpus"):
        yield from unselected_audio(source, source.root)
    renders = int(source.options.get("renders") or 1)
    limit = int(source.options.get("limit") or 0)
    for collection, files in score_files(source):
        pieces = 0
        for rel in files:
            if limit and pieces >= limit:
                break
            fmt = score_format(rel)
            if fmt is None:
                yield reject(source, rel, rel, "not_selected", f"{rel}: not a score format mixtape reads")
                continue
            try:
                tunes = _tunes(source, rel)
            except OSError as e:
                yield reject(source, rel, rel, "unreadable", f"{rel}: {e.strerror or e}")
                continue
            classes = collection_classes(source, collection)
            for tune in range(min(tunes, limit - pieces) if limit else tunes):
                pieces += 1
                piece = rel if tunes == 1 else f"{rel}#{tune + 1}"
                for r in range(renders):
                    labels = empty_labels()
                    labels["classes"].update(classes)
                    yield clip(source, piece if renders == 1 else f"{piece}~{r + 1}", rel, labels=labels,
                               source_id=piece, title=PurePosixPath(rel).stem + ("" if tunes == 1 else f" #{tune + 1}"),
                               artist=classes.get("composer", ""),
                               licence=source.options.get("licence") or (CORPUS_LICENCE if collection else ""),
                               synth={"format": fmt, "tune": tune, "render": r})

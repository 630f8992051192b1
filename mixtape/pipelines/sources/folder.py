"""``kind: folder``: every audio file under a directory, optionally labelled by its parent folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePosixPath

from mixtape import storage
from mixtape.labels import empty_labels
from mixtape.records import Clip, Reject
from mixtape.spec import SourceSpec


def list_folder(source: SourceSpec) -> Iterator[Clip | Reject]:
    if not storage.exists(source.root):
        yield Reject(f"folder:{source.path}", source.path, "source", "missing_source",
                     f"source folder {source.root} does not exist")
        return
    for rel in storage.list_files(source.root):
        p = PurePosixPath(rel)
        if p.suffix.lower().lstrip(".") not in source.extensions or p.name.startswith("."):
            continue
        labels = empty_labels()
        if source.class_field and len(p.parts) > 1:
            labels["classes"][source.class_field] = p.parts[-2]
        yield Clip(clip_id=f"folder:{rel}", uri=storage.join(source.root, rel), relpath=rel,
                   source="folder", title=p.stem, labels=labels)

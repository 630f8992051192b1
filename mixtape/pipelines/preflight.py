"""Checks a build makes before it launches anything: the output folder can be written, every source folder
and folder option exists, and score sources have a synthesiser, a SoundFont and real corpus collections."""

from __future__ import annotations

import os
import uuid

from mixtape import storage
from mixtape.dataset.names import CARD_NAME
from mixtape.pipelines.errors import BuildError
from mixtape.spec import DatasetSpec


def check_writable(out_dir: str) -> None:
    """A folder that cannot be written fails here, with one message, before any work is done."""
    if storage.is_remote(out_dir):
        return
    try:
        os.makedirs(out_dir, exist_ok=True)
        probe = os.path.join(out_dir, f".tmp-{uuid.uuid4().hex}-{CARD_NAME}")
        with open(probe, "xb") as f:
            f.write(b"mixtape")
        os.remove(probe)  # ok: the probe file created just above
    except OSError as e:
        raise BuildError(f"cannot write to the output folder {out_dir}: {e.strerror or e}; choose another --out "
                         "or fix its permissions") from None


def source_folders(spec: DatasetSpec) -> list[tuple[str, str]]:
    """(where in the spec, folder) of every source folder and folder option: what a build only reads."""
    out = []
    for i, src in enumerate(spec.sources):
        out.append((f"sources[{i}].path", src.root))
        for key, value in src.resolved.items():
            for path in value if isinstance(value, list) else [value]:
                out.append((f"sources[{i}].{key}", path))
    return out


def check_scores(spec: DatasetSpec) -> None:
    """A score source needs the synthesiser, a usable SoundFont and, for `corpus`, collections that exist."""
    from mixtape.sources.score.synth import SynthError, check_synthesiser, open_soundfont

    for i, src in enumerate(spec.sources):
        if src.kind != "score":
            continue
        missing = check_synthesiser()
        if missing:
            raise BuildError(f"sources[{i}]: {missing}")
        try:
            open_soundfont(src.opt("soundfont"))
        except SynthError as e:
            raise BuildError(f"sources[{i}].soundfont: {e}; give an sf2 / sf3 file, or leave `soundfont` out "
                             "for the built-in General MIDI set") from None
        for name in src.options.get("corpus") or []:
            if not os.path.isdir(os.path.join(src.root, name)) or name.startswith((".", "_")) or "/" in name:
                known = sorted(d for d in os.listdir(src.root) if os.path.isdir(os.path.join(src.root, d))
                               and not d.startswith(("_", ".")))
                raise BuildError(f"sources[{i}].corpus: music21's corpus has no collection {name!r}; it has "
                                 f"{', '.join(known)}")


def check_sources(spec: DatasetSpec) -> None:
    """Fail before launching anything if a local source folder is missing: that is a config error."""
    check_scores(spec)
    for i, src in enumerate(spec.sources):
        if not storage.is_remote(src.root) and not os.path.exists(src.root):
            raise BuildError(f"sources[{i}].path: {src.root} does not exist; fix the path (relative paths "
                             "are resolved against the spec file's folder)")
        for key, value in src.resolved.items():
            for path in value if isinstance(value, list) else [value]:
                if not storage.is_remote(path) and not os.path.exists(path):
                    raise BuildError(f"sources[{i}].{key}: {path} does not exist (paths in a source are "
                                     f"relative to its `path`, {src.root})")

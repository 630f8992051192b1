"""``kind: freesound_pack``: packs as Freesound's "download pack" gives them.

Each pack folder holds ``_readme_and_license.txt`` (the uploader, the pack URL, the licence in prose with
its deed URL, and one ``* <id>__<user>__<slug>.<ext>`` entry per sound with its URL and licence name) and
the sound files named the same way. ``path`` may hold several pack folders. Sounds listed but absent are
rejected (missing_audio); files in a pack folder that the readme does not list still enter, with the
pack's licence and the id and user their name carries.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from mixtape import storage
from mixtape.labels import empty_labels
from mixtape.records import Clip, Reject
from mixtape.sources.common import audio_files, clip, is_junk, read_text, reject, unselected_audio
from mixtape.sources.freesound.dump import freesound_url
from mixtape.spec import SourceSpec

README = "_readme_and_license.txt"
FILE_NAME = re.compile(r"^([0-9]{1,18})__(.+?)__(.+)\.([A-Za-z0-9]+)$")


@dataclass
class PackReadme:
    user: str = ""
    pack_url: str = ""
    licence_name: str = ""
    licence_url: str = ""
    #: file name -> {"url": ..., "license": ...}
    sounds: dict[str, dict[str, str]] = field(default_factory=dict)


def parse_readme(text: str) -> PackReadme:
    out = PackReadme()
    current = None
    section = ""
    for raw in text.splitlines():
        line = raw.rstrip()
        s = line.strip()
        if s.startswith("- ") and "(" in s and not out.user:
            out.user = s[2:].split("(")[0].strip()
        elif s.lower().startswith("you can find this pack online at:"):
            out.pack_url = s.split(":", 1)[1].strip()
        elif s.lower().startswith("license details"):
            section = "licence"
        elif s.lower().startswith("sounds in this pack"):
            section = "sounds"
        elif section == "licence" and ": http" in s:
            out.licence_name, out.licence_url = (p.strip() for p in s.split(": ", 1))
        elif section == "sounds" and s.startswith("* "):
            item = s[2:].strip()
            if line.startswith("    ") and current is not None and ":" in item:  # "* url: …" under a sound
                key, value = (p.strip() for p in item.split(":", 1))
                out.sounds[current][key.lower()] = value
            else:
                current = item
                out.sounds[current] = {}
    return out


def _pack_id(url: str) -> str:
    m = re.search(r"/packs/(\d+)", url)
    return m.group(1) if m else url


def list_freesound_pack(source: SourceSpec) -> Iterator[Clip | Reject]:
    all_files = storage.list_files(source.root)
    readmes = sorted(r for r in all_files if PurePosixPath(r).name == README and not is_junk(r))
    if not readmes:
        yield reject(source, source.path, source.path, "missing_metadata", f"no {README} under {source.root}")
        return
    yield from unselected_audio(source, source.root, all_files)
    listed: set[str] = set()
    for readme_rel in readmes:
        folder = str(PurePosixPath(readme_rel).parent)
        folder = "" if folder == "." else folder
        info = parse_readme(read_text(storage.join(source.root, readme_rel)))
        present = {PurePosixPath(rel).name: (f"{folder}/{rel}" if folder else rel)
                   for rel in audio_files(storage.join(source.root, folder) if folder else source.root,
                                          source.extensions) if "/" not in rel}
        listed.update(present.values())
        for name in sorted(set(info.sounds) | set(present)):
            m = FILE_NAME.match(name)
            rel = present.get(name)
            if m is None:
                yield reject(source, rel or name, rel or name, "bad_metadata",
                             f"{name!r} is not named <id>__<user>__<slug>.<ext>")
                continue
            sid, user, slug = m.group(1), m.group(2), m.group(3)
            if rel is None:
                yield reject(source, sid, f"{folder}/{name}" if folder else name, "missing_audio",
                             f"listed in {readme_rel} but not in the pack folder")
                continue
            entry = info.sounds.get(name, {})
            name_licence = entry.get("license", "")
            licence = info.licence_url if (not name_licence or name_licence == info.licence_name) else name_licence
            user = info.user or user
            yield clip(source, sid, rel, title=slug, uploader=user, pack=_pack_id(info.pack_url), source_id=sid,
                       licence=licence, url=entry.get("url") or freesound_url(int(sid), user), labels=empty_labels())
    for rel in audio_files(source.root, source.extensions, all_files):
        if rel not in listed:
            yield reject(source, rel, rel, "no_metadata", f"not in a pack folder (no {README} beside it), so its "
                         "licence is unknown")

"""Metadata tags read from audio files (ID3, Vorbis comments, FLAC, MP4), with mutagen.

The one that joins audio to AcousticBrainz is the MusicBrainz recording id, which tagging tools (Picard)
write as "MusicBrainz Track Id": Vorbis/FLAC ``MUSICBRAINZ_TRACKID``, ID3 ``UFID:http://musicbrainz.org``
(or ``TXXX:MusicBrainz Track Id``), MP4 ``----:com.apple.iTunes:MusicBrainz Track Id``.
"""

from __future__ import annotations

import io
import re
from typing import Any

import mutagen

MBID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

_FIELDS = {
    "mbid": ("musicbrainz_trackid", "UFID:http://musicbrainz.org", "TXXX:MusicBrainz Track Id",
             "----:com.apple.iTunes:MusicBrainz Track Id"),
    "release_group": ("musicbrainz_releasegroupid", "TXXX:MusicBrainz Release Group Id",
                      "----:com.apple.iTunes:MusicBrainz Release Group Id"),
    "title": ("title", "TIT2", "\xa9nam"),
    "artist": ("artist", "TPE1", "\xa9ART"),
    "album": ("album", "TALB", "\xa9alb"),
    "genre": ("genre", "TCON", "\xa9gen"),
}


def is_mbid(value: str) -> bool:
    return isinstance(value, str) and bool(MBID.match(value.strip().lower()))


def _text(value: Any) -> str:
    if isinstance(value, list):
        value = value[0] if value else ""
    if hasattr(value, "data") and isinstance(value.data, bytes):  # ID3 UFID
        return value.data.decode("utf-8", "replace")
    if hasattr(value, "text"):  # ID3 text frames
        return _text(value.text)
    if isinstance(value, bytes):  # MP4 freeform
        return value.decode("utf-8", "replace")
    return str(value)


def read_tags(source: bytes | str) -> dict[str, str]:
    """The tags above that a file carries (keys of ``_FIELDS``); empty when it has none or is not audio.

    ``source`` is the file's bytes, or a URI: of a local file mutagen reads only the tag blocks (not the
    audio the probe will read anyway), and only if it is a regular file; other URIs are fetched whole.
    """
    from mixtape import storage

    handle = None
    try:
        if isinstance(source, str) and not storage.is_remote(source):
            # opened by mixtape, which refuses FIFOs and devices without blocking; mutagen reads the tags only
            handle = target = storage.open_local(source)
        elif isinstance(source, str):
            target = io.BytesIO(storage.read_bytes(source))
        else:
            target = io.BytesIO(source)
        f = mutagen.File(target)
    except Exception:  # mutagen raises many types on junk and unreadable files; tags are optional
        return {}
    finally:
        if handle is not None:
            handle.close()
    if f is None or f.tags is None:
        return {}
    tags = f.tags
    keys = {str(k).lower(): k for k in tags.keys()}
    out = {}
    for name, candidates in _FIELDS.items():
        for c in candidates:
            k = keys.get(c.lower())
            if k is not None:
                text = _text(tags[k]).strip()
                if text:
                    out[name] = text
                    break
    return out

"""Typed labels: normalisation, extraction from AcousticBrainz documents, and vocabularies.

A label mapping has fixed fields so transforms know how to change them:
``tags`` (multi-label list), ``classes`` (single-label fields such as genre), ``key`` ({tonic, mode} or None),
``tempo`` (BPM or None) and ``extra`` (free-form, e.g. AcousticBrainz descriptors).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

#: One spelling per pitch class (Essentia's), so "A#" and "Bb" are the same key label.
TONICS = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_ALIASES = {"Db": "C#", "D#": "Eb", "Gb": "F#", "G#": "Ab", "A#": "Bb", "Cb": "B", "B#": "C", "E#": "F",
            "Fb": "E"}
MODES = ("major", "minor")
_TAG_CLEAN = re.compile(r"[^\w+#&./'-]+", re.UNICODE)


def empty_labels() -> dict[str, Any]:
    return {"tags": [], "classes": {}, "key": None, "tempo": None, "extra": {}}


def normalise_tags(tags: Iterable[str]) -> list[str]:
    """Lower-case, trimmed, de-duplicated and sorted (Freesound tags repeat with different case)."""
    out = set()
    for t in tags:
        if not isinstance(t, str):
            continue
        cleaned = _TAG_CLEAN.sub("-", t.strip().lower()).strip("-")
        if cleaned:
            out.add(cleaned)
    return sorted(out)


def normalise_key(tonic: str, mode: str) -> dict[str, str] | None:
    """A key label in the normalised spelling, or None when either part is not a key."""
    if not isinstance(tonic, str) or not isinstance(mode, str):
        return None
    t = tonic.strip()
    t = t[:1].upper() + t[1:].replace("♯", "#").replace("♭", "b")
    t = _ALIASES.get(t, t)
    m = mode.strip().lower()
    if t not in TONICS or m not in MODES:
        return None
    return {"tonic": t, "mode": m}


def key_name(key: Mapping[str, str] | None) -> str:
    return f"{key['tonic']} {key['mode']}" if key else ""


def key_vocabulary() -> list[str]:
    """All 24 major/minor keys: a fixed vocabulary so every dataset encodes keys the same way."""
    return [f"{t} {m}" for m in MODES for t in TONICS]


#: Scalar AcousticBrainz low-level descriptors kept with the labels (as measured on the original audio).
DESCRIPTORS = (("lowlevel", "average_loudness"), ("lowlevel", "dynamic_complexity"), ("tonal", "tuning_frequency"),
               ("tonal", "key_strength"), ("rhythm", "danceability"), ("rhythm", "onset_rate"))


#: AcousticBrainz high-level genre models answer in codes; their names, so that `jaz` from a model and `jazz`
#: from a folder are one class. The codes stay in ``labels.extra.acousticbrainz_genre_codes``.
GENRE_CODES: dict[str, dict[str, str]] = {
    "genre_rosamerica": {"cla": "classical", "dan": "dance", "hip": "hiphop", "jaz": "jazz", "pop": "pop",
                         "rhy": "rnb", "roc": "rock", "spe": "speech"},
    "genre_tzanetakis": {"blu": "blues", "cla": "classical", "cou": "country", "dis": "disco", "hip": "hiphop",
                         "jaz": "jazz", "met": "metal", "pop": "pop", "reg": "reggae", "roc": "rock"},
    "genre_electronic": {"amb": "ambient", "dnb": "drumandbass", "hou": "house", "tec": "techno", "tra": "trance"},
}


def labels_from_acousticbrainz(lowlevel: Mapping[str, Any] | None, highlevel: Mapping[str, Any] | None,
                               threshold: float = 0.0, moods: bool = True) -> dict[str, Any]:
    """Key, tempo, genre and moods from AcousticBrainz low- and high-level documents (either may be missing).

    High-level classifiers count only when their probability reaches ``threshold``. ``genre_<model>``
    becomes class field ``genre_<model>``; the ``genre_rosamerica`` model (or the only genre model present)
    also fills plain ``genre``. Binary mood classifiers (``mood_happy`` = "happy" / "not_happy") add their
    positive value as a tag.
    """
    labels = empty_labels()
    if lowlevel:
        tonal = lowlevel.get("tonal") or {}
        labels["key"] = normalise_key(tonal.get("key_key", ""), tonal.get("key_scale", ""))
        bpm = (lowlevel.get("rhythm") or {}).get("bpm")
        if isinstance(bpm, (int, float)) and not isinstance(bpm, bool) and 0 < bpm < 1000:
            labels["tempo"] = round(float(bpm), 3)
        descriptors = {}
        for section, name in DESCRIPTORS:
            value = (lowlevel.get(section) or {}).get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                descriptors[f"{section}.{name}"] = round(float(value), 6)
        if descriptors:  # values measured on the original audio: any augmentation makes them stale
            labels["extra"]["acousticbrainz_descriptors"] = descriptors
    if highlevel:
        models = highlevel.get("highlevel", highlevel)
        confident = {name: v["value"] for name, v in sorted(models.items())
                     if isinstance(v, Mapping) and isinstance(v.get("value"), str)
                     and float(v.get("probability", 1.0)) >= threshold}
        codes = {k: v for k, v in confident.items() if k.startswith("genre_")}
        genres = {k: GENRE_CODES.get(k, {}).get(v, v) for k, v in codes.items()}
        if any(genres[k] != codes[k] for k in codes):
            labels["extra"]["acousticbrainz_genre_codes"] = {k: v for k, v in codes.items() if genres[k] != v}
        labels["classes"].update(genres)
        main = genres.get("genre_rosamerica") or (next(iter(genres.values())) if len(genres) == 1 else None)
        if main:
            labels["classes"]["genre"] = main
        if moods:
            labels["tags"] = normalise_tags(v for k, v in confident.items()
                                            if k.startswith("mood_") and not v.startswith("not_"))
    return labels


def merge_labels(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Labels from two sources of one clip: tags union, and the second source fills what the first lacks."""
    out = empty_labels()
    out["tags"] = normalise_tags([*base.get("tags", []), *extra.get("tags", [])])
    out["classes"] = {**extra.get("classes", {}), **base.get("classes", {})}
    out["key"] = base.get("key") or extra.get("key")
    out["tempo"] = base.get("tempo") if base.get("tempo") is not None else extra.get("tempo")
    out["extra"] = {**extra.get("extra", {}), **base.get("extra", {})}
    return out


def build_vocabularies(clip_labels: Iterable[Mapping[str, Any]], tag_min_count: int) -> dict[str, Any]:
    """Vocabularies over the clips used: tags seen in at least ``tag_min_count`` clips, values per class
    field, and the fixed 24-key list. Sorted, so they do not depend on the order clips arrive in."""
    tag_counts: Counter[str] = Counter()
    classes: dict[str, set[str]] = {}
    for labels in clip_labels:
        tag_counts.update(set(labels.get("tags", [])))
        for fieldname, value in labels.get("classes", {}).items():
            classes.setdefault(fieldname, set()).add(value)
    return {
        "tags": sorted(t for t, c in tag_counts.items() if c >= tag_min_count),
        "tag_counts": {t: c for t, c in sorted(tag_counts.items()) if c >= tag_min_count},
        "classes": {f: sorted(v) for f, v in sorted(classes.items())},
        "key": key_vocabulary(),
    }


def map_values(labels: Mapping[str, Any], value_map: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
    """Labels with the spec's ``labels.map`` applied: class values (and tags, under ``tags``) renamed."""
    if not value_map:
        return dict(labels)
    out = dict(labels)
    out["classes"] = {f: value_map.get(f, {}).get(v, v) for f, v in (labels.get("classes") or {}).items()}
    if "tags" in value_map:
        out["tags"] = normalise_tags(value_map["tags"].get(t, t) for t in labels.get("tags") or [])
    return out

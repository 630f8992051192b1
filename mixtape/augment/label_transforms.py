"""How labels change with the audio: transposition, time scaling, windowing, mixing, staleness.

Time-stamped labels (``chords``, ``events``) are lists of ``{"start": s, "end": s, "label": …}`` in seconds
from the start of the clip (or, in a sample, of its window). Chords use Harte-style labels (``C:maj``,
``A:min7``, ``Bb:7/3``, ``N`` for no chord); a bass given as a note name (``C/G``) is transposed too.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from mixtape.labels import TONICS, normalise_key

Labels = dict[str, Any]
_ROOT = re.compile(r"^([A-Ga-g])([#b♯♭]*)")
_NOTE_INDEX = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def note_index(name: str) -> int | None:
    m = _ROOT.match(name)
    if not m:
        return None
    shift = sum(1 if c in "#♯" else -1 for c in m.group(2))
    return (_NOTE_INDEX[m.group(1).upper()] + shift) % 12


def transpose_note(name: str, semitones: int) -> str:
    """A note name moved by whole semitones, in the normalised spelling (``A# + 0 -> Bb``)."""
    idx = note_index(name)
    if idx is None:
        return name
    return TONICS[(idx + semitones) % 12]


def transpose_key(key: dict[str, str] | None, semitones: int) -> dict[str, str] | None:
    if not key:
        return key
    return normalise_key(transpose_note(key["tonic"], semitones), key["mode"])


def transpose_chord(label: str, semitones: int) -> str:
    m = _ROOT.match(label)
    if label in ("N", "X", "") or m is None:
        return label
    rest = label[m.end():]
    root = transpose_note(label[: m.end()], semitones)
    if "/" in rest:
        quality, bass = rest.split("/", 1)
        if _ROOT.fullmatch(bass):
            bass = transpose_note(bass, semitones)
        rest = f"{quality}/{bass}"
    return root + rest


#: label fields that are lists of ``{"start", "end", ...}`` items in seconds
TIMED_FIELDS = ("chords", "events", "notes")


def _timed(labels: Labels) -> list[str]:
    return [f for f in TIMED_FIELDS if labels.get(f)]


def window(labels: Labels, start_s: float, duration_s: float) -> Labels:
    """Labels of a window of the clip: global labels propagate; time-stamped ones are cut to the window
    and re-based to its start (an instrumental bridge does not inherit "vocals")."""
    if not _timed(labels):
        return labels
    out = copy.deepcopy(labels)
    end_s = start_s + duration_s
    for f in _timed(labels):
        out[f] = [{**item, "start": round(max(item["start"], start_s) - start_s, 6),
                   "end": round(min(item["end"], end_s) - start_s, 6)}
                  for item in labels[f] if item["end"] > start_s and item["start"] < end_s]
    return out


def pitch_shift_labels(labels: Labels, semitones: float) -> Labels:
    """Keys and chords move by the interval; a non-integer shift leaves them between keys, so stale."""
    out = copy.deepcopy(labels)
    if float(semitones).is_integer():
        n = int(semitones)
        out["key"] = transpose_key(labels.get("key"), n)
        if labels.get("chords"):
            out["chords"] = [{**c, "label": transpose_chord(c["label"], n)} for c in labels["chords"]]
        if labels.get("notes"):
            out["notes"] = [{**x, "pitch": x["pitch"] + n} for x in labels["notes"]]
    else:
        out = mark_stale(out, [f for f in ("key", "chords", "notes") if labels.get(f)])
    return out


def time_stretch_labels(labels: Labels, rate: float) -> Labels:
    """Tempo times the rate; every time divided by it."""
    out = copy.deepcopy(labels)
    if labels.get("tempo") is not None:
        out["tempo"] = round(float(labels["tempo"]) * rate, 3)
    for f in _timed(labels):
        out[f] = [{**item, "start": round(item["start"] / rate, 6), "end": round(item["end"] / rate, 6)}
                  for item in labels[f]]
    return out


def speed_labels(labels: Labels, semitones: int) -> Labels:
    """Speed perturbation: keys and chords move by the whole interval, tempo times ``2 ** (semitones / 12)``
    and every time divided by it (the audio is resampled: both change together)."""
    return time_stretch_labels(pitch_shift_labels(labels, semitones), 2.0 ** (semitones / 12.0))


def energy_share(snr_db: float) -> float:
    """The primary's share of the mixture's energy at a given SNR (primary over partner)."""
    return 1.0 / (1.0 + 10.0 ** (-snr_db / 10.0))


def mix_labels(primary: Labels, partner: Labels, snr_db: float, mode: str = "union",
               key_tempo: str = "dominant") -> Labels:
    """Tags: the union (``mode: union``) and, with ``mode: soft``, ``soft_tags`` weighted by each source's
    energy share. Key and tempo: the dominant source's (``key_tempo: dominant``) or none (``clear``).
    Time-stamped labels of both sources are kept (the partner's start at its offset)."""
    out = copy.deepcopy(primary)
    share = energy_share(snr_db)
    out["tags"] = sorted(set(primary.get("tags", [])) | set(partner.get("tags", [])))
    if mode == "soft":
        weights: dict[str, float] = {}
        for t in primary.get("tags", []):
            weights[t] = max(weights.get(t, 0.0), share)
        for t in partner.get("tags", []):
            weights[t] = max(weights.get(t, 0.0), 1.0 - share)
        out["soft_tags"] = {t: round(w, 4) for t, w in sorted(weights.items())}
    dominant = primary if share >= 0.5 else partner
    for f in ("key", "tempo"):
        out[f] = copy.deepcopy(dominant.get(f)) if key_tempo == "dominant" else None
    if share < 0.5 and key_tempo == "dominant":
        out["classes"] = {**primary.get("classes", {}), **partner.get("classes", {})}
    for f in TIMED_FIELDS:
        items = (primary.get(f) or []) + (partner.get(f) or [])
        if items:
            out[f] = sorted(items, key=lambda i: (i["start"], i["end"], str(i.get("label", i.get("pitch")))))
    return out


def mark_stale(labels: Labels, fields: list[str]) -> Labels:
    if not fields:
        return labels
    out = dict(labels)
    out["stale"] = sorted(set(labels.get("stale", [])) | set(fields))
    return out

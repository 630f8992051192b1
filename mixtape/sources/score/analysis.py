"""Labels a score knows: its key (by analysis, beside the key signature it states), its chords as
time-stamped Harte labels, and its instruments as General MIDI names and families.

All pure functions of a performance, the same for every input format, so a MIDI file and the MusicXML of
the same piece get the same labels.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from mixtape.labels import TONICS
from mixtape.sources.score.performance import Note, Performance

#: Aarden's key profiles from the Essen folksong collection (major, minor), tonic first: the weights
#: music21 also defaults to, and better than Krumhansl-Kessler's at not mistaking the dominant for the key
#: on chorales (the first 40 Bach chorales of the corpus: all 40 agree with music21's analysis; Krumhansl-Kessler: 29).
AARDEN_MAJOR = (17.7661, 0.145624, 14.9265, 0.160186, 19.8049, 11.3587, 0.291248, 22.062, 0.145624, 8.15494,
                0.232998, 4.95122)
AARDEN_MINOR = (18.2648, 0.737619, 14.0499, 16.8599, 0.702494, 14.4362, 0.702494, 18.6161, 4.56621, 1.93186,
                7.37619, 1.75623)
KEY_METHOD = "aarden-essen profile correlation, duration-weighted pitch classes"

#: Harte shorthands by their intervals above the root; earlier entries win ties (triads before sevenths).
CHORD_TEMPLATES: tuple[tuple[str, frozenset[int]], ...] = (
    ("maj", frozenset({0, 4, 7})), ("min", frozenset({0, 3, 7})), ("dim", frozenset({0, 3, 6})),
    ("aug", frozenset({0, 4, 8})), ("7", frozenset({0, 4, 7, 10})), ("maj7", frozenset({0, 4, 7, 11})),
    ("min7", frozenset({0, 3, 7, 10})), ("hdim7", frozenset({0, 3, 6, 10})), ("dim7", frozenset({0, 3, 6, 9})),
    ("sus4", frozenset({0, 5, 7})), ("sus2", frozenset({0, 2, 7})),
)
#: Harte's degree names for a bass note by its interval above the root
BASS_DEGREES = ("1", "b2", "2", "b3", "3", "4", "b5", "5", "b6", "6", "b7", "7")
#: chord segments shorter than this (passing notes between two onsets) join their neighbour
MIN_CHORD_SECONDS = 0.12


def key_profile_scores(pitched: Sequence[Note]) -> np.ndarray:
    """Correlation of the duration-weighted pitch-class histogram with each of the 24 key profiles
    (index: mode * 12 + tonic, mode 0 major, 1 minor)."""
    hist = np.zeros(12)
    for n in pitched:
        hist[n.pitch % 12] += n.end - n.start
    scores = np.zeros(24)
    if not hist.any() or np.allclose(hist, hist[0]):
        return scores
    for m, profile in enumerate((AARDEN_MAJOR, AARDEN_MINOR)):
        p = np.asarray(profile)
        for tonic in range(12):
            scores[m * 12 + tonic] = float(np.corrcoef(hist, np.roll(p, tonic))[0, 1])
    return scores


def estimate_key(pitched: Sequence[Note]) -> tuple[dict[str, str] | None, float]:
    """({tonic, mode}, correlation) of the best-matching key, or (None, 0) without pitched notes."""
    scores = key_profile_scores(pitched)
    if not scores.any():
        return None, 0.0
    best = int(np.argmax(scores))
    return {"tonic": TONICS[best % 12], "mode": "minor" if best >= 12 else "major"}, round(float(scores[best]), 4)


#: every template on every root: (order, shorthand, root, pitch classes, triad pitch classes)
_ROTATIONS = tuple((order, name, root, frozenset((root + i) % 12 for i in template),
                    frozenset((root + i) % 12 for i in sorted(template)[:3]))
                   for order, (name, template) in enumerate(CHORD_TEMPLATES) for root in range(12))


def chord_label(pitches: Sequence[int]) -> str:
    """The Harte label of the pitches sounding together: the template (over every root) that covers most
    of them with fewest extras, with the bass as a degree when it is not the root; ``N`` for silence and
    ``X`` when no template has its root and another note of its triad among them."""
    if not pitches:
        return "N"
    classes = {p % 12 for p in pitches}
    bass = min(pitches) % 12
    best: tuple[float, int, int, str] | None = None
    for order, name, root, chord, triad in _ROTATIONS:
        # a label needs its root and another note of its triad sounding (a seventh alone names nothing)
        if root not in classes or len(classes & triad) < 2:
            continue
        hit, extra, missing = len(classes & chord), len(classes - chord), len(chord - classes)
        score = hit - 0.6 * extra - 0.4 * missing + (0.3 if root == bass else 0.0)
        if best is None or (score, -order, -root) > (best[0], -best[1], -best[2]):
            best = (score, order, root, name)
    if best is None:
        return "X"
    _, _, root, name = best
    label = f"{TONICS[root]}:{name}"
    return label if bass == root else f"{label}/{BASS_DEGREES[(bass - root) % 12]}"


def chords(perf: Performance) -> list[dict[str, object]]:
    """Time-stamped chord labels of the whole performance (a chordified reduction: every change of the
    sounding pitch set starts a segment; segments too short to be harmony merge into the one before)."""
    pitched = perf.pitched()
    cuts = sorted({t for n in pitched for t in (n.start, n.end)})
    segments: list[dict[str, object]] = []
    for a, b in itertools.pairwise(cuts):
        sounding = [n.pitch for n in pitched if n.start < b and n.end > a]
        label = chord_label(sounding)
        if segments and (segments[-1]["label"] == label or b - a < MIN_CHORD_SECONDS):
            segments[-1]["end"] = round(b, 6)
        else:
            segments.append({"start": round(a, 6), "end": round(b, 6), "label": label})
    return segments


def gm_name(program: int) -> str:
    import pretty_midi

    return pretty_midi.program_to_instrument_name(program)


def gm_family(program: int) -> str:
    import pretty_midi

    return pretty_midi.program_to_instrument_class(program)


def gm_program(name: str | int) -> int | None:
    """A General MIDI program from its number (0-127) or its name, loosely spelled (``cello``,
    ``Acoustic Grand Piano``, ``acoustic_grand_piano``); None when it names none."""
    if isinstance(name, bool):
        return None
    if isinstance(name, int):
        return name if 0 <= name <= 127 else None
    import pretty_midi.constants

    wanted = _simple(name)
    for program, full in enumerate(pretty_midi.constants.INSTRUMENT_MAP):
        if _simple(full) == wanted:
            return program
    return None


def _simple(name: str) -> str:
    return "".join(c for c in name.lower() if c.isalnum())

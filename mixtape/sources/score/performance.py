"""A score as the synthesiser plays it: parts (name, program, drums) and notes in seconds.

Every symbolic format ends here, so the synthesiser, the labels and the stems all read one shape whatever
the file was (MIDI, MusicXML, Humdrum, ABC). A performance knows its tempo map only as note times: the
score's tempo (its first metronome mark, or the MIDI file's first tempo event) is kept as ``tempo`` with
``tempo_source`` saying where it came from, and :func:`retimed` moves every time to another tempo.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

#: A score without a tempo mark plays at this many quarter notes per minute (recorded as ``default``).
DEFAULT_TEMPO = 100.0


@dataclass(frozen=True)
class Part:
    """One voice or instrument of a score: the unit instrumentation is chosen for (and stems are made of)."""

    name: str
    #: the file's General MIDI program (0-127), or None when the file names none
    program: int | None = None
    is_drum: bool = False


@dataclass(frozen=True)
class Note:
    start: float
    end: float
    pitch: int
    velocity: int
    #: index into ``Performance.parts``
    part: int


@dataclass(frozen=True)
class Performance:
    parts: tuple[Part, ...]
    #: sorted by (start, part, pitch)
    notes: tuple[Note, ...]
    #: quarter notes per minute at the start of the score
    tempo: float = DEFAULT_TEMPO
    #: ``score`` (a tempo mark / tempo event in the file) or ``default`` (the file has none)
    tempo_source: str = "default"
    #: the first time signature, e.g. ``3/4`` ("" when the file has none)
    meter: str = ""
    #: the first key signature: sharps (negative: flats) and, when the file says, its mode
    key_signature: dict[str, Any] | None = None
    title: str = ""
    composer: str = ""
    #: the encoding's own rights statement, when it carries one
    rights: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        return max((n.end for n in self.notes), default=0.0)

    def pitched(self) -> list[Note]:
        """Notes of pitched parts (drum notes are instruments, not pitches)."""
        return [n for n in self.notes if not self.parts[n.part].is_drum]


def sort_notes(notes: list[Note]) -> tuple[Note, ...]:
    return tuple(sorted(notes, key=lambda n: (n.start, n.part, n.pitch, n.end, n.velocity)))


def retimed(perf: Performance, tempo: float) -> Performance:
    """The performance at another tempo: every time scaled by ``perf.tempo / tempo`` (tempo changes inside
    the score keep their proportions)."""
    k = perf.tempo / tempo
    notes = [replace(n, start=round(n.start * k, 9), end=round(n.end * k, 9)) for n in perf.notes]
    return replace(perf, notes=sort_notes(notes), tempo=tempo)


def excerpt(perf: Performance, seconds: float) -> Performance:
    """The first ``seconds`` of a performance: notes that start before then, cut off there."""
    notes = [replace(n, end=min(n.end, seconds)) for n in perf.notes if n.start < seconds]
    return replace(perf, notes=sort_notes(notes))  # parts silent in the excerpt keep their place

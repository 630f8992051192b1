"""Symbolic files to performances: MIDI (pretty_midi), MusicXML / compressed MusicXML, Humdrum ``**kern`` and
ABC (music21). Everything is parsed from bytes already read (and hashed) by the caller, never from a path
music21 would cache: music21's own file parser keeps pickles of what it parsed in a scratch folder and
reads them back, which mixtape must never do with files it did not write.

A multi-tune ABC file is split into its tunes here (the file header before the first ``X:`` line goes with
every tune), so each tune is parsed alone instead of the whole collection (a 554-tune Essen file takes
27 s to parse whole).
"""

from __future__ import annotations

import io
import re
import warnings
import zipfile
from pathlib import PurePosixPath
from typing import Any

from mixtape.labels import TONICS
from mixtape.sources.score.performance import DEFAULT_TEMPO, Note, Part, Performance, sort_notes
from mixtape.untrusted import show

#: extension -> format; the extensions a score source reads by default
SCORE_FORMATS = {"mid": "midi", "midi": "midi", "kar": "midi", "musicxml": "musicxml", "xml": "musicxml",
                 "mxl": "mxl", "krn": "humdrum", "abc": "abc"}
#: a score file larger than this is not a score (the largest Lakh MIDI files are a few MB)
MAX_SCORE_BYTES = 32 << 20
#: what a compressed MusicXML file may expand to
MAX_MXL_XML_BYTES = 64 << 20
_TUNE_START = re.compile(r"^X:", re.MULTILINE)


class ScoreError(ValueError):
    """A file that cannot be read as a score; ``reason`` is the reject code."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def score_format(relpath: str) -> str | None:
    return SCORE_FORMATS.get(PurePosixPath(relpath).suffix.lower().lstrip("."))


def _text(data: bytes) -> str:
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):  # UTF-16 with its BOM (several trecento MusicXML files)
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # older ABC and kern files are Latin-1; every byte decodes


def abc_tunes(data: bytes) -> list[str]:
    """The tunes of an ABC file, each with the file header prepended; one item for a single-tune file."""
    text = _text(data)
    starts = [m.start() for m in _TUNE_START.finditer(text)]
    if not starts:
        return [text]
    header = text[: starts[0]]
    ends = [*starts[1:], len(text)]
    return [header + text[a:b] for a, b in zip(starts, ends, strict=True)]


def _mxl_xml(data: bytes) -> str:
    """The score document of a compressed MusicXML file (its container names it), size-bounded."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            names = [n for n in z.namelist()
                     if not n.startswith("META-INF/") and n.lower().endswith((".xml", ".musicxml"))]
            root = None
            if "META-INF/container.xml" in z.namelist():
                m = re.search(rb'full-path="([^"]+)"', z.read("META-INF/container.xml")[:65536])
                root = m.group(1).decode("utf-8", "replace") if m else None
            name = root if root in z.namelist() else (names[0] if names else None)
            if name is None:
                raise ScoreError("bad_score", "the .mxl archive holds no MusicXML document")
            info = z.getinfo(name)
            if info.file_size > MAX_MXL_XML_BYTES:
                raise ScoreError("bad_score", f"the .mxl document expands to {info.file_size} bytes (more than "
                                 f"{MAX_MXL_XML_BYTES >> 20} MB)")
            with z.open(info) as f:
                return _text(f.read(MAX_MXL_XML_BYTES + 1))
    except (zipfile.BadZipFile, EOFError, OSError) as e:
        raise ScoreError("bad_score", f"not a readable .mxl archive: {show(e)}") from None


def read_performance(data: bytes, fmt: str, tune: int = 0) -> Performance:
    """The performance of a score file's bytes (``tune``: the 0-based tune of an ABC file)."""
    if len(data) > MAX_SCORE_BYTES:
        raise ScoreError("bad_score", f"{len(data)} bytes is larger than a score file can be "
                         f"({MAX_SCORE_BYTES >> 20} MB)")
    if not data.strip():
        raise ScoreError("empty_score", "the file is empty")
    if fmt == "midi":
        return _from_midi(data)
    if fmt == "abc":
        tunes = abc_tunes(data)
        if not 0 <= tune < len(tunes):
            raise ScoreError("bad_score", f"tune {tune + 1} asked for; the file holds {len(tunes)}")
        return _from_music21(tunes[tune], "abc")
    if fmt == "mxl":
        return _from_music21(_mxl_xml(data), "musicxml")
    if fmt in ("musicxml", "humdrum"):
        return _from_music21(_text(data), fmt)
    raise ScoreError("bad_score", f"unknown score format {show(fmt)}")


# ------------------------------------------------------------------------------------------------ MIDI


def _from_midi(data: bytes) -> Performance:
    import pretty_midi

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pretty_midi warns about odd-but-valid files (type 0, no tempo)
            pm = pretty_midi.PrettyMIDI(io.BytesIO(data))
    except Exception as e:  # mido raises OSError, EOFError, KeyError, ValueError... on broken files
        raise ScoreError("bad_score", f"not a readable MIDI file: {type(e).__name__}: {show(e)}") from None
    parts: list[Part] = []
    notes: list[Note] = []
    for inst in pm.instruments:
        if not inst.notes:
            continue
        index = len(parts)
        name = inst.name.strip() if isinstance(inst.name, str) and inst.name.strip() else f"part {index + 1}"
        parts.append(Part(name=show(name, 80), program=int(inst.program), is_drum=bool(inst.is_drum)))
        notes += [Note(round(float(n.start), 9), round(float(n.end), 9), int(n.pitch), int(n.velocity), index)
                  for n in inst.notes if n.end > n.start]
    _, tempi = pm.get_tempo_changes()
    tempo_source = "score" if _has_tempo_event(data) else "default"
    tempo = float(tempi[0]) if len(tempi) and tempo_source == "score" else 120.0  # MIDI's own default
    meter = (f"{pm.time_signature_changes[0].numerator}/{pm.time_signature_changes[0].denominator}"
             if pm.time_signature_changes else "")
    key_signature = None
    if pm.key_signature_changes:
        number = int(pm.key_signature_changes[0].key_number)  # 0-11 major, 12-23 minor, tonic pitch class
        key_signature = {"tonic": TONICS[number % 12], "mode": "minor" if number >= 12 else "major"}
    return Performance(parts=tuple(parts), notes=sort_notes(notes), tempo=round(tempo, 6),
                       tempo_source=tempo_source, meter=meter, key_signature=key_signature)


def _has_tempo_event(data: bytes) -> bool:
    """Whether the file sets a tempo (pretty_midi reports 120 BPM either way)."""
    import mido

    midi = mido.MidiFile(file=io.BytesIO(data))
    return any(msg.type == "set_tempo" for track in midi.tracks for msg in track)


# --------------------------------------------------------------------------------------------- music21


def _from_music21(text: str, fmt: str) -> Performance:
    from music21 import converter

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            score = converter.parseData(text, format=fmt, forceSource=True)
            if hasattr(score, "scores") and score.scores:  # an ABC tune parsed as an Opus of one
                score = score.scores[0]
            score.stripTies(inPlace=True)  # the parsed score is ours alone: no copy needed
            return _performance(score)
    except ScoreError:
        raise
    except RecursionError:
        raise ScoreError("bad_score", f"the {fmt} document is nested too deeply") from None
    except Exception as e:  # music21 raises many kinds (its own, ValueError, IndexError...) on bad input
        raise ScoreError("bad_score", f"not a readable {fmt} score: {type(e).__name__}: {show(e)}") from None


def _seconds_map(score: Any) -> tuple[list[tuple[float, float, float]], float, str]:
    """((start_ql, start_s, seconds per quarter) per tempo region, first tempo, tempo source)."""
    marks = list(score.flatten().getElementsByClass("MetronomeMark"))
    if not marks:
        return [(0.0, 0.0, 60.0 / DEFAULT_TEMPO)], DEFAULT_TEMPO, "default"
    regions, seconds = [], 0.0
    for start, end, mm in score.metronomeMarkBoundaries():
        bpm = float(mm.getQuarterBPM() or DEFAULT_TEMPO)
        regions.append((float(start), seconds, 60.0 / bpm))
        seconds += (float(end) - float(start)) * 60.0 / bpm
    first = 60.0 / regions[0][2]
    return regions, first, "score"


def _at(regions: list[tuple[float, float, float]], ql: float) -> float:
    current = regions[0]
    for r in regions:
        if r[0] <= ql:
            current = r
    return current[1] + (ql - current[0]) * current[2]


def _velocity(element: Any) -> int:
    v = getattr(getattr(element, "volume", None), "velocity", None)
    return int(v) if isinstance(v, (int, float)) and 0 < v <= 127 else 80


def _performance(score: Any) -> Performance:
    from music21 import instrument as m21instrument

    regions, tempo, tempo_source = _seconds_map(score)
    parts: list[Part] = []
    notes: list[Note] = []
    for p in getattr(score, "parts", None) or [score]:
        inst = p.getInstrument(returnDefault=False)
        program = inst.midiProgram if inst is not None and isinstance(inst.midiProgram, int) else None
        is_drum = isinstance(inst, m21instrument.UnpitchedPercussion)
        index = len(parts)
        found = []
        for el in p.flatten().notes:
            ql = float(el.quarterLength)
            if ql <= 0:
                continue  # grace notes: no duration of their own
            start, end = _at(regions, float(el.offset)), _at(regions, float(el.offset) + ql)
            pitches = [el.pitch] if hasattr(el, "pitch") else list(getattr(el, "pitches", []))
            found += [Note(round(start, 9), round(end, 9), int(pt.midi), _velocity(el), index)
                      for pt in pitches if 0 <= pt.midi <= 127]
        if found:
            name = (p.partName or p.id or f"part {index + 1}") if isinstance(p.partName or p.id, str) else ""
            parts.append(Part(name=show(str(name).strip() or f"part {index + 1}", 80), program=program,
                              is_drum=is_drum))
            notes += found
    flat = score.flatten()
    meters = list(flat.getElementsByClass("TimeSignature"))
    keys = list(flat.getElementsByClass("KeySignature"))
    key_signature = None
    if keys:
        k = keys[0]
        key_signature = {"sharps": int(k.sharps)}
        if getattr(k, "mode", None) in ("major", "minor"):
            key_signature.update(tonic=k.tonic.name.replace("-", "b"), mode=k.mode)
    md = score.metadata
    return Performance(
        parts=tuple(parts), notes=sort_notes(notes), tempo=round(tempo, 6), tempo_source=tempo_source,
        meter=meters[0].ratioString if meters else "", key_signature=key_signature,
        title=show(_title(md), 200),
        composer=show((md.composer or "") if md else "", 200),
        rights=show(str(md.copyright) if md is not None and md.copyright else "", 300))


def _title(md: Any) -> str:
    """The work's title; music21 fills the movement name with the file's name when a file has none."""
    if md is None:
        return ""
    for value in (md.title, md.movementName):
        if value and score_format(str(value)) is None:
            return str(value)
    return ""

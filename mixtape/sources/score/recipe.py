"""From a listed score to a clip: the recipe its audio is rendered from, and the labels the score knows.

A recipe is everything the audio is a pure function of besides the score's bytes: which tune, the program
of every part, the exact tempo, the synthesis rate and the SoundFont's sha256. The probe draws it once
(instrumentation and tempo from the clip-keyed generator) and records it in the clip, the plan and the
sample JSON; every later render (another worker, ``verify --rerender``, an incremental build) plays the
recorded recipe and must produce the same bytes, which the planned sha256 checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mixtape.hashing import rng_for
from mixtape.labels import empty_labels, normalise_key, normalise_tags
from mixtape.sources.score.analysis import KEY_METHOD, chords, estimate_key, gm_family, gm_name
from mixtape.sources.score.formats import ScoreError
from mixtape.sources.score.parsed import parsed_performance
from mixtape.sources.score.performance import Performance, excerpt, retimed
from mixtape.sources.score.synth import (
    BUILTIN_LICENCE,
    BUILTIN_SOUNDFONT,
    SoundFont,
    encode_render,
    open_soundfont,
    synthesise,
    synthesiser_version,
)

#: Instrumentations drawn for one piece before a repeat is accepted (the lists allow fewer than asked).
MAX_DRAWS = 200
#: How the music21 corpus states its terms (its corpus/license.txt), as a clip's licence.
CORPUS_LICENCE = ("music21 corpus encoding, licensed for use with the corpus; commercial use may be restricted "
                  "(see music21/corpus/license.txt and the file's own rights statement)")
#: music21 corpus collections: (composer, genre). The genre is the style or period (baroque, folk...), the
#: class the trainer's ``genre`` task reads. Collections not listed get their folder name as composer.
COLLECTIONS: dict[str, tuple[str, str]] = {
    "bach": ("Johann Sebastian Bach", "baroque"), "handel": ("George Frideric Handel", "baroque"),
    "corelli": ("Arcangelo Corelli", "baroque"), "cpebach": ("Carl Philipp Emanuel Bach", "classical"),
    "palestrina": ("Giovanni Pierluigi da Palestrina", "renaissance"), "josquin": ("Josquin des Prez", "renaissance"),
    "monteverdi": ("Claudio Monteverdi", "renaissance"), "trecento": ("various (trecento)", "medieval"),
    "ciconia": ("Johannes Ciconia", "medieval"), "luca": ("Gloria: Luca", "medieval"),
    "beethoven": ("Ludwig van Beethoven", "classical"), "mozart": ("Wolfgang Amadeus Mozart", "classical"),
    "haydn": ("Joseph Haydn", "classical"), "schubert": ("Franz Schubert", "romantic"),
    "schumann_robert": ("Robert Schumann", "romantic"), "schumann_clara": ("Clara Schumann", "romantic"),
    "chopin": ("Frédéric Chopin", "romantic"), "weber": ("Carl Maria von Weber", "romantic"),
    "verdi": ("Giuseppe Verdi", "romantic"), "beach": ("Amy Beach", "romantic"),
    "joplin": ("Scott Joplin", "ragtime"), "schoenberg": ("Arnold Schoenberg", "modern"),
    "webern": ("Anton Webern", "modern"), "essenFolksong": ("traditional", "folk"),
    "oneills1850": ("traditional", "folk"), "ryansMammoth": ("traditional", "folk"),
    "airdsAirs": ("traditional", "folk"), "miscFolk": ("traditional", "folk"),
    "nottingham-dataset": ("traditional", "folk"),
}


def collection_classes(source: Any, collection: str) -> dict[str, str]:
    """composer / genre / collection classes of a listed score: the source's options first, then what the
    corpus collection is known to be."""
    composer, genre = COLLECTIONS.get(collection, (collection, ""))
    out = {"collection": collection} if collection else {}
    composer = source.options.get("composer") or composer
    genre = source.options.get("genre") or genre
    if composer:
        out["composer"] = composer
    if genre:
        out["genre"] = genre
    return out


@dataclass(frozen=True)
class ScoreSettings:
    """What one score source asks of its renders (its spec options, resolved)."""

    seed: int
    rate: int
    #: the dataset's channel count: a mono dataset's scores are rendered mono (half the bytes to cache)
    channels: int
    font: SoundFont
    font_licence: str
    programs: Any  # "keep" or part name -> program numbers
    default_program: int
    tempo: Any  # "score" or [low, high]
    max_seconds: float
    drums: bool
    #: render only the first this many seconds of each score (at its rendered tempo); 0: the whole score
    excerpt: float = 0.0

    @classmethod
    def of(cls, source: Any, seed: int, dataset_rate: int, dataset_channels: int = 2) -> ScoreSettings:
        font = open_soundfont(source.opt("soundfont"))
        licence = source.options.get("soundfont_licence") or (
            BUILTIN_LICENCE if font.name == BUILTIN_SOUNDFONT else f"{font.name}: licence not stated in the spec")
        o = source.options
        return cls(seed=seed, rate=int(o.get("sample_rate") or dataset_rate), channels=int(dataset_channels),
                   font=font, font_licence=licence,
                   programs=o.get("programs", "keep"), default_program=int(o.get("default_program", 0)),
                   tempo=o.get("tempo", "score"), max_seconds=float(o.get("max_seconds", 600.0)),
                   drums=bool(o.get("drums", True)), excerpt=float(o.get("excerpt_seconds") or 0.0))


def _programs(perf: Performance, settings: ScoreSettings, piece: str, render: int) -> list[int]:
    """The program of every part for render ``render`` of a piece. Instrumentations are drawn in sequence
    from the piece's generator, skipping any drawn before, so a piece's renders differ whenever the spec's
    lists allow it (identical renders would only be duplicate audio)."""
    rng = rng_for(settings.seed, piece, "score/programs")
    own = [p.program if p.program is not None else (0 if p.is_drum else settings.default_program)
           for p in perf.parts]
    lists = []
    for part, program in zip(perf.parts, own, strict=True):
        choices = None
        if isinstance(settings.programs, Mapping) and not part.is_drum:
            choices = settings.programs.get(part.name.lower()) or settings.programs.get("*")
        lists.append([int(c) for c in choices] if choices else [int(program)])
    drawn: list[list[int]] = []
    tries = 0
    while len(drawn) <= render:
        combo = [c[int(rng.integers(len(c)))] for c in lists]
        tries += 1
        if combo not in drawn or tries > MAX_DRAWS:
            drawn.append(combo)
    return drawn[render]


def _tempo(perf: Performance, settings: ScoreSettings, clip_id: str) -> tuple[float, str]:
    if settings.tempo == "score":
        return perf.tempo, perf.tempo_source
    lo, hi = settings.tempo
    return round(float(rng_for(settings.seed, clip_id, "score/tempo").uniform(lo, hi)), 2), "drawn"


def performed(data: bytes, recipe: Mapping[str, Any]) -> tuple[Performance, list[int]]:
    """The performance a recipe plays (at its tempo, cut to its excerpt) and the parts it renders (drum
    parts only when the recipe has them)."""
    return perform(parsed_performance(data, recipe["format"], int(recipe["tune"])), recipe)


def perform(perf: Performance, recipe: Mapping[str, Any]) -> tuple[Performance, list[int]]:
    """What :func:`performed` does once the score is parsed."""
    if recipe["tempo"] != perf.tempo:
        perf = retimed(perf, float(recipe["tempo"]))
    if recipe.get("excerpt"):
        perf = excerpt(perf, float(recipe["excerpt"]))
    parts = [i for i, p in enumerate(perf.parts) if recipe.get("drums", True) or not p.is_drum]
    return perf, parts


def render_recipe(data: bytes, recipe: Mapping[str, Any], font: SoundFont) -> bytes:
    """The audio bytes of one clip: the same for the probe, every render worker and ``verify``."""
    perf, parts = performed(data, recipe)
    audio = synthesise(perf, list(recipe["programs"]), int(recipe["rate"]), font, parts, int(recipe["channels"]))
    return encode_render(audio, int(recipe["rate"]))


def _check(perf: Performance, settings: ScoreSettings) -> None:
    if not perf.parts:
        raise ScoreError("no_notes", "the score has no notes to play (only rests, or no parts)")
    if not perf.pitched():
        raise ScoreError("drums_only", "the score has only drum parts: no pitch, key or chords to label")


def realise(clip_id: str, data: bytes, synth: Mapping[str, Any], settings: ScoreSettings, piece: str = ""
            ) -> tuple[dict[str, Any], dict[str, Any], bytes, Performance]:
    """(recipe, labels, audio bytes, performance as rendered) of one listed score clip (``piece``: the
    score or tune its renders share, by default the clip itself); a score that cannot be a clip raises
    :class:`ScoreError` with its reject reason."""
    perf = parsed_performance(data, synth["format"], int(synth["tune"]))
    _check(perf, settings)
    tempo, tempo_source = _tempo(perf, settings, clip_id)
    recipe = {"format": synth["format"], "tune": int(synth["tune"]), "render": int(synth.get("render", 0)),
              "programs": _programs(perf, settings, piece or clip_id, int(synth.get("render", 0))),
              "tempo": tempo, "rate": settings.rate,
              "channels": settings.channels, "drums": settings.drums, "soundfont": settings.font.sha256,
              **({"excerpt": settings.excerpt} if settings.excerpt else {})}
    timed, parts = perform(perf, recipe)
    if timed.duration > settings.max_seconds:
        raise ScoreError("too_long", f"the score lasts {timed.duration:.0f} s at {tempo:g} BPM; the source's "
                         f"max_seconds is {settings.max_seconds:g}")
    audio = encode_render(synthesise(timed, recipe["programs"], settings.rate, settings.font, parts,
                                     settings.channels), settings.rate)
    return recipe, score_labels(timed, recipe, tempo_source, parts), audio, timed


def score_labels(perf: Performance, recipe: Mapping[str, Any], tempo_source: str, parts: list[int]
                 ) -> dict[str, Any]:
    """What the score says, as mixtape labels: key (analysed; the key signature beside it), tempo, meter,
    instruments and their families as tags, chords and notes as time-stamped labels, and per part its
    name and instrument (the identity stems are made of)."""
    labels = empty_labels()
    key, strength = estimate_key(perf.pitched())
    labels["key"] = normalise_key(key["tonic"], key["mode"]) if key else None
    labels["tempo"] = round(float(recipe["tempo"]), 3)
    programs = recipe["programs"]
    described = []
    tags = []
    for i in parts:
        part = perf.parts[i]
        if part.is_drum:
            described.append({"name": part.name, "drums": True, "program": programs[i]})
            tags.append("drums")
            continue
        name, family = gm_name(programs[i]), gm_family(programs[i])
        described.append({"name": part.name, "program": programs[i], "instrument": name, "family": family})
        tags += [name, family]
    labels["tags"] = normalise_tags(tags)
    if perf.meter:
        labels["classes"]["meter"] = perf.meter
    labels["chords"] = chords(perf)
    labels["notes"] = [{"start": n.start, "end": n.end, "pitch": n.pitch, "velocity": n.velocity,
                        "part": perf.parts[n.part].name} for n in perf.notes if n.part in parts]
    labels["extra"]["score"] = {
        "key_signature": perf.key_signature, "key_method": KEY_METHOD, "key_strength": strength,
        "tempo_source": tempo_source, "parts": described, "format": recipe["format"],
        "synthesiser": synthesiser_version(), "rights": perf.rights or None,
    }
    return labels


def score_sources(spec: Any) -> list[Any]:
    return [s for s in spec.sources if s.kind == "score"]


def score_fonts(spec: Any) -> dict[str, str]:
    """sha256 -> path of every SoundFont the spec's score sources render with."""
    fonts = {}
    for source in score_sources(spec):
        font = open_soundfont(source.opt("soundfont"))
        fonts[font.sha256] = font.path
    return fonts


def score_versions(spec: Any) -> dict[str, str]:
    """What a card records besides package versions when a spec renders scores: the synthesiser, the
    parsers, and each SoundFont's sha256 (a SoundFont edited in place changes every render)."""
    if not score_sources(spec):
        return {}
    out = tool_versions()
    for source in score_sources(spec):
        font = open_soundfont(source.opt("soundfont"))
        out[f"soundfont:{font.name}"] = font.sha256
    return out


def tool_versions() -> dict[str, str]:
    """The synthesiser's and the score parsers' versions on this machine."""
    from importlib import metadata

    out = {"synthesiser": synthesiser_version()}
    for package in ("music21", "pretty_midi"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = "absent"
    return out

"""What a spec holds: the dataclasses (the only place a spec default is written) and the vocabularies of
its fields. ``parse`` turns a user's YAML into these, reading every default from here.

The normalised spec (every default filled in) is what gets hashed and stored in the dataset card, so two
YAML files that mean the same thing build the same dataset and carry the same spec hash.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from mixtape.errors import MixtapeError
from mixtape.hashing import canonical_json, sha256_hex

GROUP_FIELDS = ("clip", "uploader", "pack", "artist", "album", "release_group", "source_id", "fold")
LICENCE_FAMILIES = ("cc0", "cc-by", "cc-by-sa", "cc-by-nd", "cc-by-nc", "cc-by-nc-sa", "cc-by-nc-nd", "sampling+",
                    "sampling-plus-nc", "public-domain", "unknown")
AUDIO_FORMATS = ("flac", "wav")
SPLIT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
DATASET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class SpecError(MixtapeError, ValueError):
    """A spec problem, or several; each names the field, what is wrong and how to fix it."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid dataset spec:\n" + "\n".join(f"  - {p}" for p in problems))


#: Bounds on what a spec may be: a spec is a page of YAML, and YAML aliases can make a few hundred bytes
#: stand for gigabytes of nested lists (an "alias bomb"), so the loader counts the values it would visit.
MAX_SPEC_BYTES = 1 << 20
MAX_SPEC_VALUES = 100_000
#: hash-range shards need room: with fewer samples per range, the ranges needed grow with the square of
#: the sample count (a birthday bound), so `stable` takes at least this many; `balanced` takes any number.
MIN_STABLE_SHARD_SAMPLES = 4

REQUIRED = object()
DEFAULT_EXTENSIONS = ["flac", "mp3", "ogg", "wav"]
#: Options each source kind takes: name -> (type, default). Path options resolve against the source's
#: own ``path``; ``path`` itself resolves against the spec file's folder.
SOURCE_OPTIONS: dict[str, dict[str, tuple[str, Any]]] = {
    "freesound_dump": {"metadata": ("str", None), "acousticbrainz": ("path", None),
                       "extra_metadata": ("path", None), "ac_min_confidence": ("float", 0.5)},
    "freesound_pack": {},
    "fsd50k": {"out_of_vocabulary": ("choice:reject,keep", "reject")},
    "csv_index": {"csv": ("path", REQUIRED), "audio_dir": ("path", "."), "delimiter": ("str", None),
                  "columns": ("columns", REQUIRED), "class_field": ("str", "class"),
                  "window_unit": ("choice:seconds,samples", "seconds")},
    "acousticbrainz": {"audio": ("path", REQUIRED), "mapping": ("path", None), "genre_tsv": ("paths", []),
                       "class_csv": ("paths", []), "class_field": ("str", "class"),
                       "genre_threshold": ("float", 0.0), "moods": ("bool", True)},
    # corpora with a Lhotse recipe: a RecordingSet (+ SupervisionSet) or a CutSet, jsonl / jsonl.gz
    "lhotse": {"recordings": ("path", None), "supervisions": ("path", None), "cuts": ("path", None),
               "audio_dir": ("path", ".")},
    "folder": {"class_field": ("str", None), "pattern": ("str", None), "sidecar": ("path", None),
               "read_tags": ("bool", True)},
    # symbolic music rendered through a SoundFont (see mixtape.sources.score); `corpus` reads music21's own corpus
    "score": {"corpus": ("names", []), "limit": ("count", 0), "soundfont": ("path", None),
              "soundfont_licence": ("str", None), "programs": ("programs", "keep"), "default_program": ("program", 0),
              "renders": ("renders", 1), "tempo": ("tempo", "score"), "sample_rate": ("synth_rate", 0),
              "max_seconds": ("seconds", 600.0), "excerpt_seconds": ("count", 0), "drums": ("bool", True),
              "composer": ("str", None), "genre": ("str", None)},
}
#: The extensions a kind reads when the spec names none (audio kinds read DEFAULT_EXTENSIONS).
KIND_EXTENSIONS = {"score": ["abc", "kar", "krn", "mid", "midi", "musicxml", "mxl", "xml"]}
#: Tempo bounds (quarter notes per minute) a score may be rendered at.
SCORE_TEMPO_RANGE = (20.0, 400.0)
#: Renders of one score a spec may ask for (each is a clip with its own instrumentation).
MAX_RENDERS = 16
COMMON_SOURCE_OPTIONS: dict[str, tuple[str, Any]] = {"extensions": ("exts", DEFAULT_EXTENSIONS),
                                                     "licence": ("str", None),
                                                     # symlinks leading out of the source are rejects unless set
                                                     "follow_symlinks": ("bool", False)}
#: Options added after datasets were built with their spec hashes: left out of the normalised spec while
#: they hold their default, so those hashes still hold.
LATER_SOURCE_DEFAULTS = {"follow_symlinks": False}
SOURCE_KINDS = tuple(SOURCE_OPTIONS)
#: The id namespace of a source when the spec gives it no ``name``: clip ids read ``<name>:<id>``.
DEFAULT_SOURCE_NAMES = {"freesound_dump": "freesound", "freesound_pack": "freesound", "fsd50k": "fsd50k",
                        "csv_index": "csv", "acousticbrainz": "mbid", "folder": "folder", "score": "score",
                        "lhotse": "lhotse"}
CSV_COLUMNS = ("file", "id", "class", "tags", "tags_sep", "fold", "start", "end", "licence", "uploader", "title",
               "source_id", "url")
SOURCE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")


@dataclass(frozen=True)
class SourceSpec:
    kind: str
    #: namespace of this source's clip ids; unique within a spec
    name: str
    #: as the user wrote it (kept in the card, so the spec hash does not depend on where the spec lives)
    path: str
    #: every option of the kind, defaults filled, paths as written
    options: dict[str, Any] = field(default_factory=dict)
    #: ``path`` resolved against the spec file's folder; not part of the spec hash
    root: str = field(default="", compare=False)
    #: path-typed options resolved against ``root``; not part of the spec hash
    resolved: dict[str, Any] = field(default_factory=dict, compare=False)

    def opt(self, key: str) -> Any:
        """An option's value, with path options resolved to absolute paths."""
        return self.resolved[key] if key in self.resolved else self.options[key]

    @property
    def extensions(self) -> tuple[str, ...]:
        return tuple(self.options["extensions"])


@dataclass(frozen=True)
class AudioSpec:
    sample_rate: int = 16000
    channels: int = 1
    format: str = "flac"
    #: sources with more channels than this are rejected (unsupported_channels) instead of downmixed
    max_source_channels: int = 8


@dataclass(frozen=True)
class SnippetSpec:
    duration: float = 3.0
    hop: float = 3.0
    min_rms_db: float = -60.0
    max_per_clip: int = 0  # 0 = every usable window; else at most this many, evenly spread over the clip

    @property
    def duration_ms(self) -> int:
        return round(self.duration * 1000)

    @property
    def hop_ms(self) -> int:
        return round(self.hop * 1000)


@dataclass(frozen=True)
class SplitSpec:
    group_by: str = "clip"
    fractions: tuple[tuple[str, float], ...] = (("train", 0.8), ("valid", 0.1), ("test", 0.1))
    #: with group_by: fold, the dataset's own folds decide: split name -> fold values (as strings)
    folds: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: hash (a group's split depends on it alone: stable when inputs are added) or balanced (shares of audio)
    method: str = "hash"
    #: write a dataset with an empty split instead of failing the build
    allow_empty: bool = False

    def split_of_fold(self, fold: str) -> str | None:
        return next((name for name, values in self.folds if fold in values), None)


@dataclass(frozen=True)
class OpSpec:
    """One augmentation op: its name, the probability it applies, and for each parameter the range
    (low, high), the choices (a tuple of names) or the setting (one name) the plan draws it from."""

    op: str
    p: float = 1.0
    params: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class AugmentSpec:
    variants: int = 0
    keep_original: bool = True
    splits: tuple[str, ...] = ("train",)
    chain: tuple[OpSpec, ...] = ()
    #: a source used only as mixing material (background), never as samples
    mix_with: str | None = None
    #: a source of impulse responses for `reverb` (otherwise reverbs are synthetic)
    impulse_responses: str | None = None
    #: transform (labels follow the audio: keys transpose, tempi scale) or keep (labels stay the clean
    #: window's: wrong for pitch and time ops, and there only to measure what transforming buys)
    labels: str = "transform"

    @property
    def material_sources(self) -> tuple[str, ...]:
        return tuple(s for s in (self.mix_with, self.impulse_responses) if s)


@dataclass(frozen=True)
class ShardSpec:
    max_samples: int = 256
    #: stable (power-of-two hash ranges: incremental rebuilds touch few shards) or balanced (equal counts)
    scheme: str = "stable"


@dataclass(frozen=True)
class LabelSpec:
    tag_min_count: int = 1
    #: class field -> the values allowed; a clip with another value is rejected (label_not_in_vocabulary)
    class_values: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: class field (or ``tags``) -> {value: replacement}: one spelling for values sources spell differently
    value_map: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()

    @property
    def maps(self) -> dict[str, dict[str, str]]:
        """``value_map`` as plain mappings: field -> {value: replacement}."""
        return {k: dict(v) for k, v in self.value_map}


@dataclass(frozen=True)
class LicenceSpec:
    """Which licence families may enter the dataset (e.g. exclude NC for commercial use)."""

    allow: tuple[str, ...] = LICENCE_FAMILIES
    deny: tuple[str, ...] = ()

    def permits(self, family: str) -> bool:
        return family in self.allow and family not in self.deny


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    seed: int
    sources: tuple[SourceSpec, ...]
    #: the dataset's semantic version (MAJOR.MINOR.PATCH), recorded in the card
    version: str = "0.1.0"
    audio: AudioSpec = field(default_factory=AudioSpec)
    snippets: SnippetSpec = field(default_factory=SnippetSpec)
    splits: SplitSpec = field(default_factory=SplitSpec)
    augment: AugmentSpec = field(default_factory=AugmentSpec)
    shards: ShardSpec = field(default_factory=ShardSpec)
    labels: LabelSpec = field(default_factory=LabelSpec)
    licences: LicenceSpec = field(default_factory=LicenceSpec)
    #: features stored beside each sample: {"logmel": LogMelSpec fields} (none by default)
    features: tuple[tuple[str, Any], ...] = ()

    @property
    def logmel(self):
        from mixtape.dataset.features import LogMelSpec

        params = dict(self.features).get("logmel")
        return LogMelSpec(**dict(params)) if params is not None else None

    def to_dict(self) -> dict[str, Any]:
        """The normalised spec as plain JSON-able data, in the same shape a user writes."""
        d = asdict(self)
        d["splits"]["fractions"] = dict(self.splits.fractions)
        d["splits"]["folds"] = {k: list(v) for k, v in self.splits.folds}
        d["licences"] = {"allow": list(self.licences.allow), "deny": list(self.licences.deny)}
        d["features"] = {k: dict(v) for k, v in self.features}
        d["augment"]["chain"] = [
            {"op": o.op, "p": o.p, **{k: (list(v) if isinstance(v, tuple) else v) for k, v in o.params}}
            for o in self.augment.chain
        ]
        d["augment"]["splits"] = list(self.augment.splits)
        d["labels"] = {"tags": {"min_count": self.labels.tag_min_count},
                       "classes": {k: list(v) for k, v in self.labels.class_values},
                       **({"map": self.labels.maps} if self.labels.value_map else {})}
        d["sources"] = [{"kind": s.kind, "name": s.name, "path": s.path, **s.options} for s in self.sources]
        if not self.snippets.max_per_clip:  # added later: absent when unset, so earlier spec hashes still hold
            del d["snippets"]["max_per_clip"]
        if self.augment.labels == "transform":  # likewise
            del d["augment"]["labels"]
        if not self.splits.allow_empty:  # likewise
            del d["splits"]["allow_empty"]
        for source in d["sources"]:
            if source["kind"] == "freesound_dump" and source.get("ac_min_confidence") == 0.5:
                del source["ac_min_confidence"]  # likewise
            for key, default in LATER_SOURCE_DEFAULTS.items():
                if source.get(key) == default:
                    del source[key]
        return d

    @property
    def spec_hash(self) -> str:
        return sha256_hex(canonical_json(self.to_dict()).encode("utf-8"))

    @property
    def split_names(self) -> list[str]:
        return [name for name, _ in self.splits.fractions]

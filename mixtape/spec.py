"""DatasetSpec: the YAML a user writes, validated with errors that name the field and the fix.

The normalised spec (every default filled in) is what gets hashed and stored in the dataset card, so two
YAML files that mean the same thing build the same dataset and carry the same spec hash.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mixtape.errors import MixtapeError
from mixtape.hashing import canonical_json, sha256_hex
from mixtape.storage import open_local
from mixtape.untrusted import brief, show

SOURCE_KINDS = ("freesound_dump", "folder")
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
                        "csv_index": "csv", "acousticbrainz": "mbid", "folder": "folder", "score": "score"}
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


# ----------------------------------------------------------------------------------------------- parsing


class _Reader:
    """Walks the raw YAML mapping, collecting every problem instead of stopping at the first."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def mapping(self, raw: Any, where: str, known: set[str]) -> dict[str, Any]:
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            self.fail(where, f"must be a mapping, got {type(raw).__name__}")
            return {}
        for k in sorted(set(raw) - known, key=str):
            self.fail(f"{where}.{k if isinstance(k, str) and len(k) <= 40 else brief(k)}",
                      f"unknown field; allowed here: {', '.join(sorted(known))}")
        return raw

    def number(self, raw: dict, key: str, where: str, default: float, *, lo: float | None = None,
               hi: float | None = None, integer: bool = False, lo_open: bool = False) -> Any:
        v = raw.get(key, default)
        path = f"{where}.{key}"
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and not math.isfinite(v)):
            self.fail(path, f"must be a {'whole ' if integer else ''}number, got {brief(v)}")
            return default
        if integer and v != int(v):
            self.fail(path, f"must be a whole number, got {brief(v)}")
            return default
        if lo is not None and (v <= lo if lo_open else v < lo):
            self.fail(path, f"must be {'>' if lo_open else '>='} {lo}, got {brief(v)}")
            return default
        if hi is not None and v > hi:
            self.fail(path, f"must be <= {hi}, got {brief(v)}")
            return default
        return int(v) if integer else float(v)

    def choice(self, raw: dict, key: str, where: str, default: Any, options: tuple) -> Any:
        v = raw.get(key, default)
        if v not in options:
            self.fail(f"{where}.{key}", f"must be one of {', '.join(map(str, options))}; got {brief(v)}")
            return default
        return v


def _resolve(path: str, base: Path | None) -> str:
    p = Path(path).expanduser()
    if not p.is_absolute() and base is not None:
        p = base / p
    return str(p)


def _parse_option(r: _Reader, kind: str, value: Any, where: str) -> Any:
    if kind == "str":
        if not isinstance(value, str):
            r.fail(where, f"must be a string; got {brief(value)}")
        return value
    if kind == "path":
        if not isinstance(value, str) or not value:
            r.fail(where, f"must be a path (relative to the source's `path`); got {brief(value)}")
        return value
    if kind in ("paths", "names"):  # one string or a list of them; names are a set (sorted)
        value = [value] if isinstance(value, str) else value
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            r.fail(where, f"must be a {kind[:-1]} or a list of {kind}; got {brief(value)}")
            return []
        return value if kind == "paths" else sorted(set(value))
    if kind == "exts":
        if not isinstance(value, list) or not all(isinstance(e, str) and e for e in value):
            r.fail(where, f"must be a list of file extensions such as [flac, wav]; got {brief(value)}")
            return DEFAULT_EXTENSIONS
        return sorted({e.lower().lstrip(".") for e in value})
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            r.fail(where, f"must be a number; got {brief(value)}")
            return 0.0
        return float(value)
    if kind == "bool":
        if not isinstance(value, bool):
            r.fail(where, f"must be true or false; got {brief(value)}")
        return value
    if kind.startswith("choice:"):
        options = kind.split(":", 1)[1].split(",")
        if value not in options:
            r.fail(where, f"must be one of {', '.join(options)}; got {brief(value)}")
        return value
    if kind in ("count", "renders", "synth_rate"):
        lo, hi = {"count": (0, 10**9), "renders": (1, MAX_RENDERS), "synth_rate": (0, 192000)}[kind]
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            hint = " (0: the dataset's audio.sample_rate)" if kind == "synth_rate" else ""
            r.fail(where, f"must be a whole number from {lo} to {hi}{hint}; got {brief(value)}")
            return lo
        if kind == "synth_rate" and 0 < value < 8000:
            r.fail(where, f"must be at least 8000 Hz (or 0: the dataset's audio.sample_rate); got {value}")
        return value
    if kind == "seconds":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 86400:
            r.fail(where, f"must be a number of seconds above 0 (at most 86400); got {brief(value)}")
            return 600.0
        return float(value)
    if kind == "program":
        return _parse_program(r, value, where)
    if kind == "programs":
        return _parse_programs(r, value, where)
    if kind == "tempo":
        if value == "score":
            return value
        lo, hi = SCORE_TEMPO_RANGE
        if (isinstance(value, list) and len(value) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                               for v in value) and lo <= value[0] <= value[1] <= hi):
            return [float(value[0]), float(value[1])]
        r.fail(where, f"must be `score` (the score's own tempo) or a [low, high] range of quarter notes per minute "
               f"within [{lo:g}, {hi:g}]; got {brief(value)}")
        return "score"
    if kind == "columns":
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            r.fail(where, "must map roles to CSV column names, e.g. {file: filename, class: category, fold: fold}")
            return {}
        for k in value:
            if k not in CSV_COLUMNS:
                r.fail(f"{where}.{k}", f"unknown column role; allowed: {', '.join(CSV_COLUMNS)}")
        if "file" not in value:
            r.fail(f"{where}.file", "required: the column holding the audio file name (or a template such as "
                   "'fold{fold}/{slice_file_name}')")
        return dict(sorted(value.items()))
    raise AssertionError(kind)


def _parse_program(r: _Reader, value: Any, where: str) -> int:
    from mixtape.sources.score.analysis import gm_program

    program = gm_program(value) if isinstance(value, (str, int)) else None
    if program is None:
        r.fail(where, f"must be a General MIDI program: a number 0-127 or a name such as flute, cello, "
               f"acoustic_grand_piano; got {brief(value)}")
        return 0
    return program


def _parse_programs(r: _Reader, value: Any, where: str) -> Any:
    """``keep`` (the file's own programs) or part name -> the programs a render draws from (numbers, so
    `cello` and `42` hash alike); the part ``"*"`` stands for every part not named."""
    if value == "keep":
        return value
    if not isinstance(value, dict) or not value:
        r.fail(where, "must be `keep` or map part names to lists of instruments, e.g. "
               "{soprano: [flute, oboe], bass: [cello, bassoon], '*': [acoustic_grand_piano]}")
        return "keep"
    out = {}
    for part, choices in value.items():
        choices = choices if isinstance(choices, list) else [choices]
        if not isinstance(part, str) or not part.strip() or not choices:
            r.fail(f"{where}.{brief(part)}", "a part name with one or more instruments")
            continue
        out[part.strip().lower()] = [_parse_program(r, c, f"{where}.{part}") for c in choices]
    return dict(sorted(out.items()))


def _parse_source(r: _Reader, raw: Any, where: str, base: Path | None) -> SourceSpec | None:
    if not isinstance(raw, dict) or "kind" not in raw:
        r.fail(where, "a source is a mapping with at least `kind` and `path`")
        return None
    kind = raw.get("kind")
    if kind not in SOURCE_OPTIONS:
        r.fail(f"{where}.kind", f"must be one of {', '.join(SOURCE_KINDS)}; got {brief(kind)}")
        return None
    schema = {**COMMON_SOURCE_OPTIONS, **SOURCE_OPTIONS[kind]}
    if kind in KIND_EXTENSIONS:
        schema["extensions"] = ("exts", KIND_EXTENSIONS[kind])
    r.mapping(raw, where, {"kind", "name", "path", *schema})
    path = raw.get("path")
    corpus = kind == "score" and bool(raw.get("corpus"))
    if corpus and path:
        r.fail(f"{where}.path", "a score source reads either music21's corpus (`corpus`) or a folder (`path`), "
               "not both: make two sources")
        return None
    if corpus:
        path = ""
    elif not isinstance(path, str) or not path:
        r.fail(f"{where}.path", "required: the folder (or, for acousticbrainz, file or archive) holding the "
               "collection" + (" (or, for score, `corpus: [bach, ...]`)" if kind == "score" else ""))
        return None
    name = raw.get("name", DEFAULT_SOURCE_NAMES[kind])
    if not isinstance(name, str) or not SOURCE_NAME.match(name):
        r.fail(f"{where}.name", f"must be a short lower-case word (it prefixes clip ids); got {brief(name)}")
    options: dict[str, Any] = {}
    resolved: dict[str, Any] = {}
    root = corpus_root() if corpus else _resolve(path, base)
    for key, (typ, default) in schema.items():
        if key not in raw or (raw[key] is None and default is None):
            if default is REQUIRED:
                r.fail(f"{where}.{key}", f"required for kind: {kind}")
                continue
            options[key] = default
        else:
            options[key] = _parse_option(r, typ, raw[key], f"{where}.{key}")
        value = options[key]
        if typ == "path" and isinstance(value, str):
            # a score source's SoundFont is the spec's, not the collection's: relative to the spec file
            resolved[key] = _resolve(value, base if kind == "score" else Path(root))
        elif typ == "paths" and isinstance(value, list):
            resolved[key] = [_resolve(v, Path(root)) for v in value]
    return SourceSpec(kind=kind, name=name, path=path, options=options, root=root, resolved=resolved)


def corpus_root() -> str:
    """Where this machine's music21 keeps its corpus: found again on every machine, so never hashed."""
    from importlib.util import find_spec

    found = find_spec("music21")
    return str(Path(found.origin).parent / "corpus") if found and found.origin else "music21-corpus-not-installed"


def _parse_range(r: _Reader, v: Any, where: str) -> tuple[float, float] | None:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return (float(v), float(v))
    if (isinstance(v, list) and len(v) == 2 and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                    for x in v) and v[0] <= v[1]):
        return (float(v[0]), float(v[1]))
    r.fail(where, f"must be a number or a [low, high] pair with low <= high; got {brief(v)}")
    return None


def _parse_op(r: _Reader, raw: Any, where: str) -> OpSpec | None:
    from mixtape.augment.ops import OPS, Choice, Range, Setting

    if not isinstance(raw, dict) or "op" not in raw:
        r.fail(where, "each chain entry is a mapping with `op` (e.g. `{op: gain, p: 0.5, db: [-6, 6]}`)")
        return None
    name = raw["op"]
    if name not in OPS:
        r.fail(f"{where}.op", f"unknown op {brief(name)}; available: {', '.join(sorted(OPS))}")
        return None
    op = OPS[name]
    r.mapping(raw, where, {"op", "p", *op.params})
    p = r.number(raw, "p", where, 1.0, lo=0.0, hi=1.0)
    params: list[tuple[str, Any]] = []
    for pname, schema in op.params.items():
        path = f"{where}.{pname}"
        if isinstance(schema, Range):
            value = raw.get(pname, list(schema.default))
            rng = _parse_range(r, value, path)
            if rng is None:
                continue
            lo, hi = schema.bounds
            if rng[0] < lo or rng[1] > hi:
                r.fail(path, f"must lie within [{lo}, {hi}]; got {list(rng)}")
                continue
            params.append((pname, rng))
        elif isinstance(schema, Choice):
            value = raw.get(pname, list(schema.default))
            value = [value] if isinstance(value, str) else value
            if not isinstance(value, list) or not value or any(v not in schema.values for v in value):
                r.fail(path, f"must be one or more of {', '.join(schema.values)}; got {brief(value)}")
                continue
            params.append((pname, tuple(value)))
        elif isinstance(schema, Setting):
            value = raw.get(pname, schema.default)
            if value not in schema.values:
                r.fail(path, f"must be one of {', '.join(schema.values)}; got {brief(value)}")
                continue
            params.append((pname, value))
    return OpSpec(op=name, p=p, params=tuple(params))


def _check_size(raw: Any) -> None:
    """Refuse a spec that expands (aliases followed) to more than ``MAX_SPEC_VALUES`` values."""
    pending, seen = [raw], 0
    while pending:
        value = pending.pop()
        seen += 1
        if seen > MAX_SPEC_VALUES:
            raise SpecError([f"spec: more than {MAX_SPEC_VALUES} values once YAML aliases are expanded; a dataset "
                             "spec is a page of settings (is it an alias bomb?)"])
        if isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, (list, tuple)):
            pending.extend(value)


def parse_spec(raw: Any, base_dir: Path | None = None) -> DatasetSpec:
    """Validate a raw spec mapping; relative paths resolve against ``base_dir`` (the spec file's folder)."""
    _check_size(raw)
    r = _Reader()
    top = r.mapping(raw, "spec", {"name", "seed", "version", "sources", "audio", "snippets", "splits", "augment",
                                  "shards", "labels", "licences", "features"})
    version = top.get("version", "0.1.0")
    if not isinstance(version, str) or not SEMVER.match(version):
        r.fail("version", f"must be a semantic version such as 1.0.0 (MAJOR.MINOR.PATCH); got {brief(version)}")
        version = "0.1.0"
    features: list[tuple[str, Any]] = []
    fe = r.mapping(top.get("features"), "features", {"logmel"})
    if fe.get("logmel") is not None:
        lm = r.mapping(fe["logmel"] if fe["logmel"] is not True else {}, "features.logmel",
                       {"n_fft", "hop", "n_mels", "f_min", "f_max", "log_c"})
        params = {"n_fft": r.number(lm, "n_fft", "features.logmel", 512, lo=16, hi=65536, integer=True),
                  "hop": r.number(lm, "hop", "features.logmel", 256, lo=1, hi=65536, integer=True),
                  "n_mels": r.number(lm, "n_mels", "features.logmel", 64, lo=1, hi=512, integer=True),
                  "f_min": r.number(lm, "f_min", "features.logmel", 0.0, lo=0.0),
                  "f_max": None if lm.get("f_max") is None else r.number(lm, "f_max", "features.logmel", 8000.0,
                                                                          lo=1.0),
                  "log_c": r.number(lm, "log_c", "features.logmel", 1000.0, lo=0.0, lo_open=True)}
        features.append(("logmel", tuple(sorted(params.items()))))
    name = top.get("name")
    if not isinstance(name, str) or not DATASET_NAME.match(name):
        r.fail("name", f"required: letters, digits, '.', '_' or '-' (up to 64); got {brief(name)}")
        name = "invalid"
    seed = r.number(top, "seed", "spec", 0, lo=0, hi=2**32 - 1, integer=True)
    if "seed" not in top:
        r.fail("seed", "required: a whole number in [0, 2^32); it seeds every random choice of the build")

    sources_raw = top.get("sources")
    sources: list[SourceSpec] = []
    if not isinstance(sources_raw, list) or not sources_raw:
        r.fail("sources", "required: a list of sources, e.g. `- {kind: folder, path: my_audio}`")
    else:
        for i, s in enumerate(sources_raw):
            src = _parse_source(r, s, f"sources[{i}]", base_dir)
            if src is not None:
                clash = next((j for j, o in enumerate(sources) if o.name == src.name), None)
                if clash is not None:
                    r.fail(f"sources[{i}].name", f"`{src.name}` is also the id namespace of an earlier source; "
                           "give each source a distinct `name` so their clip ids cannot collide")
                sources.append(src)

    a = r.mapping(top.get("audio"), "audio", {"sample_rate", "channels", "format", "max_source_channels"})
    audio = AudioSpec(
        sample_rate=r.number(a, "sample_rate", "audio", 16000, lo=4000, hi=192000, integer=True),
        channels=r.choice(a, "channels", "audio", 1, (1, 2)),
        format=r.choice(a, "format", "audio", "flac", AUDIO_FORMATS),
        max_source_channels=r.number(a, "max_source_channels", "audio", 8, lo=1, hi=1024, integer=True),
    )

    sn = r.mapping(top.get("snippets"), "snippets", {"duration", "hop", "min_rms_db", "max_per_clip"})
    duration = r.number(sn, "duration", "snippets", 3.0, lo=0.05, hi=600.0)
    snippets = SnippetSpec(
        duration=duration,
        hop=r.number(sn, "hop", "snippets", duration, lo=0.0, hi=600.0, lo_open=True),
        min_rms_db=r.number(sn, "min_rms_db", "snippets", -60.0, lo=-200.0, hi=0.0),
        max_per_clip=r.number(sn, "max_per_clip", "snippets", 0, lo=0, hi=10**9, integer=True),
    )

    sp = r.mapping(top.get("splits"), "splits", {"group_by", "fractions", "folds", "method", "allow_empty"})
    group_by = r.choice(sp, "group_by", "splits", "clip", GROUP_FIELDS)
    split_method = r.choice(sp, "method", "splits", "hash", ("hash", "balanced"))
    folds: list[tuple[str, tuple[str, ...]]] = []
    folds_raw = sp.get("folds")
    if group_by == "fold":
        if not isinstance(folds_raw, dict) or not folds_raw:
            r.fail("splits.folds", "required with group_by: fold: map each split to its folds, e.g. "
                   "{train: [1, 2, 3], valid: [4], test: [5]}")
        else:
            seen: dict[str, str] = {}
            for split_name, values in folds_raw.items():
                vals = values if isinstance(values, list) else [values]
                if not isinstance(split_name, str) or not SPLIT_NAME.match(split_name) or not vals:
                    r.fail(f"splits.folds.{split_name}", "split names are lower-case words with a list of fold values")
                    continue
                for v in vals:
                    if str(v) in seen:
                        r.fail(f"splits.folds.{split_name}", f"fold {brief(v)} is already in split `{seen[str(v)]}`")
                    seen[str(v)] = split_name
                folds.append((split_name, tuple(str(v) for v in vals)))
    elif folds_raw:
        r.fail("splits.folds", "only applies with group_by: fold")
    fr_raw = sp.get("fractions", dict(SplitSpec.fractions))
    if folds:  # the folds define the splits; fractions are not used
        fr_raw = {name: 1.0 / len(folds) for name, _ in folds}
    fractions: list[tuple[str, float]] = []
    if not isinstance(fr_raw, dict) or not fr_raw:
        r.fail("splits.fractions", "must map split names to fractions, e.g. {train: 0.8, valid: 0.1, test: 0.1}")
    else:
        for k, v in fr_raw.items():
            if not isinstance(k, str) or not SPLIT_NAME.match(k):
                r.fail(f"splits.fractions.{k}", "split names are lower-case words such as train, valid, test")
            elif isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 1:
                r.fail(f"splits.fractions.{k}", f"must be a fraction in (0, 1]; got {brief(v)}")
            else:
                fractions.append((k, float(v)))
        total = sum(v for _, v in fractions)
        if fractions and abs(total - 1.0) > 1e-6:
            r.fail("splits.fractions", f"must add up to 1; they add up to {total:g}")
    if fractions and "train" not in dict(fractions):
        r.fail("splits.fractions", "needs a `train` split")
    allow_empty = sp.get("allow_empty", False)
    if not isinstance(allow_empty, bool):
        r.fail("splits.allow_empty", f"must be true or false; got {brief(allow_empty)}")
        allow_empty = False
    splits = SplitSpec(group_by=group_by, fractions=tuple(fractions) or SplitSpec.fractions, folds=tuple(folds),
                       method=split_method,
                       allow_empty=allow_empty)

    au = r.mapping(top.get("augment"), "augment", {"variants", "keep_original", "splits", "chain", "mix_with",
                                                   "impulse_responses", "labels"})
    chain_raw = au.get("chain", [])
    chain: list[OpSpec] = []
    if not isinstance(chain_raw, list):
        r.fail("augment.chain", "must be a list of ops, e.g. `- {op: gain, db: [-6, 6]}`")
    else:
        for i, o in enumerate(chain_raw):
            op = _parse_op(r, o, f"augment.chain[{i}]")
            if op is not None:
                chain.append(op)
    variants = r.number(au, "variants", "augment", 0, lo=0, hi=64, integer=True)
    if variants and not chain:
        r.fail("augment.variants", f"is {variants} but augment.chain is empty: add ops or set variants: 0")
    keep_original = au.get("keep_original", True)
    if not isinstance(keep_original, bool):
        r.fail("augment.keep_original", f"must be true or false; got {brief(keep_original)}")
        keep_original = True
    aug_splits = au.get("splits", ["train"])
    if not isinstance(aug_splits, list) or any(s not in dict(splits.fractions) for s in aug_splits):
        r.fail("augment.splits", f"must list split names from splits.fractions; got {brief(aug_splits)}")
        aug_splits = ["train"]
    if not keep_original and variants == 0:
        r.fail("augment.keep_original", "is false and variants is 0: no sample would be written")
    material: dict[str, str | None] = {}
    source_names = [src.name for src in sources]
    for key in ("mix_with", "impulse_responses"):
        value = au.get(key)
        if value is not None and value not in source_names:
            r.fail(f"augment.{key}", f"must name a source (one of {', '.join(source_names)}); got {brief(value)}")
            value = None
        material[key] = value
    if material["mix_with"] and not any(o.op == "mix" for o in chain):
        r.fail("augment.mix_with", "is set but no `mix` op is in augment.chain")
    if material["impulse_responses"] and not any(o.op == "reverb" for o in chain):
        r.fail("augment.impulse_responses", "is set but no `reverb` op is in augment.chain")
    if sources and len(set(source_names) - {v for v in material.values() if v}) == 0:
        r.fail("sources", "every source is mixing or impulse-response material: add a source of samples")
    label_policy = r.choice(au, "labels", "augment", "transform", ("transform", "keep"))
    augment = AugmentSpec(variants=variants, keep_original=keep_original, splits=tuple(aug_splits),
                          chain=tuple(chain), mix_with=material["mix_with"],
                          impulse_responses=material["impulse_responses"], labels=label_policy)

    sh = r.mapping(top.get("shards"), "shards", {"max_samples", "scheme"})
    shards = ShardSpec(max_samples=r.number(sh, "max_samples", "shards", 256, lo=1, hi=10_000_000, integer=True),
                       scheme=r.choice(sh, "scheme", "shards", "stable", ("stable", "balanced")))
    if shards.scheme == "stable" and shards.max_samples < MIN_STABLE_SHARD_SAMPLES:
        r.fail("shards.max_samples", f"must be at least {MIN_STABLE_SHARD_SAMPLES} with scheme stable (hash ranges of "
               f"{shards.max_samples} sample(s) would need about n^2 ranges for n samples); raise it, or set "
               "shards.scheme: balanced for shards this small")

    lb = r.mapping(top.get("labels"), "labels", {"tags", "classes", "map"})
    tg = r.mapping(lb.get("tags"), "labels.tags", {"min_count"})
    class_values = []
    cl = lb.get("classes") or {}
    if not isinstance(cl, dict):
        r.fail("labels.classes", "must map class fields to their allowed values, e.g. {genre: [jazz, rock]}")
    else:
        for fieldname, values in cl.items():
            if not isinstance(values, list) or not values:
                r.fail(f"labels.classes.{fieldname}", "must be a non-empty list of allowed values")
                continue
            class_values.append((str(fieldname), tuple(sorted(str(v) for v in values))))
    value_map = []
    mp = lb.get("map") or {}
    if not isinstance(mp, dict):
        r.fail("labels.map", "must map label fields to {value: replacement}, e.g. {genre: {jaz: jazz}}")
    else:
        for fieldname, pairs in mp.items():
            if not isinstance(pairs, dict) or not all(isinstance(k, str) and isinstance(v, str) and v
                                                      for k, v in pairs.items()):
                r.fail(f"labels.map.{fieldname}", "must map values to replacement values (strings)")
                continue
            value_map.append((str(fieldname), tuple(sorted(pairs.items()))))
    labels = LabelSpec(tag_min_count=r.number(tg, "min_count", "labels.tags", 1, lo=1, integer=True),
                       class_values=tuple(sorted(class_values)), value_map=tuple(sorted(value_map)))

    li = r.mapping(top.get("licences"), "licences", {"allow", "deny"})
    licence_lists = {}
    for key, default in (("allow", LICENCE_FAMILIES), ("deny", ())):
        v = li.get(key, list(default))
        if not isinstance(v, list) or any(x not in LICENCE_FAMILIES for x in v):
            r.fail(f"licences.{key}", f"must list licence families from: {', '.join(LICENCE_FAMILIES)}; got {brief(v)}")
            v = list(default)
        licence_lists[key] = tuple(v)
    licences = LicenceSpec(allow=licence_lists["allow"], deny=licence_lists["deny"])

    if r.problems:
        raise SpecError(r.problems)
    return DatasetSpec(name=name, seed=seed, sources=tuple(sources), audio=audio, snippets=snippets,
                       splits=splits, augment=augment, shards=shards, labels=labels, licences=licences,
                       version=version, features=tuple(features))


def load_spec(path: str | Path) -> DatasetSpec:
    """Read and validate a spec file (YAML, loaded safely)."""
    p = Path(path)
    try:
        with open_local(str(p)) as f:
            data = f.read(MAX_SPEC_BYTES + 1)
        text = data.decode("utf-8")
    except OSError as e:
        raise SpecError([f"{p}: cannot read the spec file ({e.strerror})"]) from e
    except UnicodeDecodeError as e:
        raise SpecError([f"{p}: not UTF-8 text (byte {e.start})"]) from e
    if len(data) > MAX_SPEC_BYTES:
        raise SpecError([f"{p}: larger than {MAX_SPEC_BYTES >> 10} KB; a dataset spec is a page of settings"])
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise SpecError([f"{p}: not valid YAML: {show(e, 400)}"]) from e
    return parse_spec(raw, p.resolve().parent)


def spec_from_dict(d: dict[str, Any], base_dir: Path | None = None) -> DatasetSpec:
    """Rebuild a spec from its normalised form (as stored in a dataset card)."""
    return parse_spec(d, base_dir)

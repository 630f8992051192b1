"""Parsing a spec: the YAML a user writes, validated with errors that name the field and the fix.

One ``_parse_<section>`` per top-level section; each collects every problem (never stops at the first) and
takes its defaults from the dataclasses in ``model``, so a default is written once.
"""

from __future__ import annotations

import math
from dataclasses import fields
from pathlib import Path
from typing import Any

import yaml

from mixtape.spec.model import (
    AUDIO_FORMATS,
    COMMON_SOURCE_OPTIONS,
    CSV_COLUMNS,
    DATASET_NAME,
    DEFAULT_EXTENSIONS,
    DEFAULT_SOURCE_NAMES,
    GROUP_FIELDS,
    KIND_EXTENSIONS,
    LICENCE_FAMILIES,
    MAX_RENDERS,
    MAX_SPEC_BYTES,
    MAX_SPEC_VALUES,
    MIN_STABLE_SHARD_SAMPLES,
    REQUIRED,
    SCORE_TEMPO_RANGE,
    SEMVER,
    SOURCE_KINDS,
    SOURCE_NAME,
    SOURCE_OPTIONS,
    SPLIT_NAME,
    AudioSpec,
    AugmentSpec,
    DatasetSpec,
    LabelSpec,
    LicenceSpec,
    OpSpec,
    ShardSpec,
    SnippetSpec,
    SourceSpec,
    SpecError,
    SplitSpec,
)
from mixtape.storage import open_local
from mixtape.untrusted import brief, show

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

    def flag(self, raw: dict, key: str, where: str, default: bool) -> bool:
        v = raw.get(key, default)
        if not isinstance(v, bool):
            self.fail(f"{where}.{key}", f"must be true or false; got {brief(v)}")
            return default
        return v

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
        slowest, fastest = SCORE_TEMPO_RANGE
        numbers = isinstance(value, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                  for v in value)
        if numbers and len(value) == 2 and slowest <= value[0] <= value[1] <= fastest:
            return [float(value[0]), float(value[1])]
        r.fail(where, f"must be `score` (the score's own tempo) or a [low, high] range of quarter notes per minute "
               f"within [{slowest:g}, {fastest:g}]; got {brief(value)}")
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


def _parse_op(r: _Reader, raw: Any, where: str, audio: AudioSpec) -> OpSpec | None:
    from mixtape.augment.ops import OPS, Choice, Range, Setting

    if not isinstance(raw, dict) or "op" not in raw:
        r.fail(where, "each chain entry is a mapping with `op` (e.g. `{op: gain, p: 0.5, db: [-6, 6]}`)")
        return None
    name = raw["op"]
    if isinstance(name, str) and name.startswith("audiomentations."):
        return _parse_audiomentations_op(r, raw, where, audio)
    if name not in OPS:
        r.fail(f"{where}.op", f"unknown op {brief(name)}; available: {', '.join(sorted(OPS))}, or any "
                              "audiomentations.<Transform> (e.g. audiomentations.AddGaussianSNR)")
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
            if schema.implicit_default and value == schema.default:
                continue  # left unwritten, as in datasets built before the setting existed
            params.append((pname, value))
    return OpSpec(op=name, p=p, params=tuple(params))


def _parse_audiomentations_op(r: _Reader, raw: dict[str, Any], where: str, audio: AudioSpec) -> OpSpec | None:
    """An audiomentations transform: its constructor arguments checked against the installed version."""
    from mixtape.augment.audiomentations_ops import check

    p = r.number(raw, "p", where, 1.0, lo=0.0, hi=1.0)
    init = {str(k): v for k, v in raw.items() if k not in ("op", "p")}
    problems = check(raw["op"], init, audio.sample_rate, audio.channels)
    for field_name, message in problems:
        r.fail(f"{where}.{field_name}" if field_name else where, message)
    if problems:
        return None
    params = tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in sorted(init.items()))
    return OpSpec(op=raw["op"], p=p, params=params)


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


def _default(cls: type, name: str) -> Any:
    """A spec dataclass field's default: the one place it is written."""
    return next(f.default for f in fields(cls) if f.name == name)


def parse_spec(raw: Any, base_dir: Path | None = None) -> DatasetSpec:
    """Validate a raw spec mapping; relative paths resolve against ``base_dir`` (the spec file's folder)."""
    _check_size(raw)
    r = _Reader()
    top = r.mapping(raw, "spec", {"name", "seed", "version", "sources", "audio", "snippets", "splits", "augment",
                                  "shards", "labels", "licences", "features"})
    # in the order a user reads a spec, so its problems are listed in that order too
    version = _parse_version(r, top)
    features = _parse_features(r, top.get("features"))
    name, seed = _parse_name(r, top), _parse_seed(r, top)
    sources = _parse_sources(r, top.get("sources"), base_dir)
    audio, snippets = _parse_audio(r, top.get("audio")), _parse_snippets(r, top.get("snippets"))
    splits = _parse_splits(r, top.get("splits"))
    augment = _parse_augment(r, top.get("augment"), splits, sources, audio)
    shards, labels = _parse_shards(r, top.get("shards")), _parse_labels(r, top.get("labels"))
    licences = _parse_licences(r, top.get("licences"))
    if r.problems:
        raise SpecError(r.problems)
    return DatasetSpec(name=name, seed=seed, sources=tuple(sources), audio=audio, snippets=snippets, splits=splits,
                       augment=augment, shards=shards, labels=labels, licences=licences, version=version,
                       features=features)


def _parse_version(r: _Reader, top: dict[str, Any]) -> str:
    default = _default(DatasetSpec, "version")
    version = top.get("version", default)
    if not isinstance(version, str) or not SEMVER.match(version):
        r.fail("version", f"must be a semantic version such as 1.0.0 (MAJOR.MINOR.PATCH); got {brief(version)}")
        return default
    return version


def _parse_name(r: _Reader, top: dict[str, Any]) -> str:
    name = top.get("name")
    if not isinstance(name, str) or not DATASET_NAME.match(name):
        r.fail("name", f"required: letters, digits, '.', '_' or '-' (up to 64); got {brief(name)}")
        return "invalid"
    return name


def _parse_seed(r: _Reader, top: dict[str, Any]) -> int:
    if "seed" not in top:
        r.fail("seed", "required: a whole number in [0, 2^32); it seeds every random choice of the build")
    return r.number(top, "seed", "spec", 0, lo=0, hi=2**32 - 1, integer=True)


def _parse_features(r: _Reader, raw: Any) -> tuple[tuple[str, Any], ...]:
    from mixtape.dataset.features import LogMelSpec

    fe = r.mapping(raw, "features", {"logmel"})
    if fe.get("logmel") is None:
        return ()
    where = "features.logmel"
    lm = r.mapping(fe["logmel"] if fe["logmel"] is not True else {}, where,
                   {"n_fft", "hop", "n_mels", "f_min", "f_max", "log_c"})
    d: dict[str, Any] = {f.name: f.default for f in fields(LogMelSpec)}
    params = {"n_fft": r.number(lm, "n_fft", where, d["n_fft"], lo=16, hi=65536, integer=True),
              "hop": r.number(lm, "hop", where, d["hop"], lo=1, hi=65536, integer=True),
              "n_mels": r.number(lm, "n_mels", where, d["n_mels"], lo=1, hi=512, integer=True),
              "f_min": r.number(lm, "f_min", where, d["f_min"], lo=0.0),
              "f_max": None if lm.get("f_max") is None else r.number(lm, "f_max", where, 8000.0, lo=1.0),
              "log_c": r.number(lm, "log_c", where, d["log_c"], lo=0.0, lo_open=True)}
    return (("logmel", tuple(sorted(params.items()))),)


def _parse_sources(r: _Reader, raw: Any, base_dir: Path | None) -> list[SourceSpec]:
    sources: list[SourceSpec] = []
    if not isinstance(raw, list) or not raw:
        r.fail("sources", "required: a list of sources, e.g. `- {kind: folder, path: my_audio}`")
        return sources
    for i, s in enumerate(raw):
        src = _parse_source(r, s, f"sources[{i}]", base_dir)
        if src is None:
            continue
        if any(o.name == src.name for o in sources):
            r.fail(f"sources[{i}].name", f"`{src.name}` is also the id namespace of an earlier source; "
                   "give each source a distinct `name` so their clip ids cannot collide")
        sources.append(src)
    return sources


def _parse_audio(r: _Reader, raw: Any) -> AudioSpec:
    a = r.mapping(raw, "audio", {"sample_rate", "channels", "format", "max_source_channels"})
    d = AudioSpec()
    return AudioSpec(
        sample_rate=r.number(a, "sample_rate", "audio", d.sample_rate, lo=4000, hi=192000, integer=True),
        channels=r.choice(a, "channels", "audio", d.channels, (1, 2)),
        format=r.choice(a, "format", "audio", d.format, AUDIO_FORMATS),
        max_source_channels=r.number(a, "max_source_channels", "audio", d.max_source_channels, lo=1, hi=1024,
                                     integer=True),
    )


def _parse_snippets(r: _Reader, raw: Any) -> SnippetSpec:
    sn = r.mapping(raw, "snippets", {"duration", "hop", "min_rms_db", "max_per_clip"})
    d = SnippetSpec()
    duration = r.number(sn, "duration", "snippets", d.duration, lo=0.05, hi=600.0)
    return SnippetSpec(
        duration=duration,
        hop=r.number(sn, "hop", "snippets", duration, lo=0.0, hi=600.0, lo_open=True),  # default: no overlap
        min_rms_db=r.number(sn, "min_rms_db", "snippets", d.min_rms_db, lo=-200.0, hi=0.0),
        max_per_clip=r.number(sn, "max_per_clip", "snippets", d.max_per_clip, lo=0, hi=10**9, integer=True),
    )


def _parse_folds(r: _Reader, raw: Any, group_by: str) -> list[tuple[str, tuple[str, ...]]]:
    folds: list[tuple[str, tuple[str, ...]]] = []
    if group_by != "fold":
        if raw:
            r.fail("splits.folds", "only applies with group_by: fold")
        return folds
    if not isinstance(raw, dict) or not raw:
        r.fail("splits.folds", "required with group_by: fold: map each split to its folds, e.g. "
               "{train: [1, 2, 3], valid: [4], test: [5]}")
        return folds
    seen: dict[str, str] = {}
    for split_name, values in raw.items():
        vals = values if isinstance(values, list) else [values]
        if not isinstance(split_name, str) or not SPLIT_NAME.match(split_name) or not vals:
            r.fail(f"splits.folds.{split_name}", "split names are lower-case words with a list of fold values")
            continue
        for v in vals:
            if str(v) in seen:
                r.fail(f"splits.folds.{split_name}", f"fold {brief(v)} is already in split `{seen[str(v)]}`")
            seen[str(v)] = split_name
        folds.append((split_name, tuple(str(v) for v in vals)))
    return folds


def _parse_fractions(r: _Reader, raw: Any) -> list[tuple[str, float]]:
    fractions: list[tuple[str, float]] = []
    if not isinstance(raw, dict) or not raw:
        r.fail("splits.fractions", "must map split names to fractions, e.g. {train: 0.8, valid: 0.1, test: 0.1}")
        return fractions
    for k, v in raw.items():
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
    return fractions


def _parse_splits(r: _Reader, raw: Any) -> SplitSpec:
    sp = r.mapping(raw, "splits", {"group_by", "fractions", "folds", "method", "allow_empty"})
    d = SplitSpec()
    group_by = r.choice(sp, "group_by", "splits", d.group_by, GROUP_FIELDS)
    method = r.choice(sp, "method", "splits", d.method, ("hash", "balanced"))
    folds = _parse_folds(r, sp.get("folds"), group_by)
    fractions = _parse_fractions(r, {name: 1.0 / len(folds) for name, _ in folds} if folds  # folds decide
                                 else sp.get("fractions", dict(d.fractions)))
    return SplitSpec(group_by=group_by, fractions=tuple(fractions) or d.fractions, folds=tuple(folds),
                     method=method, allow_empty=r.flag(sp, "allow_empty", "splits", d.allow_empty))


def _parse_chain(r: _Reader, raw: Any, audio: AudioSpec) -> list[OpSpec]:
    if not isinstance(raw, list):
        r.fail("augment.chain", "must be a list of ops, e.g. `- {op: gain, db: [-6, 6]}`")
        return []
    ops = [_parse_op(r, o, f"augment.chain[{i}]", audio) for i, o in enumerate(raw)]
    return [op for op in ops if op is not None]


def _parse_augment(r: _Reader, raw: Any, splits: SplitSpec, sources: list[SourceSpec], audio: AudioSpec
                   ) -> AugmentSpec:
    au = r.mapping(raw, "augment", {"variants", "keep_original", "splits", "chain", "mix_with",
                                    "impulse_responses", "labels"})
    d = AugmentSpec()
    chain = _parse_chain(r, au.get("chain", list(d.chain)), audio)
    variants = r.number(au, "variants", "augment", d.variants, lo=0, hi=64, integer=True)
    if variants and not chain:
        r.fail("augment.variants", f"is {variants} but augment.chain is empty: add ops or set variants: 0")
    keep_original = r.flag(au, "keep_original", "augment", d.keep_original)
    aug_splits = au.get("splits", list(d.splits))
    if not isinstance(aug_splits, list) or any(s not in dict(splits.fractions) for s in aug_splits):
        r.fail("augment.splits", f"must list split names from splits.fractions; got {brief(aug_splits)}")
        aug_splits = list(d.splits)
    if not keep_original and variants == 0:
        r.fail("augment.keep_original", "is false and variants is 0: no sample would be written")
    material = _parse_material(r, au, chain, [src.name for src in sources])
    return AugmentSpec(variants=variants, keep_original=keep_original, splits=tuple(aug_splits),
                       chain=tuple(chain), mix_with=material["mix_with"],
                       impulse_responses=material["impulse_responses"],
                       labels=r.choice(au, "labels", "augment", d.labels, ("transform", "keep")))


def _parse_material(r: _Reader, au: dict[str, Any], chain: list[OpSpec], source_names: list[str]
                    ) -> dict[str, str | None]:
    """The sources ``mix`` and ``reverb`` draw from, each checked against the chain that uses it."""
    material: dict[str, str | None] = {}
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
    if source_names and len(set(source_names) - {v for v in material.values() if v}) == 0:
        r.fail("sources", "every source is mixing or impulse-response material: add a source of samples")
    return material


def _parse_shards(r: _Reader, raw: Any) -> ShardSpec:
    sh = r.mapping(raw, "shards", {"max_samples", "scheme"})
    d = ShardSpec()
    shards = ShardSpec(max_samples=r.number(sh, "max_samples", "shards", d.max_samples, lo=1, hi=10_000_000,
                                            integer=True),
                       scheme=r.choice(sh, "scheme", "shards", d.scheme, ("stable", "balanced")))
    if shards.scheme == "stable" and shards.max_samples < MIN_STABLE_SHARD_SAMPLES:
        r.fail("shards.max_samples", f"must be at least {MIN_STABLE_SHARD_SAMPLES} with scheme stable (hash ranges of "
               f"{shards.max_samples} sample(s) would need about n^2 ranges for n samples); raise it, or set "
               "shards.scheme: balanced for shards this small")
    return shards


def _parse_labels(r: _Reader, raw: Any) -> LabelSpec:
    lb = r.mapping(raw, "labels", {"tags", "classes", "map"})
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
    return LabelSpec(tag_min_count=r.number(tg, "min_count", "labels.tags", LabelSpec().tag_min_count, lo=1,
                                            integer=True),
                     class_values=tuple(sorted(class_values)), value_map=tuple(sorted(value_map)))


def _parse_licences(r: _Reader, raw: Any) -> LicenceSpec:
    li = r.mapping(raw, "licences", {"allow", "deny"})
    d = LicenceSpec()
    lists = {}
    for key, default in (("allow", d.allow), ("deny", d.deny)):
        v = li.get(key, list(default))
        if not isinstance(v, list) or any(x not in LICENCE_FAMILIES for x in v):
            r.fail(f"licences.{key}", f"must list licence families from: {', '.join(LICENCE_FAMILIES)}; got {brief(v)}")
            v = list(default)
        lists[key] = tuple(v)
    return LicenceSpec(allow=lists["allow"], deny=lists["deny"])


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

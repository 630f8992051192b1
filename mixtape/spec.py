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

from mixtape.augment.ops import OPS
from mixtape.hashing import canonical_json, sha256_hex

SOURCE_KINDS = ("freesound_dump", "folder")
GROUP_FIELDS = ("clip", "uploader", "pack", "artist", "album")
AUDIO_FORMATS = ("flac", "wav")
SPLIT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
DATASET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class SpecError(ValueError):
    """A spec problem, or several; each names the field, what is wrong and how to fix it."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid dataset spec:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True)
class SourceSpec:
    kind: str
    #: as the user wrote it (kept in the card, so the spec hash does not depend on where the spec lives)
    path: str
    metadata: str | None = None
    acousticbrainz: str | None = None
    extensions: tuple[str, ...] = ("flac", "wav", "ogg", "mp3")
    class_field: str | None = None
    #: ``path`` and ``acousticbrainz`` resolved against the spec file's folder; not part of the spec hash
    root: str = field(default="", compare=False)
    acousticbrainz_root: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class AudioSpec:
    sample_rate: int = 16000
    channels: int = 1
    format: str = "flac"


@dataclass(frozen=True)
class SnippetSpec:
    duration: float = 3.0
    hop: float = 3.0
    min_rms_db: float = -60.0

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


@dataclass(frozen=True)
class OpSpec:
    """One augmentation op: its name, the probability it applies, and the ranges its parameters come from."""

    op: str
    p: float = 1.0
    ranges: tuple[tuple[str, tuple[float, float]], ...] = ()


@dataclass(frozen=True)
class AugmentSpec:
    variants: int = 0
    keep_original: bool = True
    splits: tuple[str, ...] = ("train",)
    chain: tuple[OpSpec, ...] = ()


@dataclass(frozen=True)
class ShardSpec:
    max_samples: int = 256


@dataclass(frozen=True)
class LabelSpec:
    tag_min_count: int = 1


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    seed: int
    sources: tuple[SourceSpec, ...]
    audio: AudioSpec = field(default_factory=AudioSpec)
    snippets: SnippetSpec = field(default_factory=SnippetSpec)
    splits: SplitSpec = field(default_factory=SplitSpec)
    augment: AugmentSpec = field(default_factory=AugmentSpec)
    shards: ShardSpec = field(default_factory=ShardSpec)
    labels: LabelSpec = field(default_factory=LabelSpec)

    def to_dict(self) -> dict[str, Any]:
        """The normalised spec as plain JSON-able data, in the same shape a user writes."""
        d = asdict(self)
        d["splits"]["fractions"] = dict(self.splits.fractions)
        d["augment"]["chain"] = [
            {"op": o.op, "p": o.p, **{k: list(v) for k, v in o.ranges}} for o in self.augment.chain
        ]
        d["augment"]["splits"] = list(self.augment.splits)
        d["labels"] = {"tags": {"min_count": self.labels.tag_min_count}}
        d["sources"] = list(d["sources"])
        for s in d["sources"]:
            s["extensions"] = list(s["extensions"])
            del s["root"], s["acousticbrainz_root"]
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
            self.fail(f"{where}.{k}", f"unknown field; allowed here: {', '.join(sorted(known))}")
        return raw

    def number(self, raw: dict, key: str, where: str, default: float, *, lo: float | None = None,
               hi: float | None = None, integer: bool = False, lo_open: bool = False) -> Any:
        v = raw.get(key, default)
        path = f"{where}.{key}"
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and not math.isfinite(v)):
            self.fail(path, f"must be a {'whole ' if integer else ''}number, got {v!r}")
            return default
        if integer and v != int(v):
            self.fail(path, f"must be a whole number, got {v!r}")
            return default
        if lo is not None and (v <= lo if lo_open else v < lo):
            self.fail(path, f"must be {'>' if lo_open else '>='} {lo}, got {v!r}")
            return default
        if hi is not None and v > hi:
            self.fail(path, f"must be <= {hi}, got {v!r}")
            return default
        return int(v) if integer else float(v)

    def choice(self, raw: dict, key: str, where: str, default: Any, options: tuple) -> Any:
        v = raw.get(key, default)
        if v not in options:
            self.fail(f"{where}.{key}", f"must be one of {', '.join(map(str, options))}; got {v!r}")
            return default
        return v


def _resolve(path: str, base: Path | None) -> str:
    p = Path(path).expanduser()
    if not p.is_absolute() and base is not None:
        p = base / p
    return str(p)


def _parse_source(r: _Reader, raw: Any, where: str, base: Path | None) -> SourceSpec | None:
    known = {"kind", "path", "metadata", "acousticbrainz", "extensions", "class_field"}
    m = r.mapping(raw, where, known)
    if not m:
        r.fail(where, "a source needs at least `kind` and `path`")
        return None
    kind = m.get("kind")
    if kind not in SOURCE_KINDS:
        r.fail(f"{where}.kind", f"must be one of {', '.join(SOURCE_KINDS)}; got {kind!r}")
        return None
    path = m.get("path")
    if not isinstance(path, str) or not path:
        r.fail(f"{where}.path", "required: the directory that holds the collection")
        return None
    exts = m.get("extensions", list(SourceSpec.extensions))
    if not isinstance(exts, list) or not all(isinstance(e, str) and e for e in exts):
        r.fail(f"{where}.extensions", f"must be a list of file extensions such as [flac, wav]; got {exts!r}")
        exts = list(SourceSpec.extensions)
    for opt in ("metadata", "acousticbrainz", "class_field"):
        if m.get(opt) is not None and not isinstance(m[opt], str):
            r.fail(f"{where}.{opt}", f"must be a string; got {m[opt]!r}")
    if kind == "folder" and ("metadata" in m or "acousticbrainz" in m):
        r.fail(where, "`metadata` and `acousticbrainz` belong to kind: freesound_dump, not kind: folder")
    ab = m.get("acousticbrainz")
    return SourceSpec(
        kind=kind,
        path=path,
        metadata=m.get("metadata") if isinstance(m.get("metadata"), str) else None,
        acousticbrainz=ab if isinstance(ab, str) else None,
        extensions=tuple(sorted({e.lower().lstrip(".") for e in exts})),
        class_field=m.get("class_field") if isinstance(m.get("class_field"), str) else None,
        root=_resolve(path, base),
        acousticbrainz_root=_resolve(ab, base) if isinstance(ab, str) else None,
    )


def _parse_range(r: _Reader, v: Any, where: str) -> tuple[float, float] | None:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return (float(v), float(v))
    if (isinstance(v, list) and len(v) == 2 and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                    for x in v) and v[0] <= v[1]):
        return (float(v[0]), float(v[1]))
    r.fail(where, f"must be a number or a [low, high] pair with low <= high; got {v!r}")
    return None


def _parse_op(r: _Reader, raw: Any, where: str) -> OpSpec | None:
    if not isinstance(raw, dict) or "op" not in raw:
        r.fail(where, "each chain entry is a mapping with `op` (e.g. `{op: gain, p: 0.5, db: [-6, 6]}`)")
        return None
    name = raw["op"]
    if name not in OPS:
        r.fail(f"{where}.op", f"unknown op {name!r}; available: {', '.join(sorted(OPS))}")
        return None
    op = OPS[name]
    r.mapping(raw, where, {"op", "p", *op.param_ranges})
    p = r.number(raw, "p", where, 1.0, lo=0.0, hi=1.0)
    ranges = []
    for pname, (lo, hi) in op.param_ranges.items():
        rng = _parse_range(r, raw.get(pname, list(op.default_ranges[pname])), f"{where}.{pname}")
        if rng is None:
            continue
        if rng[0] < lo or rng[1] > hi:
            r.fail(f"{where}.{pname}", f"must lie within [{lo}, {hi}]; got {list(rng)}")
            continue
        ranges.append((pname, rng))
    return OpSpec(op=name, p=p, ranges=tuple(ranges))


def parse_spec(raw: Any, base_dir: Path | None = None) -> DatasetSpec:
    """Validate a raw spec mapping; relative paths resolve against ``base_dir`` (the spec file's folder)."""
    r = _Reader()
    top = r.mapping(raw, "spec", {"name", "seed", "sources", "audio", "snippets", "splits", "augment",
                                  "shards", "labels"})
    name = top.get("name")
    if not isinstance(name, str) or not DATASET_NAME.match(name):
        r.fail("name", f"required: letters, digits, '.', '_' or '-' (up to 64); got {name!r}")
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
                sources.append(src)

    a = r.mapping(top.get("audio"), "audio", {"sample_rate", "channels", "format"})
    audio = AudioSpec(
        sample_rate=r.number(a, "sample_rate", "audio", 16000, lo=4000, hi=192000, integer=True),
        channels=r.choice(a, "channels", "audio", 1, (1, 2)),
        format=r.choice(a, "format", "audio", "flac", AUDIO_FORMATS),
    )

    sn = r.mapping(top.get("snippets"), "snippets", {"duration", "hop", "min_rms_db"})
    duration = r.number(sn, "duration", "snippets", 3.0, lo=0.05, hi=600.0)
    snippets = SnippetSpec(
        duration=duration,
        hop=r.number(sn, "hop", "snippets", duration, lo=0.0, hi=600.0, lo_open=True),
        min_rms_db=r.number(sn, "min_rms_db", "snippets", -60.0, lo=-200.0, hi=0.0),
    )

    sp = r.mapping(top.get("splits"), "splits", {"group_by", "fractions"})
    group_by = r.choice(sp, "group_by", "splits", "clip", GROUP_FIELDS)
    fr_raw = sp.get("fractions", dict(SplitSpec.fractions))
    fractions: list[tuple[str, float]] = []
    if not isinstance(fr_raw, dict) or not fr_raw:
        r.fail("splits.fractions", "must map split names to fractions, e.g. {train: 0.8, valid: 0.1, test: 0.1}")
    else:
        for k, v in fr_raw.items():
            if not isinstance(k, str) or not SPLIT_NAME.match(k):
                r.fail(f"splits.fractions.{k}", "split names are lower-case words such as train, valid, test")
            elif isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 1:
                r.fail(f"splits.fractions.{k}", f"must be a fraction in (0, 1]; got {v!r}")
            else:
                fractions.append((k, float(v)))
        total = sum(v for _, v in fractions)
        if fractions and abs(total - 1.0) > 1e-6:
            r.fail("splits.fractions", f"must add up to 1; they add up to {total:g}")
    if fractions and "train" not in dict(fractions):
        r.fail("splits.fractions", "needs a `train` split")
    splits = SplitSpec(group_by=group_by, fractions=tuple(fractions) or SplitSpec.fractions)

    au = r.mapping(top.get("augment"), "augment", {"variants", "keep_original", "splits", "chain"})
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
        r.fail("augment.keep_original", f"must be true or false; got {keep_original!r}")
        keep_original = True
    aug_splits = au.get("splits", ["train"])
    if not isinstance(aug_splits, list) or any(s not in dict(splits.fractions) for s in aug_splits):
        r.fail("augment.splits", f"must list split names from splits.fractions; got {aug_splits!r}")
        aug_splits = ["train"]
    if not keep_original and variants == 0:
        r.fail("augment.keep_original", "is false and variants is 0: no sample would be written")
    augment = AugmentSpec(variants=variants, keep_original=keep_original, splits=tuple(aug_splits),
                          chain=tuple(chain))

    sh = r.mapping(top.get("shards"), "shards", {"max_samples"})
    shards = ShardSpec(max_samples=r.number(sh, "max_samples", "shards", 256, lo=1, hi=10_000_000, integer=True))

    lb = r.mapping(top.get("labels"), "labels", {"tags"})
    tg = r.mapping(lb.get("tags"), "labels.tags", {"min_count"})
    labels = LabelSpec(tag_min_count=r.number(tg, "min_count", "labels.tags", 1, lo=1, integer=True))

    if r.problems:
        raise SpecError(r.problems)
    return DatasetSpec(name=name, seed=seed, sources=tuple(sources), audio=audio, snippets=snippets,
                       splits=splits, augment=augment, shards=shards, labels=labels)


def load_spec(path: str | Path) -> DatasetSpec:
    """Read and validate a spec file (YAML, loaded safely)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise SpecError([f"{p}: cannot read the spec file ({e.strerror})"]) from e
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise SpecError([f"{p}: not valid YAML: {e}"]) from e
    return parse_spec(raw, p.resolve().parent)


def spec_from_dict(d: dict[str, Any], base_dir: Path | None = None) -> DatasetSpec:
    """Rebuild a spec from its normalised form (as stored in a dataset card)."""
    return parse_spec(d, base_dir)

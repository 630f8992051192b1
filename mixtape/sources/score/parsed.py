"""Parsed scores kept on disk, so each score is parsed once per machine rather than once per phase and worker.

music21 spends 0.2-0.6 s on a chorale or a madrigal, about four fifths of a score build, and a build needs
each score's performance at least twice (the probe renders it, and every render worker renders it again),
a benchmark that builds five datasets from one collection ten times. A :class:`Performance` is a pure
function of the score's bytes, its format and tune, the parsers' versions and this module's
``PARSE_VERSION``, so it is stored under a key made of exactly those, as JSON (never pickle: the folder is
a cache anyone may have written to, and a file that does not read back as a performance is a miss).

The folder is ``$MIXTAPE_CACHE_DIR/performances`` (default ``$XDG_CACHE_HOME/mixtape``, then
``~/.cache/mixtape``); ``MIXTAPE_CACHE_DIR=off`` turns the disk cache off. Output bytes never depend on it:
a hit returns the same performance a parse would.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path
from typing import Any

from mixtape.hashing import sha256_hex
from mixtape.sources.score.formats import read_performance
from mixtape.sources.score.performance import Note, Part, Performance

#: bump when ``formats.read_performance`` changes what it makes of the same bytes
PARSE_VERSION = 1
#: performances kept in memory per process (a chorale's is ~30 KB)
MEMORY_ENTRIES = 512
CACHE_ENV = "MIXTAPE_CACHE_DIR"

_memory: OrderedDict[str, Performance] = OrderedDict()
_lock = threading.Lock()


def cache_dir() -> Path | None:
    """Where parsed performances are kept, or None when ``MIXTAPE_CACHE_DIR=off``."""
    configured = os.environ.get(CACHE_ENV, "")
    if configured.lower() == "off":
        return None
    if configured:
        return Path(configured).expanduser() / "performances"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mixtape" / "performances"


@lru_cache(maxsize=1)
def _parser_versions() -> str:
    from importlib import metadata

    out = []
    for package in ("music21", "pretty_midi", "mido"):
        try:
            out.append(f"{package}={metadata.version(package)}")
        except metadata.PackageNotFoundError:
            out.append(f"{package}=absent")
    return ",".join(out)


def performance_key(data: bytes, fmt: str, tune: int) -> str:
    """The cache key of one score: everything its performance depends on."""
    return sha256_hex(f"{PARSE_VERSION}/{_parser_versions()}/{fmt}/{tune}/{sha256_hex(data)}".encode())


def to_json(perf: Performance) -> dict[str, Any]:
    return {"parts": [[p.name, p.program, p.is_drum] for p in perf.parts],
            "notes": [[n.start, n.end, n.pitch, n.velocity, n.part] for n in perf.notes],
            "tempo": perf.tempo, "tempo_source": perf.tempo_source, "meter": perf.meter,
            "key_signature": perf.key_signature, "title": perf.title, "composer": perf.composer,
            "rights": perf.rights, "extra": perf.extra}


def from_json(d: Any) -> Performance:
    """A performance from :func:`to_json`'s shape; anything else raises ValueError (a cache miss)."""
    try:
        parts = tuple(Part(name=_typed(name, str), program=None if program is None else _typed(program, int),
                           is_drum=_typed(drum, bool)) for name, program, drum in d["parts"])
        notes = tuple(Note(float(_typed(s, (int, float))), float(_typed(e, (int, float))), _typed(p, int),
                           _typed(v, int), _typed(i, int)) for s, e, p, v, i in d["notes"])
        if any(not 0 <= n.part < len(parts) for n in notes):
            raise ValueError("a note names a part the performance does not have")
        key_signature = d["key_signature"]
        if key_signature is not None and not isinstance(key_signature, dict):
            raise ValueError("key_signature is not an object")
        return Performance(parts=parts, notes=notes, tempo=float(_typed(d["tempo"], (int, float))),
                           tempo_source=_typed(d["tempo_source"], str), meter=_typed(d["meter"], str),
                           key_signature=key_signature, title=_typed(d["title"], str),
                           composer=_typed(d["composer"], str), rights=_typed(d["rights"], str),
                           extra=_typed(d["extra"], dict))
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"not a cached performance: {e}") from None


def _typed(value: Any, kind: type | tuple[type, ...]) -> Any:
    if isinstance(value, bool) and kind in (int, (int, float)):
        raise ValueError("a number is a boolean")
    if not isinstance(value, kind):
        raise ValueError(f"{type(value).__name__} where {kind} belongs")
    return value


def parsed_performance(data: bytes, fmt: str, tune: int = 0) -> Performance:
    """:func:`read_performance`, from memory or the disk cache when this score was parsed before. Errors
    are not cached (a bad score raises its :class:`ScoreError` every time)."""
    key = performance_key(data, fmt, tune)
    with _lock:
        hit = _memory.get(key)
        if hit is not None:
            _memory.move_to_end(key)
            return hit
    folder = cache_dir()
    perf = _load(folder / f"{key}.json") if folder is not None else None
    if perf is None:
        perf = read_performance(data, fmt, tune)
        if folder is not None:
            _store(folder, key, perf)
    with _lock:
        _memory[key] = perf
        while len(_memory) > MEMORY_ENTRIES:
            _memory.popitem(last=False)
    return perf


def _load(path: Path) -> Performance | None:
    try:
        return from_json(json.loads(path.read_bytes()))
    except (OSError, ValueError):  # absent, unreadable, or not ours: parse again
        return None


def _store(folder: Path, key: str, perf: Performance) -> None:
    """Write atomically (a concurrent reader sees the whole file or none); a cache that cannot be written
    (read-only home, full disk) only costs the next parse."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{key}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(to_json(perf), f, separators=(",", ":"))
            os.replace(tmp, folder / f"{key}.json")  # ok: our own temporary file onto our own cache entry
        except BaseException:
            os.unlink(tmp)  # ok: the temporary file this function just created
            raise
    except OSError:
        return

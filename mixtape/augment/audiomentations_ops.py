"""audiomentations transforms as planned ops: ``{op: audiomentations.<Transform>, p: 0.3, <its arguments>}``.

A chain entry names any waveform transform the installed audiomentations offers and gives its constructor
arguments; mixtape checks them against the transform's signature, and then treats the transform like its
own ops: whether it applies and every parameter it draws are decided in the plan phase from the sample's
key-seeded generator and recorded (plan, index, sample JSON); the render applies those recorded parameters,
frozen, so the bytes are the same on every runner and a sample re-renders alone.

audiomentations draws from Python's and numpy's *global* generators (``random.uniform``,
``np.random.randn``). mixtape never reads or moves that global state: for the duration of one draw or one
application it rebinds the names ``random`` and ``np`` in the transform's own modules to private
generators seeded from the sample (``random.Random`` and numpy's ``RandomState``, whose streams both
libraries keep stable across versions), under a lock, and restores them afterwards.

Transforms that move audio in pitch or time (the labels would no longer describe the audio) are refused in
favour of mixtape's label-aware ``pitch_shift`` / ``time_stretch``; those that read files point at
``augment.mix_with`` / ``augment.impulse_responses``.
"""

from __future__ import annotations

import functools
import inspect
import json
import random
import sys
import threading
import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

PREFIX = "audiomentations."
#: transforms refused, and what to use instead
REFUSED = {
    "PitchShift": "mixtape's `pitch_shift`, which transposes the key, chords and notes with the audio",
    "TimeStretch": "mixtape's `time_stretch`, which scales the tempo and every time label with the audio",
    "Shift": "nothing: shifting moves every timed label; cut other windows with `snippets.hop` instead",
    "Resample": "`audio.sample_rate` (a resample changes pitch and time unless it is undone)",
    "Reverse": "nothing: reversed audio has no key, chords or tempo the labels could follow",
    "RepeatPart": "nothing: repeating a part moves the timed labels after it",
    "Trim": "nothing: trimming changes the sample's length and moves its timed labels",
    "AdjustDuration": "`snippets.duration`",
    "AddBackgroundNoise": "mixtape's `mix` with `augment.mix_with: <source>` (the noise then credited and recorded)",
    "AddShortNoises": "mixtape's `mix` with `augment.mix_with: <source>`",
    "ApplyImpulseResponse": "mixtape's `reverb` with `augment.impulse_responses: <source>`",
    "Lambda": "nothing: a function cannot be written in a spec or recorded in a plan",
}
#: the keys a recorded step holds besides the transform's own parameters
RESERVED = ("op", "init", "seed")

_LOCK = threading.RLock()


class TransformError(ValueError):
    """A chain entry naming an audiomentations transform mixtape cannot plan: the message names the fix."""


def is_audiomentations(name: str) -> bool:
    return isinstance(name, str) and name.startswith(PREFIX)


@functools.cache
def _library() -> types.ModuleType:
    import audiomentations

    return audiomentations


def offered() -> list[str]:
    """Every waveform transform of the installed audiomentations that mixtape plans, as ``op`` names."""
    lib = _library()
    base = lib.core.transforms_interface.BaseWaveformTransform
    return sorted(f"{PREFIX}{n}" for n, c in vars(lib).items()
                  if isinstance(c, type) and issubclass(c, base) and c is not base and n not in REFUSED)


def transform_class(name: str) -> type:
    """The transform an ``op`` names, or :class:`TransformError` saying why it cannot be planned."""
    short = name[len(PREFIX):]
    if short in REFUSED:
        raise TransformError(f"{name} is not planned by mixtape: use {REFUSED[short]}")
    lib = _library()
    cls = getattr(lib, short, None)
    base = lib.core.transforms_interface.BaseWaveformTransform
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise TransformError(f"audiomentations {lib.__version__} has no waveform transform {short!r}; it has "
                             + ", ".join(o[len(PREFIX):] for o in offered()))
    return cls


def arguments(name: str) -> list[str]:
    """The constructor arguments a spec may give the transform (``p`` is mixtape's own)."""
    sig = inspect.signature(transform_class(name))
    return [p for p in sig.parameters if p != "p" and
            sig.parameters[p].kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)]


def check(name: str, init: dict[str, Any], sample_rate: int = 16000, channels: int = 1) -> list[tuple[str, str]]:
    """Problems with a chain entry's arguments, as (argument or "", what is wrong); empty when the transform
    builds and renders a trial second of audio at the dataset's rate (so a missing optional backend, or
    a cutoff above Nyquist, fails the spec, not the build)."""
    try:
        allowed = arguments(name)
    except TransformError as e:
        return [("op", str(e))]
    problems = [(k, f"is not an argument of {name} (it takes {', '.join(allowed)})")
                for k in init if k not in allowed]
    bad = [k for k, v in init.items() if not _json_scalar_or_list(v)]
    problems += [(k, "must be a number, a string, a boolean or a list of them") for k in bad]
    if problems:
        return problems
    try:
        _build(name, json.dumps(init, sort_keys=True))
    except ImportError as e:
        return [("op", f"{name} needs a package that is not installed ({e}); pip install it, or drop the op")]
    except Exception as e:  # the transform's own validation (an assert, a ValueError, ...)
        return [("", f"{name} refuses these arguments: {type(e).__name__}: {e}")]
    t = np.arange(sample_rate, dtype=np.float32) / sample_rate
    trial = np.repeat((0.3 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 1870 * t))[None], channels, 0)
    try:
        realise(trial, sample_rate, {"op": name, "init": init, "seed": 0})
    except ImportError as e:
        return [("op", f"{name} needs a package that is not installed ({e}); pip install it, or drop the op")]
    except Exception as e:
        return [("", f"{name} fails on a trial second of {channels}-channel audio at {sample_rate} Hz: "
                     f"{type(e).__name__}: {e}")]
    return []


def _json_scalar_or_list(v: Any) -> bool:
    if isinstance(v, (list, tuple)):
        return all(_json_scalar_or_list(x) for x in v)
    return v is None or isinstance(v, (bool, int, float, str))


@functools.lru_cache(maxsize=256)
def _build(name: str, init_json: str) -> Any:
    """One instance per (transform, arguments) and process; it draws only under :func:`_private_generators`."""
    return transform_class(name)(p=1.0, **json.loads(init_json))


def _modules() -> list[types.ModuleType]:
    """Every loaded audiomentations module: a transform's code may live in its bases' modules and in the
    transforms it holds (SevenBandParametricEQ holds filters)."""
    return [m for n, m in sorted(sys.modules.items())
            if (n == "audiomentations" or n.startswith("audiomentations.")) and isinstance(m, types.ModuleType)]


class _NumpyWithPrivateRandom(types.ModuleType):
    """numpy, but ``np.random`` is one private, seeded ``RandomState`` (the legacy API the code calls)."""

    def __init__(self, state: np.random.RandomState):
        super().__init__("numpy")
        self.random = state

    def __getattr__(self, name: str) -> Any:
        return getattr(np, name)


@contextmanager
def _private_generators(seed: int) -> Iterator[None]:
    py = random.Random(seed)
    fake_np = _NumpyWithPrivateRandom(np.random.RandomState(seed % 2**32))
    with _LOCK:
        saved = [(m, {k: vars(m)[k] for k in ("random", "np") if k in vars(m)}) for m in _modules()]
        try:
            for m, names in saved:
                if "random" in names:
                    m.random = py  # type: ignore[attr-defined]
                if "np" in names:
                    m.np = fake_np  # type: ignore[attr-defined]
            yield
        finally:
            for m, names in saved:
                for k, v in names.items():
                    setattr(m, k, v)


def _plain(value: Any) -> Any:
    """A drawn parameter as JSON: numpy scalars and arrays become numbers and lists."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _shaped(audio: np.ndarray) -> np.ndarray:
    """(channels, frames) as audiomentations takes it: mono as one dimension."""
    return audio[0] if audio.shape[0] == 1 else audio


def draw(name: str, init: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    """The planned step: the transform, its arguments and the seed everything it draws comes from.

    The transform's own parameters are not drawn here: many are functions of the signal (an SNR becomes a
    noise level from the sample's RMS, a clipping percentile a threshold), which the plan, holding metadata
    only, does not have. :func:`realise` draws them from this seed on the rendered audio, the same on every
    runner, and records them."""
    return {"op": name, "init": dict(sorted(init.items())), "seed": int(rng.integers(0, 2**63))}


def realise(audio: np.ndarray, sample_rate: int, step: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
    """The planned step applied, and the step as it happened (its drawn parameters added, to be recorded in
    the sample's JSON and the index). A step that already holds its parameters (a recorded one) is applied
    with them, frozen. The sample keeps its length and channels."""
    name = step["op"]
    transform = _build(name, json.dumps(step.get("init") or {}, sort_keys=True))
    given = {k: v for k, v in step.items() if k not in RESERVED}
    samples = _shaped(np.ascontiguousarray(audio, dtype=np.float32))
    with _private_generators(int(step["seed"])):
        if given:
            transform.parameters = {"should_apply": True, **given}
        else:
            transform.randomize_parameters(samples, sample_rate)
            transform.parameters["should_apply"] = True
        drawn = {k: _plain(v) for k, v in transform.parameters.items() if k != "should_apply"}
        out = transform.apply(samples, sample_rate)
    clash = sorted(set(drawn) & set(RESERVED))
    if clash:
        raise TransformError(f"{name} draws parameters named {', '.join(clash)}, which mixtape's record uses")
    out = np.asarray(out, dtype=np.float32).reshape(audio.shape[0], -1)
    if out.shape != audio.shape:
        raise TransformError(f"{name} changed the sample's shape from {audio.shape} to {out.shape}; mixtape "
                             "keeps every sample's length")
    return out, {**step, **dict(sorted(drawn.items()))}

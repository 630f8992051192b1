"""The registry of augmentation ops: each pairs an audio transform with the label transform it implies and
declares its parameters (what the spec may set and how the plan draws them).

Order of application: the warp ops always come first: ``speed`` (one resample), then ``pitch_shift`` and
``time_stretch`` fused into one stretch-and-transpose pass (one analysis/synthesis, however both are set);
the other ops follow in chain order. Labels are transformed in the same order as the audio, so they
always describe what was rendered.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mixtape.augment import dsp
from mixtape.augment.label_transforms import (
    mark_stale,
    mix_labels,
    pitch_shift_labels,
    speed_labels,
    time_stretch_labels,
)

Params = Mapping[str, Any]
Labels = dict[str, Any]


@dataclass(frozen=True)
class Range:
    """A number drawn uniformly from [low, high] (the spec's range, within ``bounds``)."""

    bounds: tuple[float, float]
    default: tuple[float, float]
    integer: bool = False
    decimals: int = 4


@dataclass(frozen=True)
class Choice:
    """One of the spec's values, drawn uniformly."""

    values: tuple[str, ...]
    default: tuple[str, ...]


@dataclass(frozen=True)
class Setting:
    """A fixed choice the spec makes for the op (not drawn)."""

    values: tuple[str, ...]
    default: str
    #: a setting added after datasets were built with its default implied: left out of the spec, the plan and
    #: the samples when it has its default, so those datasets keep their bytes
    implicit_default: bool = False


#: Signalsmith Stretch's presets: ``cheaper`` costs 29% less CPU for 0.8 dB of log-mel difference on music
#: with the same pitch and onset agreement (``bench/warp.py``); one ``cheaper`` step makes the fused pass so.
WARP_PRESET = Setting(("default", "cheaper"), "default", implicit_default=True)


@dataclass
class Context:
    """What an op needs besides the sample: the mixing partner and impulse response, already at the
    target rate, and the partner's labels."""

    partner: np.ndarray | None = None
    partner_labels: Labels = field(default_factory=dict)
    ir: np.ndarray | None = None


@dataclass(frozen=True)
class Op:
    name: str
    params: Mapping[str, Range | Choice | Setting]
    audio: Callable[[np.ndarray, int, Params, Context], np.ndarray]
    labels: Callable[[Labels, Params, Context], Labels]
    #: the op draws a ``seed`` for its own noise (so the noise is part of the recorded parameters)
    seeded: bool = False
    #: the op needs material from elsewhere in the dataset: "partner" (mix) or "ir" (reverb)
    needs: str | None = None
    #: applied in the fused warp pass, before the others
    warp: bool = False
    #: for ops that draw at render (audiomentations): the audio and the step as it happened, to record
    realise: Callable[[np.ndarray, int, dict[str, Any]], tuple[np.ndarray, dict[str, Any]]] | None = None


def _same(labels: Labels, params: Params, ctx: Context) -> Labels:
    return labels


def _reverb_audio(audio: np.ndarray, sr: int, p: Params, ctx: Context) -> np.ndarray:
    ir = ctx.ir if ctx.ir is not None else dsp.synthetic_ir(sr, p["rt60"], p["seed"])
    return dsp.reverb(audio, ir, p["wet"])


def _mix_audio(audio: np.ndarray, sr: int, p: Params, ctx: Context) -> np.ndarray:
    if ctx.partner is None:
        raise ValueError("mix needs a partner: the plan must resolve one")
    return dsp.mix(audio, ctx.partner, p["snr_db"], int(p["offset"] * audio.shape[1]))


OPS: dict[str, Op] = {op.name: op for op in (
    Op("pitch_shift", {"semitones": Range((-12, 12), (-2, 2), integer=True),
                       "steps": Setting(("semitone", "continuous"), "semitone"), "preset": WARP_PRESET},
       audio=lambda a, sr, p, c: a,  # applied in the warp pass
       labels=lambda lab, p, c: pitch_shift_labels(lab, p["semitones"]), warp=True),
    Op("time_stretch", {"rate": Range((0.5, 2.0), (0.8, 1.25)), "preset": WARP_PRESET},
       audio=lambda a, sr, p, c: a,
       labels=lambda lab, p, c: time_stretch_labels(lab, p["rate"]), warp=True),
    Op("speed", {"semitones": Range((-12, 12), (-1, 1), integer=True)},
       audio=lambda a, sr, p, c: a,  # applied in the warp pass, before any stretch
       labels=lambda lab, p, c: speed_labels(lab, p["semitones"]), warp=True),
    Op("gain", {"db": Range((-60, 24), (-6, 6))},
       audio=lambda a, sr, p, c: dsp.gain(a, p["db"]), labels=_same),
    Op("mix", {"snr_db": Range((-20, 40), (0, 12)), "offset": Range((0, 1), (0, 0)),
               "labels": Setting(("union", "soft"), "union"), "key_tempo": Setting(("dominant", "clear"), "dominant")},
       audio=_mix_audio,
       labels=lambda lab, p, c: mix_labels(lab, c.partner_labels, p["snr_db"], p["labels"], p["key_tempo"]),
       needs="partner"),
    Op("add_noise", {"snr_db": Range((-10, 80), (10, 30)),
                     "colour": Choice(tuple(dsp.NOISE_SLOPES), ("white", "pink", "brown"))},
       audio=lambda a, sr, p, c: dsp.add_noise(a, p["snr_db"], p["colour"], p["seed"]), labels=_same, seeded=True),
    Op("filter", {"type": Choice(("lowpass", "highpass", "bandpass", "peaking"),
                                 ("lowpass", "highpass", "bandpass", "peaking")),
                  "freq_hz": Range((20, 20000), (200, 4000), decimals=1), "q": Range((0.1, 10), (0.5, 2)),
                  "gain_db": Range((-24, 24), (-12, 12))},
       audio=lambda a, sr, p, c: dsp.filter_(a, sr, p["type"], p["freq_hz"], p["q"], p["gain_db"]), labels=_same),
    Op("reverb", {"wet": Range((0, 1), (0.1, 0.5)), "rt60": Range((0.05, 5), (0.2, 1.2))},
       audio=_reverb_audio, labels=_same, seeded=True, needs="ir"),
    Op("clip", {"threshold": Range((0.05, 1.0), (0.3, 0.9)), "mode": Choice(("hard", "soft"), ("hard", "soft"))},
       audio=lambda a, sr, p, c: dsp.clip(a, p["threshold"], p["mode"] == "soft"), labels=_same),
    Op("compress", {"threshold_db": Range((-60, 0), (-30, -10)), "ratio": Range((1, 20), (2, 8))},
       audio=lambda a, sr, p, c: dsp.compress(a, sr, p["threshold_db"], p["ratio"]), labels=_same),
)}


@functools.cache
def _audiomentations_op(name: str) -> Op:
    from mixtape.augment import audiomentations_ops

    return Op(name, {}, audio=lambda a, sr, p, c: audiomentations_ops.realise(a, sr, dict(p))[0], labels=_same,
              realise=audiomentations_ops.realise)


def get_op(name: str) -> Op:
    """The op a chain step names: one of mixtape's own, or an ``audiomentations.<Transform>`` (label-free)."""
    if name in OPS:
        return OPS[name]
    if name.startswith("audiomentations."):
        return _audiomentations_op(name)
    raise KeyError(f"unknown augmentation op {name!r}")


def warp_params(chain: list[dict[str, Any]]) -> tuple[float, float]:
    """(rate, semitones) of the whole warp: the product of stretches and speed factors, the sum of shifts
    and speed intervals (a window of ``duration * rate`` of its source becomes ``duration``)."""
    speed, rate, semitones = _warp_steps(chain)
    return rate * 2.0 ** (speed / 12.0), semitones + speed


def _warp_steps(chain: list[dict[str, Any]]) -> tuple[int, float, float]:
    """(speed semitones, stretch rate, shift semitones): the resample and the stretch-and-transpose pass."""
    speed, rate, semitones = 0, 1.0, 0.0
    for step in chain:
        if step["op"] == "time_stretch":
            rate *= step["rate"]
        elif step["op"] == "pitch_shift":
            semitones += step["semitones"]
        elif step["op"] == "speed":
            speed += int(step["semitones"])
    return speed, rate, semitones


def _order(chain: list[dict[str, Any]]) -> list[int]:
    """Positions in the chain in the order ops apply: the warp ops first, then the rest as listed."""
    warp = [get_op(s["op"]).warp for s in chain]
    return [i for i, w in enumerate(warp) if w] + [i for i, w in enumerate(warp) if not w]


def ordered(chain: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The order ops apply in: the warp ops first, then the rest as the chain lists them."""
    return [chain[i] for i in _order(chain)]


def apply_chain(audio: np.ndarray, sr: int, chain: list[dict[str, Any]], n_out: int | None = None,
                ctx: Context | None = None, realised: list[dict[str, Any]] | None = None) -> np.ndarray:
    """Render one variant. ``audio`` is the source window (``n_out / rate`` frames when stretched);
    the result has exactly ``n_out`` frames (default: the input length). ``realised``, when given, receives
    the chain as it happened, in chain order: each step as planned, with what ops that draw at render
    (audiomentations transforms) drew added."""
    ctx = ctx or Context()
    n_out = audio.shape[1] if n_out is None else n_out
    speed, rate, semitones = _warp_steps(chain)
    cheaper = any(step.get("preset") == "cheaper" for step in chain)
    out = dsp.fit_length(dsp.warp(dsp.speed(audio, sr, speed), sr, rate, semitones, cheaper), n_out)
    happened = list(chain)
    for i in _order(chain):
        op = get_op(chain[i]["op"])
        if op.realise is not None:
            out, happened[i] = op.realise(out, sr, dict(chain[i]))
        elif not op.warp:
            out = op.audio(out, sr, chain[i], ctx)
    if realised is not None:
        realised.extend(happened)
    return np.ascontiguousarray(out, dtype=np.float32)


def apply_chain_labels(labels: Labels, chain: list[dict[str, Any]], ctx: Context | None = None) -> Labels:
    ctx = ctx or Context()
    for step in ordered(chain):
        labels = get_op(step["op"]).labels(labels, step, ctx)
        descriptors = [f"extra.{k}" for k in sorted(labels.get("extra", {})) if k.endswith("_descriptors")]
        labels = mark_stale(labels, descriptors)  # every op changes the signal the descriptors described
    return labels

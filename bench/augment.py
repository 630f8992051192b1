"""Render throughput: mixtape's render step against the script a user would write, on the same variants.

200 variants (pitch ±2 semitones, stretch 0.8–1.25, 30% mixed with a partner at 3–12 dB SNR) of 3 s
snippets at 16 kHz mono, rendered to FLAC by
  (a) mixtape: ``render_sample`` over plan rows in shard (hash) order, as a render task runs them;
  (b) a baseline: ``librosa.load`` of each window (and partner), ``audiomentations.Compose([PitchShift,
      TimeStretch])`` with the same parameters frozen, a hand-written SNR mix, ``soundfile`` FLAC.
Prints audio-seconds of output per CPU-second for both and the ratio. Asserts nothing.

    .venv/bin/python bench/augment.py [--variants 200] [--clips 24]
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import audiomentations as am
import librosa
import numpy as np
import soundfile as sf

from mixtape.cli import quiet_logging
from mixtape.demo.collection import generate
from mixtape.pipelines.ingest import ProbeClip
from mixtape.planning import plan_clip, pool_refs
from mixtape.records import Clip
from mixtape.rendering import SourceCache, render_sample
from mixtape.sources.registry import list_source
from mixtape.spec import parse_spec

SPEC = {
    "name": "bench-augment", "seed": 5,
    "sources": [{"kind": "freesound_dump", "path": "collection/freesound"}],
    "audio": {"sample_rate": 16000, "channels": 1, "format": "flac"},
    "snippets": {"duration": 3.0, "hop": 3.0},
    "splits": {"fractions": {"train": 1.0}},
    "augment": {"variants": 4, "keep_original": False, "chain": [
        {"op": "pitch_shift", "p": 1.0, "semitones": [-2, 2]},
        {"op": "time_stretch", "p": 1.0, "rate": [0.8, 1.25]},
        {"op": "mix", "p": 0.3, "snr_db": [3, 12]},
    ]},
}


def plan_rows(work: Path, n_variants: int):
    spec = parse_spec(SPEC, work)
    clips = []
    for c in list_source(spec.sources[0]):
        if isinstance(c, Clip):
            probed = [x for x in ProbeClip(8).process(c) if isinstance(x, Clip)]
            clips += [replace(p, split="train") for p in probed]
    pool = sorted((ref for c in clips for ref in pool_refs(c, spec)), key=lambda r: r["hash"])
    rows = [r for c in clips for r in plan_clip(c, spec, {"train": pool})]
    rows = sorted(rows, key=lambda r: r.hash)[:n_variants]  # one render task's order: by hash
    return spec, rows


def mixtape_render(spec, rows) -> tuple[float, float]:
    cache = SourceCache(spec.audio)
    t0 = time.process_time()
    for row in rows:
        render_sample(row, cache)
    return time.process_time() - t0, sum(r.duration_ms for r in rows) / 1000


def baseline_flac(row, sr: int = 16000) -> bytes:
    """One sample as a user's script makes it: ``librosa.load`` of the window (and the partner's), the
    plan's pitch shift and stretch through ``audiomentations.Compose``, a hand-written SNR mix, FLAC.
    ``bench/build.py``'s baseline workers call this too."""
    steps = {s["op"]: s for s in row.augment}
    y, _ = librosa.load(row.uri, sr=sr, mono=True, offset=row.src_start_ms / 1000,
                        duration=row.src_duration_ms / 1000)
    if "pitch_shift" in steps or "time_stretch" in steps:
        semis = steps.get("pitch_shift", {}).get("semitones", 0)
        rate = steps.get("time_stretch", {}).get("rate", 1.0)
        aug = am.Compose([am.PitchShift(min_semitones=semis, max_semitones=semis, p=1.0),
                          am.TimeStretch(min_rate=rate, max_rate=rate, p=1.0, leave_length_unchanged=False)])
        y = aug(samples=y, sample_rate=sr)
    n = row.duration_ms * sr // 1000
    y = np.pad(y, (0, max(0, n - len(y))))[:n]
    if "mix" in steps:
        ref = next(m for m in row.material if m["role"] == "partner")
        p, _ = librosa.load(ref["uri"], sr=sr, mono=True, offset=ref["start_ms"] / 1000,
                            duration=ref["duration_ms"] / 1000)
        p = np.pad(p, (0, max(0, n - len(p))))[:n]
        ps, ss = np.sqrt(np.mean(p**2)), np.sqrt(np.mean(y**2))
        if ps > 0:
            y = y + p * (ss / (ps * 10 ** (steps["mix"]["snr_db"] / 20)))
    buf = io.BytesIO()
    sf.write(buf, y, sr, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def baseline_render(rows, sr: int = 16000) -> tuple[float, float]:
    t0 = time.process_time()
    for row in rows:
        baseline_flac(row, sr)
    return time.process_time() - t0, sum(r.duration_ms for r in rows) / 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", type=int, default=200)
    ap.add_argument("--clips", type=int, default=24)
    ap.add_argument("--work", default=None)
    args = ap.parse_args()
    quiet_logging()
    work = Path(args.work or tempfile.mkdtemp(prefix="mixtape-bench-augment-"))
    if not (work / "collection").exists():
        generate(work / "collection", seed=13, n_clips=args.clips, min_seconds=10, max_seconds=14, bad_clips=False)
    spec, rows = plan_rows(work, args.variants)
    n_mix = sum(1 for r in rows if any(s["op"] == "mix" for s in r.augment))
    print(f"{len(rows)} variants of {spec.snippets.duration:g} s ({n_mix} mixed) from {args.clips} clips")
    baseline_render(rows[:5])  # warm both paths (imports, first-call setup) before timing
    mixtape_render(spec, rows[:5])
    cpu_b, audio_b = baseline_render(rows)
    cpu_a, audio_a = mixtape_render(spec, rows)
    a, b = audio_a / cpu_a, audio_b / cpu_b
    print(f"(a) mixtape render step : {audio_a:.0f} s of audio in {cpu_a:.2f} CPU-s = {a:.1f} audio-s per CPU-s")
    print(f"(b) baseline (librosa + audiomentations + soundfile): {audio_b:.0f} s in {cpu_b:.2f} CPU-s = "
          f"{b:.1f} audio-s per CPU-s")
    print(f"ratio (a)/(b): {a / b:.2f}x (goal >= 1.5x)")
    print(json.dumps({"variants": len(rows), "mixed": n_mix, "mixtape_audio_s_per_cpu_s": round(a, 1),
                      "baseline_audio_s_per_cpu_s": round(b, 1), "ratio": round(a / b, 2)}))


if __name__ == "__main__":
    main()

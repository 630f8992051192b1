"""The build half of ``bench/peers.py``: mixtape against Lhotse on the work both can do.

One generated collection (``bench/build.py``'s generator: mixed FLAC, WAV and Ogg at 22.05-48 kHz), 3 s
windows on a 3 s hop, the originals plus 4 variants each with a speed perturbation of -2..+2 semitones
(factor 2^(k/12): 0.89-1.12) and a gain of -6..+6 dB, resampled to 16 kHz mono, written as FLAC shards:

  (a) ``mixtape build`` (DirectRunner, 2 worker processes): the whole job, from listing the files and
      probing them to the card, the index and byte-identical shards;
  (l) Lhotse: ``Recording.from_file`` for every file, then for each of (a)'s samples a cut of its source
      window with ``resample(16000)``, ``perturb_speed`` and ``perturb_volume`` at (a)'s drawn parameters
      (the same factors, so the same DSP work; Lhotse is handed the plan and does no splitting or drawing),
      and ``CutSet.to_shar(fields={"recording": "flac"}, num_jobs=2)``;
  (l') the same with Lhotse's speed factors replaced by 0.9 / 1.1 (Kaldi's): Lhotse's torch resampler
      builds a kernel per rate pair, and 16 kHz x 2^(k/12) has no common factor with 16 kHz (about 1 s of
      CPU per 3 s cut against 18 ms at 1.1), so this shows Lhotse at its best, on other factors than (a)'s.

The multiprocessing + audiomentations + ``webdataset.ShardWriter`` script a user would write is
``bench/build.py``'s (b). Returns the figures; asserts nothing.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import yaml

BENCH = Path(__file__).resolve().parent
SR = 16000


def _bench_build() -> Any:
    sys.path.insert(0, str(BENCH))  # bench/build.py, imported by name: it is a script, not a package
    return importlib.import_module("build")


def spec(variants: int = 4) -> dict[str, Any]:
    base = _bench_build().bench_spec(variants)
    return {**base, "name": "bench-peers-build", "augment": {"variants": variants, "chain": [
        {"op": "speed", "p": 1.0, "semitones": [-2, 2]},
        {"op": "gain", "p": 1.0, "db": [-6, 6]},
    ]}}


def _factor(semitones: int, kaldi: bool) -> float:
    """The speed factor of a drawn step: mixtape's own, or (``kaldi``) 0.9 / 1.1 by its sign, the factors
    Lhotse's torch resampler is fast at (16 kHz x 2^(k/12) is a rate pair with no common factor)."""
    if kaldi:
        return 1.0 if semitones == 0 else (1.1 if semitones > 0 else 0.9)
    return 2.0 ** (semitones / 12.0)


def run_lhotse(rows: list[Any], out: Path, workers: int = 2, kaldi: bool = False) -> dict[str, Any]:
    from lhotse import CutSet, Recording
    from lhotse.cut import MonoCut

    bb = _bench_build()
    t0, c0 = time.monotonic(), bb.own_cpu() + bb.children_cpu()
    recordings: dict[str, Recording] = {}
    cuts = []
    for row in rows:
        if row.uri not in recordings:
            recordings[row.uri] = Recording.from_file(row.uri, recording_id=row.clip_id.replace("/", "_"))
        rec = recordings[row.uri]
        w = row.source_window()
        cut = MonoCut(id=row.key.replace("/", "_"), start=w.start_ms / 1000, duration=w.duration_ms / 1000,
                      channel=0, recording=rec).resample(SR)
        steps = {s["op"]: s for s in row.augment}
        if "speed" in steps:
            factor = _factor(int(steps["speed"]["semitones"]), kaldi)
            if factor != 1.0:
                cut = cut.perturb_speed(factor, affix_id=False)
        if "gain" in steps:
            cut = cut.perturb_volume(10.0 ** (steps["gain"]["db"] / 20.0), affix_id=False)
        cuts.append(cut)
    cutset = CutSet.from_cuts(cuts)
    cutset.to_shar(out, fields={"recording": "flac"}, shard_size=64, num_jobs=workers)
    wall, cpu = time.monotonic() - t0, bb.own_cpu() + bb.children_cpu() - c0
    audio = sum(min(3.0, c.duration) for c in cuts)
    return {"wall_s": wall, "cpu_s": cpu, "audio_s": audio, "samples": len(cuts)}


def run(work: Path, clips: int = 300, seconds: float = 10.0, workers: int = 2) -> dict[str, Any]:
    """Generate (or reuse) the collection under ``work``, then time (a) and (l) on it."""
    from mixtape.demo.collection import generate

    bb = _bench_build()
    if not (work / "collection").exists():
        t0 = time.monotonic()
        generate(work / "collection", seed=11, n_clips=clips, min_seconds=seconds, max_seconds=seconds,
                 bad_clips=False, workers=2)
        print(f"generated {clips} clips x {seconds:g} s in {time.monotonic() - t0:.1f} s ({work})", flush=True)
    (work / "peers-spec.yaml").write_text(yaml.safe_dump(spec()))
    results = {"a_mixtape": bb.run_mixtape(work / "peers-spec.yaml", work / "peers-mixtape", workers)}
    print(bb.line("build (a) mixtape, DirectRunner, 2 workers", results["a_mixtape"]), flush=True)
    rows = bb.plan_of(work / "peers-mixtape")
    results["l_lhotse"] = run_lhotse(rows, work / "peers-lhotse", workers)
    print(bb.line("build (l) Lhotse: cuts -> resample, perturb_speed, perturb_volume -> to_shar(flac), 2 jobs",
                  results["l_lhotse"]), flush=True)
    results["l_lhotse_kaldi"] = run_lhotse(rows, work / "peers-lhotse-kaldi", workers, kaldi=True)
    print(bb.line("build (l') Lhotse as above at factors 0.9 / 1.1 (its fast case; not (a)'s factors)",
                  results["l_lhotse_kaldi"]), flush=True)
    rate = {k: v["audio_s"] / v["wall_s"] for k, v in results.items()}
    ratio = rate["a_mixtape"] / rate["l_lhotse"]
    print(f"build: mixtape / Lhotse = {ratio:.2f} on the same factors (goal >= 1.5); "
          f"{rate['a_mixtape'] / rate['l_lhotse_kaldi']:.2f} against Lhotse at 0.9 / 1.1", flush=True)
    return {"results": {k: {m: round(x, 2) if isinstance(x, float) else x for m, x in v.items()
                            if m != "block_hit_rate"} for k, v in results.items()},
            "audio_s_per_wall_s": {k: round(v, 1) for k, v in rate.items()}, "mixtape/lhotse": round(ratio, 3),
            "mixtape/lhotse_kaldi_factors": round(rate["a_mixtape"] / rate["l_lhotse_kaldi"], 3),
            "machine": {"cpus": os.cpu_count()}}


if __name__ == "__main__":
    import argparse
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default=None)
    ap.add_argument("--clips", type=int, default=300)
    args = ap.parse_args()
    print(json.dumps(run(Path(args.work or tempfile.mkdtemp(prefix="mixtape-peers-build-")), args.clips)))

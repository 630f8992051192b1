"""Peak memory of a build as the collection grows, and for one very long recording.

    .venv/bin/python bench/memory.py [--small 200] [--factor 10] [--hour-minutes 60]

Each build runs in a fresh process (DirectRunner, 1 worker, in memory) and reports its peak RSS
(``ru_maxrss``). Goal: peak RSS grows <= 1.2x when the collection grows 10x. The render worker's source
cache (``--cache-mb``) is bounded but fills as the collection grows: run with ``--cache-mb 0`` to see
everything else. The long-recording case builds
one 44.1 kHz stereo FLAC of ``--hour-minutes`` minutes, capped with ``snippets.max_per_clip``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from mixtape.rendering import CACHE_MB

ROOT = Path(__file__).resolve().parents[1]

SPEC = """\
name: memory-bench
seed: 3
sources:
  - {kind: folder, path: audio, licence: "http://creativecommons.org/publicdomain/zero/1.0/"}
audio: {sample_rate: 16000, channels: 1, format: flac}
snippets: {duration: 1.0, hop: 1.0, max_per_clip: MAX}
splits: {group_by: clip, fractions: {train: 0.8, valid: 0.1, test: 0.1}, allow_empty: true}
augment:
  variants: 1
  chain:
    - {op: gain, p: 1.0, db: [-6, 0]}
shards: {max_samples: 256}
"""

CHILD = """
import json, resource, sys, time
from mixtape.pipelines.build import RunnerConfig, build
from mixtape.spec import load_spec
t0 = time.monotonic()
card = build(load_spec(sys.argv[1]), sys.argv[2], RunnerConfig(workers=1, cache_mb=int(sys.argv[3])))
print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "seconds": time.monotonic() - t0, "clips": card["accounting"]["clips_used"],
                  "samples": sum(s["samples"] for s in card["splits"].values())}))
"""


def collection(folder: Path, clips: int, seconds: float = 2.0, sr: int = 22050, channels: int = 1) -> None:
    """Distinct short clips (a chord per clip), fast to make; no two share bytes."""
    folder.mkdir(parents=True)
    t = np.arange(int(seconds * sr)) / sr
    for i in range(clips):
        f = 110 * 2 ** ((i % 48) / 12)
        x = 0.2 * np.sin(2 * np.pi * f * t) + 0.05 * np.sin(2 * np.pi * (f * 1.5 + i) * t)
        sf.write(folder / f"c{i:05d}.flac", np.repeat(x[:, None], channels, axis=1).astype(np.float32), sr,
                 subtype="PCM_16")


def long_recording(folder: Path, minutes: float) -> None:
    folder.mkdir(parents=True)
    sr, block = 44100, 44100 * 60
    rng = np.random.default_rng(0)
    with sf.SoundFile(folder / "long.flac", "w", sr, 2, subtype="PCM_16") as f:
        for m in range(int(np.ceil(minutes))):
            n = min(block, int(minutes * 60 * sr) - m * block)
            t = (np.arange(n) + m * block) / sr
            x = 0.2 * np.sin(2 * np.pi * (220 + m) * t) + 0.02 * rng.standard_normal(n)
            f.write(np.stack([x, x * 0.8], axis=1).astype(np.float32))


def run(root: Path, max_per_clip: int, cache_mb: int) -> dict:
    (root / "spec.yaml").write_text(SPEC.replace("MAX", str(max_per_clip)))
    r = subprocess.run([sys.executable, "-c", CHILD, str(root / "spec.yaml"), str(root / "out"), str(cache_mb)],
                       capture_output=True, text=True, cwd=ROOT)
    if r.returncode:
        raise SystemExit(r.stderr[-3000:])
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--small", type=int, default=200)
    p.add_argument("--factor", type=int, default=10)
    p.add_argument("--hour-minutes", type=float, default=60.0)
    p.add_argument("--cache-mb", type=int, default=CACHE_MB,
                   help=f"the render worker's source cache (default {CACHE_MB}); it fills up to this bound as "
                        "the collection grows, so 0 shows the growth of everything else")
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in (args.small, args.small * args.factor):
            root = Path(tmp) / f"n{n}"
            t0 = time.monotonic()
            collection(root / "audio", n)
            made = time.monotonic() - t0
            r = run(root, 0, args.cache_mb)
            rows.append((f"{n} clips x 2 s", r))
            print(f"{n:6d} clips: peak RSS {r['peak_rss_mb']:7.0f} MB, {r['samples']} samples, build "
                  f"{r['seconds']:.1f} s (collection made in {made:.1f} s)", flush=True)
        root = Path(tmp) / "hour"
        long_recording(root / "audio", args.hour_minutes)
        size = (root / "audio" / "long.flac").stat().st_size / 1e6
        r = run(root, 200, args.cache_mb)
        print(f"one {args.hour_minutes:g}-minute 44.1 kHz stereo FLAC ({size:.0f} MB): "
              f"peak RSS {r['peak_rss_mb']:.0f} MB, "
              f"{r['samples']} samples, build {r['seconds']:.1f} s")
    small, large = rows[0][1]["peak_rss_mb"], rows[1][1]["peak_rss_mb"]
    print(f"peak RSS x{large / small:.2f} for x{args.factor} clips with a {args.cache_mb} MB source cache "
          "(goal <= 1.2)")


if __name__ == "__main__":
    main()

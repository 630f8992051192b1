"""Whole-build throughput against the script a user would write and against the DSP it must do.

One generated collection (default 600 clips x 10 s, about a minute of mixtape build; mixed FLAC, WAV and
Ogg at 22.05-48 kHz, mono and stereo), one spec (3 s snippets, 80/10/10 splits, 4 train variants with pitch
±2 semitones, stretch 0.8-1.25 and 30% mixed with a partner at 3-12 dB SNR, originals kept, 16 kHz mono
FLAC), built by:

  (a) ``mixtape build`` with the DirectRunner, 2 worker processes (and 1, for the scaling figure): the
      whole job, from listing the files to the dataset card;
  (b) the baseline: a ``multiprocessing.Pool(2)`` script a user would write, ``librosa.load`` of each
      window (and partner), ``audiomentations.Compose([PitchShift, TimeStretch])`` with the plan's
      parameters frozen, a hand-written SNR mix, FLAC by soundfile, written by ``webdataset.ShardWriter``;
      it is handed (a)'s plan, so it does none of (a)'s probing, splitting or planning;
  (c) the limit: the same plan's DSP (decode, resample, augment, encode: mixtape's own functions) in a
      plain loop, one process per core, each source decoded once, no framework, no tar, no hashing.

Prints audio-seconds of output per wall-second for each, the ratios (a)/(b) and (a)/(c) and the 1 -> 2
worker speed-up. Asserts nothing.

    .venv/bin/python bench/build.py [--clips 600] [--seconds 10] [--skip-1-worker] [--profile N] [--work DIR]

``--profile N`` also renders every shard in one process (one worker's cache) under cProfile and prints the
top N entries. ``--work DIR`` keeps the generated collection for the next run.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import multiprocessing
import os
import platform
import pstats
import resource
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

from mixtape.cli import quiet_logging
from mixtape.demo.collection import generate
from mixtape.pipelines.build import RunnerConfig, build
from mixtape.records import PlanRow
from mixtape.spec import load_spec
from mixtape.storage import read_parquet

SR = 16000


def bench_spec(variants: int) -> dict[str, Any]:
    return {
        "name": "bench-build", "seed": 1,
        "sources": [{"kind": "freesound_dump", "path": "collection/freesound"}],
        "audio": {"sample_rate": SR, "channels": 1, "format": "flac"},
        "snippets": {"duration": 3.0, "hop": 3.0},
        "splits": {"group_by": "clip", "fractions": {"train": 0.8, "valid": 0.1, "test": 0.1}},
        "augment": {"variants": variants, "chain": [
            {"op": "pitch_shift", "p": 1.0, "semitones": [-2, 2]},
            {"op": "time_stretch", "p": 1.0, "rate": [0.8, 1.25]},
            {"op": "mix", "p": 0.3, "snr_db": [3, 12]},
        ]},
        "shards": {"max_samples": 64},
    }


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def own_cpu() -> float:
    return time.process_time()


# ------------------------------------------------------------------------------------------------ (a)


def run_mixtape(spec_path: Path, out: Path, workers: int, processes: bool = False, cache_mb: int | None = None
                ) -> dict[str, Any]:
    """``workers`` = 1 runs in this process (what ``mixtape build --workers 1`` does), unless ``processes``:
    then in one worker process, the path two workers take."""
    spec = load_spec(spec_path)
    beam_args = ("--direct_running_mode=multi_processing",) if processes else ()
    c0, s0 = own_cpu() + children_cpu(), time.monotonic()
    cfg = RunnerConfig(workers=workers, beam_args=beam_args, **({"cache_mb": cache_mb} if cache_mb else {}))
    card = build(spec, str(out), cfg, overwrite=True)
    wall, cpu = time.monotonic() - s0, own_cpu() + children_cpu() - c0
    audio = sum(s["sample_seconds"] for s in card["splits"].values())
    samples = sum(s["samples"] for s in card["splits"].values())
    m = card["_build"]["metrics"]
    hits = m.get("source_block_hits", 0) / max(1, m.get("source_block_hits", 0) + m.get("source_blocks", 0))
    return {"wall_s": wall, "cpu_s": cpu, "audio_s": audio, "samples": samples, "block_hit_rate": hits,
            "blocks_converted": m.get("source_blocks", 0), "source_reads": m.get("source_reads", 0)}


def blocks_needed(rows: list[PlanRow]) -> int:
    """Distinct source blocks the plan's windows (samples and mix partners) touch: what one pass decodes."""
    from mixtape.records import ClipWindow
    from mixtape.rendering import BLOCK_MS

    per_block = BLOCK_MS * SR // 1000
    touched = set()
    for row in rows:
        windows = [row.source_window()] + [ClipWindow.from_dict(m) for m in row.material if m["role"] == "partner"]
        for w in windows:
            start, n = w.start_ms * SR // 1000, w.duration_ms * SR // 1000
            touched |= {(w.sha256, w.offset_frames, w.length_frames, k)
                        for k in range(start // per_block, (start + n - 1) // per_block + 1)}
    return len(touched)


def plan_of(dataset: Path) -> list[PlanRow]:
    """(a)'s plan, rows in shard order: the work (b) and (c) are given."""
    table = read_parquet(str(dataset / "plan.parquet")).to_pylist()
    table.sort(key=lambda r: (r["shard"], r["order"]))
    roots = json.loads((dataset / "build.json").read_text())["source_roots"]
    return [PlanRow.from_record(json.loads(r["record"]), roots) for r in table]


# ------------------------------------------------------------------------------------------------ (b)


def baseline_sample(row: PlanRow) -> tuple[str, str, bytes, bytes]:
    """What a user's worker function returns for one sample: its FLAC (``bench/augment.py``'s baseline) and
    a JSON document of labels and parameters."""
    from augment import baseline_flac  # bench/, beside this script

    doc = json.dumps({"key": row.key, "labels": row.labels, "augment": list(row.augment),
                      "licence": row.licence}).encode()
    return row.split, row.key, baseline_flac(row, SR), doc


def run_baseline(rows: list[PlanRow], out: Path, workers: int = 2) -> dict[str, Any]:
    import webdataset as wds

    out.mkdir(parents=True, exist_ok=True)
    c0, s0 = own_cpu() + children_cpu(), time.monotonic()
    writers: dict[str, Any] = {}
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        for split, key, flac, doc in pool.imap(baseline_sample, rows, chunksize=4):
            if split not in writers:
                writers[split] = wds.ShardWriter(str(out / f"{split}-%06d.tar"), maxcount=64, verbose=0)
            writers[split].write({"__key__": key.replace(".", "_"), "flac": flac, "json": doc})
    for w in writers.values():
        w.close()
    wall, cpu = time.monotonic() - s0, own_cpu() + children_cpu() - c0
    return {"wall_s": wall, "cpu_s": cpu, "audio_s": sum(r.duration_ms for r in rows) / 1000, "samples": len(rows)}


# ------------------------------------------------------------------------------------------------ (c)


def limit_loop(rows: list[PlanRow]) -> float:
    """One core's share: decode and resample each source once, then augment and encode every sample."""
    from mixtape.audio import convert, decode, encode_pcm16, to_pcm16
    from mixtape.augment import apply_chain
    from mixtape.augment.ops import Context
    from mixtape.rendering import cut

    sources: dict[str, Any] = {}

    def source(clip_id: str, uri: str):
        if clip_id not in sources:
            with open(uri, "rb") as f:
                samples, sr = decode(f.read(), clip_id)
            sources[clip_id] = convert(samples, sr, SR, 1)
        return sources[clip_id]

    t0 = time.process_time()
    for row in rows:
        window = cut(source(row.clip_id, row.uri), SR, row.src_start_ms if row.src_duration_ms else row.start_ms,
                     row.src_duration_ms or row.duration_ms)
        ctx = Context()
        for ref in row.material:
            ctx.partner = cut(source(ref["clip_id"], ref["uri"]), SR, ref["start_ms"], ref["duration_ms"])
        out = apply_chain(window, SR, list(row.augment), n_out=row.duration_ms * SR // 1000, ctx=ctx)
        encode_pcm16(to_pcm16(out), SR, "flac")
    return time.process_time() - t0


def run_limit(rows: list[PlanRow], cores: int = 2, by: str = "shard") -> dict[str, Any]:
    """``by="shard"``: each core loops over the shards the runner would deal it (round-robin), decoding each
    source once per core, as a render worker does. ``by="clip"``: each core takes whole clips, so every source
    is decoded once in all, the floor no hash-sharded writer can reach."""
    groups: dict[str, list[PlanRow]] = defaultdict(list)
    for r in rows:
        groups[r.shard if by == "shard" else r.clip_id].append(r)
    parts: list[list[PlanRow]] = [[] for _ in range(cores)]
    if by == "shard":
        for i, name in enumerate(sorted(groups)):
            parts[i % cores].extend(groups[name])
    else:
        for name in sorted(groups, key=lambda c: (-len(groups[c]), c)):  # largest first onto the lightest core
            min(parts, key=len).extend(groups[name])
    c0, s0 = own_cpu() + children_cpu(), time.monotonic()
    with multiprocessing.get_context("fork").Pool(cores) as pool:
        per_core = pool.map(limit_loop, parts, chunksize=1)
    wall, cpu = time.monotonic() - s0, own_cpu() + children_cpu() - c0
    return {"wall_s": wall, "cpu_s": cpu, "audio_s": sum(r.duration_ms for r in rows) / 1000, "samples": len(rows),
            "loop_cpu_s": per_core}


# ------------------------------------------------------------------------------------------------ profile


def profile_render(dataset: Path, rows: list[PlanRow], top: int) -> None:
    """cProfile of the render phase as a worker runs it: every source's samples rendered together in
    window order (one worker's cache), then every shard written from them, in one process."""
    from mixtape.rendering import SourceCache, render_members, source_key, source_order, write_shard
    from mixtape.spec import AudioSpec

    by_source: dict[str, list[PlanRow]] = defaultdict(list)
    for r in rows:
        by_source[source_key(r)].append(r)
    audio = AudioSpec(sample_rate=SR, channels=1, format="flac")
    scratch = tempfile.mkdtemp(prefix="mixtape-bench-profile-")
    cache = SourceCache(audio)  # one worker's cache, shared by the sources it renders
    by_shard: dict[str, list[Any]] = defaultdict(list)
    prof = cProfile.Profile()
    prof.enable()
    for key in sorted(by_source):
        for row in sorted(by_source[key], key=source_order):
            by_shard[row.shard].append(render_members(row, cache))
    for name in sorted(by_shard):
        write_shard(name, sorted(by_shard[name], key=lambda s: s.planned.hash), audio, scratch)
    prof.disable()
    print(f"render of {len(rows)} samples from {len(by_source)} sources into {len(by_shard)} shards, one process; "
          f"source cache: {cache.stats}")
    stats = pstats.Stats(prof, stream=(buf := io.StringIO()))
    stats.sort_stats("tottime").print_stats(top)
    print(buf.getvalue())


def line(label: str, r: dict[str, Any]) -> str:
    cache = f", source blocks from cache {r['block_hit_rate']:.0%}" if "block_hit_rate" in r else ""
    return (f"{label}: {r['samples']} samples, {r['audio_s']:.0f} s of audio in {r['wall_s']:.1f} s wall "
            f"({r['cpu_s']:.1f} CPU-s{cache}) = {r['audio_s'] / r['wall_s']:.1f} audio-s/s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=600)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--variants", type=int, default=4)
    ap.add_argument("--skip-1-worker", action="store_true", help="skip (a) with 1 worker (the scaling figure)")
    ap.add_argument("--profile", type=int, default=0, metavar="N", help="print the top N cProfile entries of render")
    ap.add_argument("--work", default=None, help="working folder (default: a temporary one)")
    ap.add_argument("--small-cache", type=float, default=20.0, metavar="X",
                    help="also build with a cache X times smaller than the converted audio (0: skip)")
    args = ap.parse_args()
    quiet_logging()
    work = Path(args.work or tempfile.mkdtemp(prefix="mixtape-bench-build-"))
    if not (work / "collection").exists():
        t0 = time.monotonic()
        generate(work / "collection", seed=11, n_clips=args.clips, min_seconds=args.seconds,
                 max_seconds=args.seconds, bad_clips=False, workers=2)
        print(f"generated {args.clips} clips x {args.seconds:g} s in {time.monotonic() - t0:.1f} s ({work})")
    (work / "spec.yaml").write_text(yaml.safe_dump(bench_spec(args.variants)))

    results: dict[str, dict[str, Any]] = {}
    results["a2"] = run_mixtape(work / "spec.yaml", work / "out-2", 2)
    print(line("(a) mixtape build, DirectRunner, 2 workers", results["a2"]), flush=True)
    rows = plan_of(work / "out-2")
    if not args.skip_1_worker:
        results["a1"] = run_mixtape(work / "spec.yaml", work / "out-1", 1)
        print(line("(a) mixtape build, DirectRunner, 1 worker (in process)", results["a1"]), flush=True)
        results["a1p"] = run_mixtape(work / "spec.yaml", work / "out-1p", 1, processes=True)
        print(line("(a) mixtape build, DirectRunner, 1 worker process", results["a1p"]), flush=True)
    results["b"] = run_baseline(rows, work / "baseline")
    print(line("(b) baseline: Pool(2) + librosa + audiomentations + ShardWriter", results["b"]), flush=True)
    results["c"] = run_limit(rows, by="shard")
    print(line("(c) DSP limit: decode, resample, augment, encode; 2 plain processes, shards dealt round-robin",
               results["c"]), flush=True)
    results["c_floor"] = run_limit(rows, by="clip")
    print(line("    floor: the same, each core taking whole clips (every source decoded once)", results["c_floor"]),
          flush=True)

    needed = blocks_needed(rows)
    print(f"decode amplification, default cache: {results['a2']['blocks_converted'] / needed:.2f} "
          f"({results['a2']['blocks_converted']} blocks converted for {needed} a single pass needs; "
          f"{results['a2']['source_reads']} source files read for {len({r.sha256 for r in rows})})")
    if args.small_cache:
        from mixtape.rendering import BLOCK_MS

        converted_mb = needed * BLOCK_MS * SR // 1000 * 4 / 2**20  # float32 blocks at the target rate, mono
        cache_mb = max(1, round(converted_mb / args.small_cache))
        results["a2_small"] = run_mixtape(work / "spec.yaml", work / "out-small", 2, cache_mb=cache_mb)
        print(line(f"(a) mixtape build, 2 workers, --cache-mb {cache_mb} ({converted_mb:.0f} MB converted audio, "
                   f"{converted_mb / cache_mb:.0f}x the cache)", results["a2_small"]), flush=True)
        amp = results["a2_small"]["blocks_converted"] / needed
        print(f"decode amplification at {converted_mb / cache_mb:.0f}x the cache: {amp:.2f} "
              f"({results['a2_small']['blocks_converted']} blocks for {needed}; goal <= 1.3; "
              f"{results['a2_small']['source_reads']} source files read)")
    rate = {k: v["audio_s"] / v["wall_s"] for k, v in results.items()}
    summary = {"a/b": rate["a2"] / rate["b"], "a/c": rate["a2"] / rate["c"], "a/floor": rate["a2"] / rate["c_floor"],
               "amplification": results["a2"]["blocks_converted"] / needed}
    if "a2_small" in results:
        summary["amplification, small cache"] = results["a2_small"]["blocks_converted"] / needed
        summary["a/c, small cache"] = rate["a2_small"] / rate["c"]
        print(f"(a)/(c) at the small cache = {summary['a/c, small cache']:.2f} (goal >= 0.85)")
    print(f"(a)/(b) = {summary['a/b']:.2f} (goal >= 1.5)")
    print(f"(a)/(c) = {summary['a/c']:.2f} (goal >= 0.85); against the floor {summary['a/floor']:.2f}")
    if "a1" in rate:
        summary["speed-up"] = rate["a2"] / rate["a1"]
        summary["speed-up, processes"] = rate["a2"] / rate["a1p"]
        print(f"1 -> 2 worker speed-up = {summary['speed-up']:.2f} from the in-process worker, "
              f"{summary['speed-up, processes']:.2f} from one worker process (goal >= 1.7)")
    print(json.dumps({"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                      "clips": args.clips, "seconds": args.seconds,
                      "results": {k: {m: (round(x, 2) if isinstance(x, float) else x) for m, x in v.items()
                                      if m != "loop_cpu_s"} for k, v in results.items()},
                      "audio_s_per_wall_s": {k: round(v, 1) for k, v in rate.items()},
                      "ratios": {k: round(v, 3) for k, v in summary.items()}}))
    if args.profile:
        profile_render(work / "out-2", rows, args.profile)


if __name__ == "__main__":
    main()

"""``mixtape demo``: generate the embedded collection, build it with Beam, train briefly, summarise."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

from mixtape.demo.collection import generate
from mixtape.pipelines.build import RunnerConfig, build
from mixtape.planning import shard_pattern
from mixtape.spec import load_spec
from mixtape.train.loop import TrainConfig, train

MARKER = ".mixtape-demo"

#: Written to ``<out>/spec.yaml``: the spec the demo builds, and a worked example for users.
DEMO_SPEC = """\
# The demo dataset: a worked example of a mixtape spec. Paths are relative to this file.
name: mixtape-demo
version: 1.0.0                   # the dataset's semantic version, recorded in the card
seed: 1234                       # seeds every random choice: same spec + inputs => same bytes

sources:
  - kind: freesound_dump         # metadata.jsonl (Freesound API fields) + audio/<id>.<ext>
    path: collection/freesound
    acousticbrainz: ../acousticbrainz   # (relative to path) key, tempo, genre for clips with an `mbid`

audio:
  sample_rate: 16000             # every sample is resampled to this rate
  channels: 1                    # 1 = downmix to mono, 2 = stereo
  format: flac                   # flac | wav

snippets:
  duration: 3.0                  # seconds per sample
  hop: 3.0                       # seconds between window starts (< duration overlaps)
  min_rms_db: -60                # windows quieter than this are skipped

splits:
  group_by: pack                 # clip | uploader | pack | artist | album: a group never spans splits
  fractions: {train: 0.7, valid: 0.15, test: 0.15}

augment:
  variants: 2                    # augmented variants per train snippet, besides the clean original
  keep_original: true
  splits: [train]                # valid / test stay clean
  chain:                         # pitch_shift and time_stretch run first, fused in one pass; labels follow
    - {op: pitch_shift, p: 0.7, semitones: [-2, 2]}        # whole semitones: the key label moves with it
    - {op: time_stretch, p: 0.7, rate: [0.85, 1.15]}       # tempo label x rate
    - {op: mix, p: 0.3, snr_db: [3, 12], labels: union}    # a partner from the same split; tags are unioned
    - {op: add_noise, p: 0.2, snr_db: [15, 30], colour: [white, pink]}
    - {op: gain, p: 0.5, db: [-6, 3]}

shards:
  max_samples: 64                # ceiling per shard; shards of a split hold equal counts

labels:
  tags: {min_count: 3}           # tags seen in fewer clips stay in the JSON but not in the vocabulary
"""


def run_demo(out: str, clips: int = 60, steps: int = 150, seed: int = 7, workers: int = 1,
             log: Callable[[str], None] = print) -> dict:
    out_path = Path(out)
    out_path.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    log(f"[1/3] generating the demo collection ({clips} clips + 2 deliberately broken) ...")
    collection = out_path / "collection"
    marker = collection / MARKER
    if collection.exists():
        if not marker.exists():
            raise FileExistsError(f"{collection} exists and was not written by `mixtape demo`: choose another --out")
        shutil.rmtree(collection)  # a previous demo's files must not leak into this one
    col = generate(collection, seed=seed, n_clips=clips, workers=max(1, workers))
    marker.write_text("written by `mixtape demo`; the whole folder is replaced by the next demo run\n")
    gen_seconds = time.monotonic() - t0
    spec_file = out_path / "spec.yaml"
    spec_file.write_text(DEMO_SPEC, encoding="utf-8")
    spec = load_spec(spec_file)

    log("[2/3] building the dataset with Beam (DirectRunner) ...")
    dataset = str(out_path / "dataset")
    card = build(spec, dataset, RunnerConfig(workers=workers), overwrite=True)

    log(f"[3/3] training a small log-mel CNN for {steps} steps from the shards ...")
    shards = shard_pattern(dataset, [s["name"] for s in card["splits"]["train"]["shards"]])
    result = train(TrainConfig(shards=shards, out=str(out_path / "run"), steps=steps, seed=seed), log=log)
    from mixtape.report.page import write_report

    report = write_report(dataset, str(out_path / "report"))
    return {"collection": col, "card": card, "train": result, "generate_seconds": gen_seconds, "report": str(report),
            "spec": str(spec_file), "dataset": dataset, "run": str(out_path / "run"), "shards": shards,
            "total_seconds": time.monotonic() - t0}

"""``mixtape demo``: render real compositions, build them with Beam, train briefly, evaluate, summarise."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

from mixtape.dataset.names import CARD_NAME
from mixtape.demo.config import DEMO
from mixtape.demo.scores import allocation, demo_spec, write_dump
from mixtape.pipelines.build import RunnerConfig, build
from mixtape.planning import shard_pattern
from mixtape.spec import load_spec
from mixtape.train.loop import TrainConfig, train

MARKER = ".mixtape-demo"
#: what the demo trains: instrument tags (and families), the genre (style) class, the key
DEMO_TASKS = "tags,genre,key"

def run_demo(out: str = DEMO.out, clips: int = DEMO.clips, steps: int = DEMO.steps, seed: int = DEMO.seed,
             workers: int = DEMO.workers,
             log: Callable[[str], None] = print) -> dict:
    """Render a real-music collection, build it with Beam, train on its shards, evaluate per clip, report.
    ``clips`` is the number of pieces (chorales, Renaissance and trecento pieces, folk tunes)."""
    out_path = Path(out)
    out_path.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    parts = allocation(clips)
    log(f"[1/4] rendering {parts['folk']} folk tunes into a Freesound-style dump (+2 deliberately broken files); "
        f"{parts['chorales']} chorales, {parts['renaissance']} Palestrina and {parts['medieval']} trecento pieces "
        "are rendered by the build itself ...")
    collection = out_path / "collection"
    marker = collection / MARKER
    if collection.exists():
        if not marker.exists():
            raise FileExistsError(f"{collection} exists and was not written by `mixtape demo`: choose another --out")
        shutil.rmtree(collection)  # ok: the demo's own folder (its marker file says so); stale files must not leak
    col = write_dump(collection, parts["folk"])
    marker.write_text("written by `mixtape demo`; the whole folder is replaced by the next demo run\n")
    gen_seconds = time.monotonic() - t0
    spec_file = out_path / "spec.yaml"
    spec_file.write_text(demo_spec(clips), encoding="utf-8")
    spec = load_spec(spec_file)

    log("[2/4] building the dataset with Beam (DirectRunner): scores rendered, windows cut, augmented, sharded ...")
    dataset = str(out_path / "dataset")
    card = build(spec, dataset, RunnerConfig(workers=workers), overwrite=True)

    log(f"[3/4] training a small CNN on log-mel for {steps} steps from the shards (tasks: {DEMO_TASKS}) ...")
    shards = shard_pattern(dataset, [s["name"] for s in card["splits"]["train"]["shards"]])
    result = train(TrainConfig(shards=shards, card=str(Path(dataset) / CARD_NAME), out=str(out_path / "run"),
                               steps=steps, seed=seed, tasks=DEMO_TASKS), log=log)
    log("[4/4] writing the dataset report ...")
    from mixtape.report.page import write_report

    report = write_report(dataset, str(out_path / "report"))
    return {"collection": col, "card": card, "train": result, "generate_seconds": gen_seconds, "report": str(report),
            "spec": str(spec_file), "dataset": dataset, "run": str(out_path / "run"), "shards": shards,
            "total_seconds": time.monotonic() - t0}

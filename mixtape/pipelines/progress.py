"""Progress a person can follow while a local build runs: clips listed and probed, samples planned, shards
rendered of the total, audio written, an ETA.

A Beam pipeline reports nothing until it ends, and its counters are not readable while it runs on the
local runners. So pass-through :class:`Tally` steps count elements where they flow and, once per bundle
(and every few seconds inside a long one), leave the count in a small file in the build's parts folder;
samples are counted as they are rendered, and shards from the per-shard index parts their writers
write anyway. The driver reads
those files (:func:`read_progress`) and the ticker prints them: one updating line on a terminal, a plain
line every half minute otherwise. Nothing here reaches an output: the files live in the staging folder's
scratch and are removed with it, and builds to object stores (whose runners have UIs of their own) skip it.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import apache_beam as beam

from mixtape.dataset.names import PART_NAME, PARTS_DIR, PROGRESS_NAME

#: how often a tally inside one long bundle refreshes its file
REFRESH_SECONDS = 2.0
STAGES = ("listed", "probed", "planned", "shards", "rendered")


class Tally(beam.DoFn):
    """Passes elements on unchanged and records how many it saw (this instance's running count)."""

    def __init__(self, stage_dir: str, what: str):
        assert what in STAGES
        self.folder = os.path.join(stage_dir, PARTS_DIR)
        self.what = what

    def setup(self) -> None:
        self._name = f"progress-{self.what}-{uuid.uuid4().hex}.json"  # one file per instance: no write races
        self._n = 0
        self._written = time.monotonic()

    def process(self, element: Any) -> Iterator[Any]:
        self._n += 1
        if time.monotonic() - self._written > REFRESH_SECONDS:
            self._write()
        yield element

    def finish_bundle(self) -> None:
        self._write()

    def _write(self) -> None:
        self._written = time.monotonic()
        tmp = os.path.join(self.folder, f".{self._name}")
        try:
            with open(tmp, "w") as f:
                json.dump({"n": self._n}, f)
            os.replace(tmp, os.path.join(self.folder, self._name))  # ok: this tally's own file, in the build's scratch
        except OSError:  # progress is a courtesy: never fail a build over it
            pass


def tally(pcoll: beam.PCollection, label: str, stage_dir: str | None, what: str) -> beam.PCollection:
    """``pcoll``, counted on the way when the build is local."""
    if stage_dir is None:
        return pcoll
    return pcoll | label >> beam.ParDo(Tally(stage_dir, what))


@dataclass(frozen=True)
class Progress:
    listed: int = 0
    probed: int = 0
    planned: int = 0
    shards: int = 0
    #: samples rendered so far (they reach their shards' writers only once every source is rendered)
    rendered: int = 0
    rendered_shards: int = 0

    def line(self, seconds: float, snippet_seconds: float, samples_written: int) -> str:
        # samples kept from a previous build are written without being rendered: whichever is further on
        samples_rendered = max(samples_written, self.rendered)
        parts = [f"build {_clock(seconds)}"]
        if self.listed:
            parts.append(f"probed {self.probed:,}/{self.listed:,} clips")
        if self.planned:
            hours = samples_rendered * snippet_seconds / 3600
            parts.append(f"rendered {self.rendered_shards:,}" + (f"/{self.shards:,}" if self.shards else "")
                         + f" shards ({samples_rendered:,}/{self.planned:,} samples, {hours:.2f} audio-h)")
            if 0 < samples_rendered < self.planned:
                parts.append(f"ETA {_clock(seconds * (self.planned - samples_rendered) / samples_rendered)}")
        return parts[0] + (": " + "; ".join(parts[1:]) if parts[1:] else "")


def _clock(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def read_progress(stage_dir: str) -> tuple[Progress, int]:
    """What the tallies and render tasks have left in the parts folder so far; and samples rendered."""
    import pyarrow.parquet as pq

    folder = os.path.join(stage_dir, PARTS_DIR)
    totals = dict.fromkeys(STAGES, 0)
    rendered = samples = 0
    try:
        names = os.listdir(folder)
    except OSError:
        return Progress(), 0
    for name in names:
        match = PROGRESS_NAME.match(name)
        path = os.path.join(folder, name)
        try:
            if match:
                with open(path) as f:
                    totals[match.group(1)] += int(json.load(f)["n"])
            elif PART_NAME.match(name) and name.endswith(".index.parquet"):
                rendered += 1
                samples += pq.read_metadata(path).num_rows
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a file being replaced as we read: counted next time
    return Progress(rendered_shards=rendered, **totals), samples


def clean_progress(stage_dir: str) -> None:
    """Remove the tallies once the pipeline has finished (nothing writes them any more)."""
    from mixtape.dataset.names import is_progress_file

    folder = os.path.join(stage_dir, PARTS_DIR)
    for name in os.listdir(folder) if os.path.isdir(folder) else []:
        if is_progress_file(name):
            os.remove(os.path.join(folder, name))  # ok: a progress tally this build wrote

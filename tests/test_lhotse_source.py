"""``kind: lhotse``: manifests written by Lhotse itself (RecordingSet, SupervisionSet, CutSet) build with
mixtape, with their supervisions as labels; what a manifest may hold that mixtape must not do is refused."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
from lhotse import CutSet, Recording, RecordingSet, SupervisionSegment, SupervisionSet

from mixtape.pipelines.build import RunnerConfig, build
from mixtape.records import Clip, Reject
from mixtape.sources.registry import list_source
from mixtape.spec import parse_spec

GENRES = ["jazz", "folk", "jazz", "rock", "folk", "rock"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lhotse") / "corpus"
    (root / "music").mkdir(parents=True)
    recordings, supervisions = [], []
    for i, genre in enumerate(GENRES):
        t = np.arange(int(16000 * 3.5)) / 16000
        path = root / "music" / f"piece-{i}.wav"
        sf.write(path, (0.3 * np.sin(2 * np.pi * (220 + 40 * i) * t)).astype(np.float32), 16000)
        rec = Recording.from_file(path, recording_id=f"piece-{i}")  # Lhotse writes absolute paths
        recordings.append(rec)
        supervisions.append(SupervisionSegment(id=f"sup-{i}", recording_id=rec.id, start=0.0, duration=rec.duration,
                                               language="en", custom={"genre": genre,
                                                                      "instruments": ["piano", "strings"]}))
    RecordingSet.from_recordings(recordings).to_file(root / "recordings.jsonl.gz")
    SupervisionSet.from_segments(supervisions).to_file(root / "supervisions.jsonl.gz")
    cuts = CutSet.from_manifests(recordings=RecordingSet.from_recordings(recordings),
                                 supervisions=SupervisionSet.from_segments(supervisions))
    cuts.cut_into_windows(duration=1.5).to_file(root / "cuts.jsonl.gz")
    return root


def _spec(root: Path, **options) -> dict:
    return {"name": "lhotse", "seed": 2, "audio": {"sample_rate": 8000},
            "snippets": {"duration": 1.0, "hop": 1.0},
            "splits": {"group_by": "source_id", "fractions": {"train": 0.5, "valid": 0.25, "test": 0.25}},
            "sources": [{"kind": "lhotse", "path": str(root), **options}]}


def test_recordings_and_supervisions_become_labelled_clips(corpus):
    spec = parse_spec(_spec(corpus, recordings="recordings.jsonl.gz", supervisions="supervisions.jsonl.gz"))
    clips = [c for c in list_source(spec.sources[0]) if isinstance(c, Clip)]
    assert [c.clip_id for c in clips] == [f"lhotse:piece-{i}" for i in range(len(GENRES))]
    assert [c.labels["classes"]["genre"] for c in clips] == GENRES
    assert all(c.labels["classes"]["language"] == "en" and c.labels["tags"] == ["piano", "strings"] for c in clips)
    assert all(c.relpath == f"music/piece-{i}.wav" and c.source_id == f"piece-{i}" for i, c in enumerate(clips))


def test_a_cutset_builds_its_cuts_as_windows_of_their_recordings(corpus, tmp_path):
    spec = parse_spec(_spec(corpus, cuts="cuts.jsonl.gz"))
    listed = list(list_source(spec.sources[0]))
    assert not [r for r in listed if isinstance(r, Reject)]
    cuts = [json.loads(line) for line in gzip.open(corpus / "cuts.jsonl.gz", "rt")]
    assert {c.clip_id for c in listed} == {f"lhotse:{c['id']}" for c in cuts}
    card = build(spec, str(tmp_path / "ds"), RunnerConfig(workers=1))
    acc = card["accounting"]
    assert acc["clips_in"] == len(cuts) == acc["clips_used"] + acc["clips_rejected"]
    assert set(card["vocabularies"]["classes"]["genre"]) == {"jazz", "folk", "rock"}
    rows = pq.read_table(tmp_path / "ds" / "index.parquet").to_pylist()
    # windows of 1.5 s hold one 1 s snippet each; a recording's cuts never straddle splits
    recording_of = {f"lhotse:{c['id']}": c["recording"]["id"] for c in cuts}
    split_of: dict[str, set[str]] = {}
    for r in rows:
        split_of.setdefault(recording_of[r["clip_id"]], set()).add(r["split"])
    assert len(split_of) == len(GENRES) and all(len(s) == 1 for s in split_of.values())
    long_enough = [c for c in cuts if c["duration"] >= 1.0]  # each recording's last cut is 0.5 s: too short
    assert {r["duration_ms"] for r in rows} == {1000} and len(rows) == len(long_enough)  # one snippet per cut
    assert acc["rejects_by_reason"] == {"too_short": len(cuts) - len(long_enough)}


def test_what_a_manifest_must_not_make_mixtape_do_is_a_reject(corpus, tmp_path):
    outside = tmp_path / "elsewhere.wav"
    sf.write(outside, np.zeros(16000, dtype=np.float32), 16000)
    good = json.loads(gzip.open(corpus / "recordings.jsonl.gz", "rt").readline())
    hostile = [
        {**good, "id": "cmd", "sources": [{"type": "command", "channels": [0], "source": "touch /tmp/pwned; cat x"}]},
        {**good, "id": "url", "sources": [{"type": "url", "channels": [0], "source": "http://example.com/a.wav"}]},
        {**good, "id": "out", "sources": [{"type": "file", "channels": [0], "source": str(outside)}]},
        {**good, "id": "dots", "sources": [{"type": "file", "channels": [0], "source": "../elsewhere.wav"}]},
        {**good, "id": "gone", "sources": [{"type": "file", "channels": [0], "source": "music/nothing.wav"}]},
    ]
    manifest = corpus / "hostile.jsonl"
    manifest.write_text("\n".join([json.dumps(h) for h in hostile] + ['{"id": "broken",', "[1, 2]"]) + "\n")
    spec = parse_spec(_spec(corpus, recordings="hostile.jsonl"))
    out = {r.clip_id: r for r in list_source(spec.sources[0])}
    reasons = {k: r.reason for k, r in out.items() if isinstance(r, Reject)}
    assert reasons == {"lhotse:cmd": "unsupported_source", "lhotse:url": "unsupported_source",
                       "lhotse:out": "outside_source", "lhotse:dots": "outside_source", "lhotse:gone": "missing_audio",
                       "lhotse:hostile.jsonl:6": "bad_metadata", "lhotse:hostile.jsonl:7": "bad_metadata"}
    assert "never runs" in out["lhotse:cmd"].detail
    assert not Path("/tmp/pwned").exists()
    nothing = list(list_source(parse_spec(_spec(corpus)).sources[0]))  # neither manifest named
    assert [(r.reason, "`recordings`" in r.detail) for r in nothing] == [("missing_metadata", True)]

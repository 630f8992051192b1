"""bench/scarcity.py end to end on a tiny spec: every condition it is asked for is built, trained on nested
subsets and scored on the test split, and its JSON holds what the README and closing notes quote."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = """\
name: tiny-scarcity
seed: 5
sources:
  - {kind: score, name: chorales, corpus: [bach], limit: 12, excerpt_seconds: 9,
     programs: {soprano: [flute, oboe], alto: [clarinet, viola], tenor: [cello], bass: [contrabass, tuba]}}
  - {kind: score, name: folk, corpus: [oneills1850], limit: 8, excerpt_seconds: 9, genre: folk,
     programs: {'*': [violin, accordion]}}
audio: {sample_rate: 16000, channels: 1, format: flac}
snippets: {duration: 3.0, hop: 3.0, max_per_clip: 2}
splits: {group_by: source_id, fractions: {train: 0.6, valid: 0.2, test: 0.2}}
shards: {max_samples: 32}
"""


@pytest.mark.slow
def test_quick_grid_on_a_tiny_spec_writes_the_promised_json(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(TINY)
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "scarcity.py"), "--spec", str(spec), "--out", str(out),
                        "--quick", "--steps", "6", "--conditions", "none,label-aware,labels-not-transformed",
                        "--tasks", "key,tags,genre"], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    doc = json.loads((out / "scarcity.json").read_text())
    assert (out / "scarcity.png").stat().st_size > 1000
    assert doc["conditions"] == ["none", "label-aware", "labels-not-transformed"]
    assert doc["fractions"] == [0.25, 1.0] and doc["seeds"] == [0] and doc["tasks"] == ["key", "tags", "genre"]
    assert len(doc["spec_hash"]) == 64 and "synthesiser" in doc["versions"]
    runs = doc["runs"]
    assert {(r["condition"], r["fraction"], r["task"]) for r in runs} == {
        (c, f, t) for c in doc["conditions"] for f in doc["fractions"] for t in doc["tasks"]}
    assert all(r["error"] is None or 0.0 <= r["error"] <= 1.0 for r in runs)
    small = {r["train_clips"] for r in runs if r["fraction"] == 0.25}
    full = {r["train_clips"] for r in runs if r["fraction"] == 1.0}
    assert max(small) < min(full)  # nested subsets: a quarter of the clips, then all of them
    for by_condition in doc["summary"].values():
        assert set(by_condition) == set(doc["conditions"])
        assert by_condition["none"]["1.0"]["relative_error_reduction"] == 0.0
        assert {"mean", "std", "n"} <= set(by_condition["label-aware"]["0.25"])
    assert "key" in doc["baseline"] and "mirex" in doc["baseline"]["key"]
    # the two label conditions share their audio and differ in labels only
    aware, kept = doc["datasets"]["label-aware"], doc["datasets"]["labels-not-transformed"]
    assert aware["samples"] == kept["samples"] and aware["spec_hash"] != kept["spec_hash"]
    assert "RER vs none" in r.stdout

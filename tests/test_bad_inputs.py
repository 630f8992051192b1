"""The bad-input corpus through a real build: every clip is used or rejected with its specific reason."""

from collections import Counter

import pyarrow.parquet as pq
import pytest

from mixtape.pipelines.build import RunnerConfig, build
from mixtape.spec import load_spec
from tests.badcorpus import USED, make_corpus

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def corpus_build(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    _, kinds = make_corpus(root)
    spec = load_spec(root / "spec.yaml")
    card = build(spec, str(root / "out"), RunnerConfig(workers=1))
    return root, kinds, card


def _outcomes(out) -> dict[str, str]:
    used = {r["clip_id"] for r in pq.read_table(out / "index.parquet").to_pylist()}
    rejected = {r["clip_id"]: r["reason"] for r in pq.read_table(out / "rejects.parquet").to_pylist()}
    assert not used & set(rejected)
    return {**{c: USED for c in used}, **rejected}


def test_every_kind_gets_its_outcome(corpus_build):
    root, kinds, _card = corpus_build
    outcomes = _outcomes(root / "out")
    table = [(k.name, k.expect, outcomes.get(k.clip_id, "LOST")) for k in kinds]
    print("\n".join(f"{name:<32}{expect:<22}{got}" for name, expect, got in table))
    assert len({k.name for k in kinds}) >= 40
    wrong = [(name, expect, got) for name, expect, got in table if expect != got]
    assert not wrong, wrong


def test_nothing_is_lost(corpus_build):
    root, kinds, card = corpus_build
    acc = card["accounting"]
    outcomes = _outcomes(root / "out")
    assert acc["clips_in"] == acc["clips_used"] + acc["clips_rejected"] == len(outcomes)
    assert {k.clip_id for k in kinds} <= set(outcomes)
    by_reason = Counter(v for v in outcomes.values() if v != USED)
    assert dict(sorted(by_reason.items())) == acc["rejects_by_reason"]
    rejects = pq.read_table(root / "out" / "rejects.parquet").to_pylist()
    assert all(r["detail"] for r in rejects)  # every reject says what was wrong


def test_long_recordings_are_capped_and_resampled(corpus_build):
    root, kinds, _card = corpus_build
    rows = pq.read_table(root / "out" / "index.parquet").to_pylist()
    hour = next(k.clip_id for k in kinds if k.name == "one_hour")
    starts = sorted(r["start_ms"] for r in rows if r["clip_id"] == hour)
    assert len(starts) == 20 and starts[0] == 0 and starts[-1] == 3_599_000  # spread over the whole hour


def test_the_corpus_builds_to_the_same_bytes_in_memory_and_with_two_workers(corpus_build):
    """Broken inputs included: every output file but build.json is byte-identical across runners (reject
    details name files, never objects with memory addresses)."""
    root, _kinds, _card = corpus_build
    spec = load_spec(root / "spec.yaml")
    build(spec, str(root / "out-2"), RunnerConfig(workers=2))
    first = {p.name: p.read_bytes() for p in (root / "out").iterdir() if p.name != "build.json"}
    second = {p.name: p.read_bytes() for p in (root / "out-2").iterdir() if p.name != "build.json"}
    assert sorted(first) == sorted(second)
    for name in first:
        assert first[name] == second[name], name
    details = [r["detail"] for r in pq.read_table(root / "out" / "rejects.parquet").to_pylist()]
    assert not [d for d in details if " at 0x" in d or "\n" in d]

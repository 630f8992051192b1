"""audiomentations transforms as planned ops: validated against the installed library, drawn from the
sample's own generator, recorded, and rendered to the same bytes on every runner and alone."""

from __future__ import annotations

import importlib.util
import json
import random
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

from mixtape.augment import audiomentations_ops as A
from mixtape.dataset.index import recorded_steps
from mixtape.dataset.verify import verify
from mixtape.hashing import rng_for
from mixtape.pipelines.build import RunnerConfig, build
from mixtape.spec import SpecError, load_spec, parse_spec
from tests.conftest import TINY_SPEC

THREE_OPS = TINY_SPEC.replace("name: tiny\n", "name: audiomentations-chain\n").replace(
    "    - {op: gain, p: 1.0, db: [-6, 0]}\n",
    "    - {op: pitch_shift, p: 0.5, semitones: [-2, 2]}\n"
    "    - {op: audiomentations.AddGaussianSNR, p: 0.8, min_snr_db: 10, max_snr_db: 30}\n"
    "    - {op: audiomentations.PeakingFilter, p: 0.8, min_center_freq: 200, max_center_freq: 3000}\n"
    "    - {op: audiomentations.TanhDistortion, p: 0.8}\n")
assert "audiomentations.TanhDistortion" in THREE_OPS


def _spec(chain: list[dict]) -> dict:
    return {"name": "x", "seed": 1, "sources": [{"kind": "folder", "path": "."}],
            "augment": {"variants": 1, "chain": chain}}


def test_a_chain_entry_is_checked_against_the_installed_transform():
    ok = parse_spec(_spec([{"op": "audiomentations.Gain", "p": 0.5, "min_gain_db": -3, "max_gain_db": 3}]))
    assert ok.augment.chain[0].params == (("max_gain_db", 3), ("min_gain_db", -3))
    cases = {
        "audiomentations.PitchShift": ("augment.chain[0].op", "pitch_shift"),
        "audiomentations.TimeStretch": ("augment.chain[0].op", "time_stretch"),
        "audiomentations.AddBackgroundNoise": ("augment.chain[0].op", "mix_with"),
        "audiomentations.NoSuchThing": ("augment.chain[0].op", "has no waveform transform"),
    }
    for op, (where, hint) in cases.items():
        with pytest.raises(SpecError) as e:
            parse_spec(_spec([{"op": op}]))
        assert where in str(e.value) and hint in str(e.value), str(e.value)
    with pytest.raises(SpecError, match=r"augment\.chain\[0\]\.min_db: is not an argument of audiomentations\.Gain "
                                        r"\(it takes min_gain_db"):
        parse_spec(_spec([{"op": "audiomentations.Gain", "min_db": -3}]))
    with pytest.raises(SpecError, match=r"augment\.chain\[0\]: audiomentations\.Gain refuses these arguments"):
        parse_spec(_spec([{"op": "audiomentations.Gain", "min_gain_db": 6, "max_gain_db": -6}]))
    # optional backends: a transform whose backend is missing fails the spec (on a trial render), not the
    # build; RoomSimulator needs pyroomacoustics, Mp3Compression's default backend fast_mp3_augment
    for op, backend in (("audiomentations.RoomSimulator", "pyroomacoustics"),
                        ("audiomentations.Mp3Compression", "fast_mp3_augment")):
        if importlib.util.find_spec(backend) is not None:
            parse_spec(_spec([{"op": op}]))
        else:
            with pytest.raises(SpecError, match=rf"augment\.chain\[0\]\.op: {op} needs a package that is not "
                                                rf"installed \(No module named '{backend}'\)"):
                parse_spec(_spec([{"op": op}]))


def test_draws_come_from_the_sample_generator_and_leave_the_global_ones_alone():
    random.seed(123)
    np.random.seed(123)
    before = (random.getstate(), np.random.get_state()[1].copy())
    x = (0.4 * np.sin(np.arange(8000) / 7.0)).astype(np.float32)[None]
    renders = []
    for _ in range(2):
        step = A.draw("audiomentations.AddColorNoise", {"min_snr_db": 10, "max_snr_db": 20}, rng_for(4, "c:1/0/1"))
        renders.append(A.realise(x, 8000, step))
    (y1, done1), (y2, done2) = renders
    assert np.array_equal(y1, y2) and done1 == done2 and not np.array_equal(y1, x)
    assert {"desired_noise_rms", "f_decay", "apply_a_weighting"} <= set(done1)
    y3, done3 = A.realise(x, 8000, done1)  # a recorded step, applied with its parameters frozen
    assert np.array_equal(y1, y3) and done3 == done1
    other = A.realise(x, 8000, A.draw("audiomentations.AddColorNoise", {}, rng_for(4, "c:1/0/2")))[0]
    assert not np.array_equal(y1, other)  # another key, other draws
    assert random.getstate() == before[0] and np.array_equal(np.random.get_state()[1], before[1])


@pytest.mark.slow
def test_two_builds_with_three_audiomentations_ops_are_byte_identical_and_record_what_they_drew(tiny_root,
                                                                                               tmp_path):
    (tiny_root / "am.yaml").write_text(THREE_OPS)
    spec = load_spec(tiny_root / "am.yaml")
    one = build(spec, str(tmp_path / "one"), RunnerConfig(workers=1))
    build(spec, str(tmp_path / "two"), RunnerConfig(workers=2))
    for p in sorted((tmp_path / "one").iterdir()):
        if p.name != "build.json":
            assert p.read_bytes() == (tmp_path / "two" / p.name).read_bytes(), p.name
    assert one["versions"]["audiomentations"] == importlib.metadata.version("audiomentations")
    rows = pq.read_table(tmp_path / "one" / "index.parquet").to_pylist()
    steps = [s for r in rows for s in recorded_steps(r["augment"])]
    snr = [s for s in steps if s["op"] == "audiomentations.AddGaussianSNR"]
    peaking = [s for s in steps if s["op"] == "audiomentations.PeakingFilter"]
    assert snr and peaking and any(s["op"] == "audiomentations.TanhDistortion" for s in steps)
    assert all(s["noise_std"] > 0 and "seed" in s for s in snr)  # drawn on the sample's own audio
    assert all(200 <= s["center_freq"] <= 3000 for s in peaking)
    assert json.loads(peaking[0]["init"]) == {"max_center_freq": 3000, "min_center_freq": 200}
    # the plan holds what re-renders a sample alone: op, arguments, seed
    plan = [json.loads(r["record"]) for r in pq.read_table(tmp_path / "one" / "plan.parquet").to_pylist()]
    planned = [s for rec in plan for s in rec["augment"] if s["op"].startswith("audiomentations.")]
    assert planned and all(set(s) == {"op", "init", "seed"} for s in planned)
    report = verify(str(tmp_path / "one"), rerender_fraction=1.0, seed=3)
    assert report.ok, report.problems
    assert len(report.rerendered) == sum(len(s["shards"]) for s in one["splits"].values())


@pytest.mark.slow
def test_a_recorded_sample_renders_alone_in_a_fresh_process_to_the_same_bytes(tiny_root, tmp_path):
    (tiny_root / "am.yaml").write_text(THREE_OPS)
    out = tmp_path / "ds"
    build(load_spec(tiny_root / "am.yaml"), str(out), RunnerConfig(workers=1))
    roots = json.loads((out / "build.json").read_text())["source_roots"]
    plan = pq.read_table(out / "plan.parquet").to_pylist()
    chosen = next(r for r in plan if any(s["op"].startswith("audiomentations.")
                                         for s in json.loads(r["record"])["augment"]))
    index = {r["sample_key"]: r for r in pq.read_table(out / "index.parquet").to_pylist()}
    code = ("import json, sys, hashlib\n"
            "from mixtape.records import PlanRow\n"
            "from mixtape.rendering import SourceCache, render_sample\n"
            "from mixtape.spec import AudioSpec\n"
            "rec, roots, audio = json.loads(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3])\n"
            "data = render_sample(PlanRow.from_record(rec, roots), SourceCache(AudioSpec(**audio)))[0]\n"
            "print(hashlib.sha256(data).hexdigest())\n")
    card = json.loads((out / "dataset.json").read_text())
    r = subprocess.run([sys.executable, "-c", code, chosen["record"], json.dumps(roots),
                        json.dumps(card["spec"]["audio"])], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == index[chosen["key"]]["audio_sha256"]

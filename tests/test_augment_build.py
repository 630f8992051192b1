"""Augmentation in real builds: partners, material sources, lengths, labels, and byte-identical renders."""

import io
import json
import multiprocessing
import pickle

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import webdataset as wds

from mixtape.augment import dsp
from mixtape.dataset.index import recorded_steps
from mixtape.pipelines.build import RunnerConfig, build
from mixtape.spec import load_spec

pytestmark = pytest.mark.slow

AUG_SPEC = """\
name: augmented
seed: 21
sources:
  - kind: freesound_dump
    path: collection/freesound
    acousticbrainz: ../acousticbrainz
  - {kind: folder, name: rooms, path: irs}
audio: {sample_rate: 8000, channels: 1, format: flac}
snippets: {duration: 1.0, hop: 1.0}
splits: {group_by: pack, fractions: {train: 0.6, valid: 0.2, test: 0.2}}
augment:
  variants: 3
  impulse_responses: rooms
  chain:
    - {op: pitch_shift, p: 0.8, semitones: [-2, 2]}
    - {op: time_stretch, p: 0.8, rate: [0.8, 1.25]}
    - {op: speed, p: 0.4, semitones: [-1, 1]}
    - {op: mix, p: 0.5, snr_db: [3, 12], labels: soft}
    - {op: add_noise, p: 0.3, snr_db: [20, 30], colour: [pink, white]}
    - {op: filter, p: 0.3}
    - {op: reverb, p: 0.3}
    - {op: clip, p: 0.2, threshold: [0.5, 0.9]}
    - {op: compress, p: 0.2}
shards: {max_samples: 16}
"""


@pytest.fixture(scope="module")
def augmented(tiny_root):
    irs = tiny_root / "irs"
    irs.mkdir(exist_ok=True)
    for i, rt60 in enumerate((0.2, 0.5)):
        sf.write(irs / f"room{i}.wav", dsp.synthetic_ir(8000, rt60, seed=i)[0], 8000)
    (tiny_root / "aug.yaml").write_text(AUG_SPEC)
    spec = load_spec(tiny_root / "aug.yaml")
    out = tiny_root / "aug-out"
    card = build(spec, str(out), RunnerConfig(workers=1), overwrite=True)
    index = pq.read_table(out / "index.parquet").to_pylist()
    return spec, out, card, index


def samples(out, names):
    for name in names:
        for s in wds.WebDataset(str(out / name), shardshuffle=False):
            yield s["__key__"], json.loads(s["json"]), sf.read(io.BytesIO(s["flac"]), dtype="float32")[0]


def test_every_sample_has_the_snippet_length_and_its_parameters(augmented):
    _, out, card, index = augmented
    names = [s["name"] for split in card["splits"].values() for s in split["shards"]]
    n = 0
    for key, doc, audio in samples(out, names):
        n += 1
        assert audio.shape == (8000,), key
        rate = np.prod([s["rate"] for s in doc["augment"] if s["op"] == "time_stretch"] or [1.0]) * np.prod(
            [2 ** (s["semitones"] / 12) for s in doc["augment"] if s["op"] == "speed"] or [1.0])
        assert doc["window"]["source_duration_ms"] == round(1000 * rate)  # a speed change reads factor x more
    assert n == len(index)
    ops = {s["op"] for r in index for s in recorded_steps(r["augment"])}
    assert ops == {"pitch_shift", "time_stretch", "speed", "mix", "add_noise", "filter", "reverb", "clip", "compress"}
    summary = card["augmentation"]
    assert summary["augmented_samples"] == sum(1 for r in index if r["augment"])
    assert set(summary["ops"]) == ops


def test_partners_come_from_the_same_split_and_another_clip(augmented):
    _, _, _, index = augmented
    split_of = {r["clip_id"]: r["split"] for r in index if r["variant"] == 0}
    mixes = [(r, s) for r in index for s in recorded_steps(r["augment"]) if s["op"] == "mix"]
    assert mixes
    for row, step in mixes:
        partner_clip = step["partner"].rsplit("/", 1)[0]
        assert split_of[partner_clip] == row["split"] == "train" and partner_clip != row["clip_id"]


def test_labels_follow_the_recorded_parameters(augmented):
    _, _out, card, index = augmented
    originals = {r["sample_key"]: r for r in index if r["variant"] == 0}
    checked = 0
    for r in index:
        chain = recorded_steps(r["augment"])
        if r["variant"] == 0 or any(s["op"] == "mix" for s in chain):
            continue
        base = originals[r["sample_key"].rsplit("/", 1)[0] + "/0"]
        # the index stores every parameter as a double; a pitch shift is whole semitones
        semis = round(sum(s["semitones"] for s in chain if s["op"] in ("pitch_shift", "speed")))
        rate = np.prod([s["rate"] for s in chain if s["op"] == "time_stretch"] or [1.0]) * np.prod(
            [2 ** (s["semitones"] / 12) for s in chain if s["op"] == "speed"] or [1.0])
        if base["musical_key"]:
            from mixtape.augment.label_transforms import transpose_key

            tonic, mode = base["musical_key"].split(" ")
            moved = transpose_key({"tonic": tonic, "mode": mode}, semis)
            assert r["musical_key"] == f"{moved['tonic']} {moved['mode']}"
            checked += 1
        if base["tempo_bpm"] is not None:
            assert r["tempo_bpm"] == pytest.approx(base["tempo_bpm"] * rate, abs=0.002)
    assert checked > 0
    attribution = {a["clip_id"] for a in card["attribution"]}
    assert {"rooms:room0.wav", "rooms:room1.wav"} <= attribution  # material clips are credited too
    assert not any(r["clip_id"].startswith("rooms:") for r in index)  # …but are not samples
    irs = {s.get("ir") for r in index for s in recorded_steps(r["augment"]) if s["op"] == "reverb"}
    assert irs <= {"rooms:room0.wav", "rooms:room1.wav"} and irs


def test_only_train_is_augmented(augmented):
    _, _, _, index = augmented
    assert all(not r["augment"] for r in index if r["split"] != "train")


def test_two_worker_build_of_the_full_chain_is_byte_identical_with_no_cache_at_all(augmented, tiny_root):
    """Render by source, partners and impulse responses from other sources, every block converted afresh
    each time it is needed (a collection infinitely bigger than the cache): the same bytes."""
    spec, out, _, _ = augmented
    other = tiny_root / "aug-out-2"
    card = build(spec, str(other), RunnerConfig(workers=2, cache_mb=0), overwrite=True)
    metrics = card["_build"]["metrics"]
    assert metrics.get("source_blocks", 0) > 0 and metrics.get("source_block_hits", 0) == 0
    for p in out.iterdir():
        if p.name != "build.json":
            assert p.read_bytes() == (other / p.name).read_bytes(), p.name


def _render_in_fresh_process(payload):
    rows, audio = pickle.loads(payload)
    from mixtape.rendering import SourceCache, render_sample

    cache = SourceCache(audio, capacity_bytes=1)  # tiny cache: every row decodes again
    return {row.key: render_sample(row, cache)[0] for row in rows}


def test_rendering_a_sample_twice_in_other_processes_and_orders_gives_the_same_bytes(augmented):
    spec, _, _, _ = augmented
    from mixtape.pipelines.ingest import ProbeClip
    from mixtape.planning import plan_clip, pool_refs
    from mixtape.sources.registry import list_source

    clips = []
    for c in list_source(spec.sources[0]):
        if hasattr(c, "uri"):
            probed = list(ProbeClip(8).process(c))
            if probed and hasattr(probed[0], "sha256"):
                clips.append(probed[0])
    from dataclasses import replace

    clips = [replace(c, split="train") for c in clips[:4]]
    pool = sorted((ref for c in clips for ref in pool_refs(c, spec)), key=lambda r: r["hash"])
    rows = [r for c in clips for r in plan_clip(c, spec, {"train": pool}) if r.augment][:12]
    assert any(any(s["op"] == "mix" for s in r.augment) for r in rows)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as p:
        forward, backward = p.map(_render_in_fresh_process, [pickle.dumps((rows, spec.audio)),
                                                            pickle.dumps((rows[::-1], spec.audio))])
    assert forward.keys() == backward.keys() and all(forward[k] == backward[k] for k in forward)


def test_mix_with_a_background_collection(tiny_root, tmp_path):
    bg = tmp_path / "bg"
    bg.mkdir()
    for i in range(3):
        noise = dsp.coloured_noise((1, 3 * 8000), "pink", seed=i)[0] * 0.1
        sf.write(bg / f"crowd{i}.wav", noise, 8000)
    spec_text = (AUG_SPEC
                 .replace("  - {kind: folder, name: rooms, path: irs}", f"  - {{kind: folder, name: bg, path: {bg}}}")
                 .replace("  impulse_responses: rooms", "  mix_with: bg")
                 .replace("collection/freesound", str(tiny_root / "collection/freesound")))
    (tmp_path / "bg.yaml").write_text(spec_text)
    card = build(load_spec(tmp_path / "bg.yaml"), str(tmp_path / "out"))
    index = pq.read_table(tmp_path / "out" / "index.parquet").to_pylist()
    partners = [s["partner"] for r in index for s in recorded_steps(r["augment"]) if s["op"] == "mix"]
    assert partners and all(p.startswith("bg:crowd") for p in partners)
    assert not any(r["clip_id"].startswith("bg:") for r in index)
    assert {"bg:crowd0.wav", "bg:crowd1.wav", "bg:crowd2.wav"} <= {a["clip_id"] for a in card["attribution"]}
    acc = card["accounting"]
    assert acc["clips_in"] == acc["clips_used"] + acc["clips_rejected"]

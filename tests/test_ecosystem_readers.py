"""mixtape shards read by the tools users already have: a user's own ``webdataset.DataPipeline`` with
mixtape's stages (trained through, with DataLoader workers), webdataset's own tar reader, and Hugging Face
``datasets``' webdataset loader with the card's features."""

from __future__ import annotations

import io
import json
import random

import numpy as np
import soundfile as sf
import torch
import webdataset as wds

from mixtape.dataset.api import open_dataset
from mixtape.dataset.hf import hf_data_files, hf_features
from mixtape.train import wds_stages as mx
from mixtape.train.models import ModelSpec, build_model
from mixtape.train.targets import LabelEncoder
from mixtape.train.tasks import TaskSet


def _pipeline(ds, reader, crop_seconds=0.5):
    return wds.DataPipeline(
        wds.SimpleShardList(ds.shards("train")),
        wds.split_by_node, wds.split_by_worker,
        reader,
        wds.shuffle(20, rng=random.Random(0)),  # a private generator: the order repeats
        mx.decode(ds.card),
        mx.random_crop(seconds=crop_seconds, seed=1),
        wds.batched(4, collation_fn=mx.collate, partial=True),
    )


def test_a_users_webdataset_pipeline_trains_on_mixtape_shards_with_loader_workers(tiny_build):
    out, _ = tiny_build
    ds = open_dataset(str(out))
    train_keys = sorted(r["sample_key"] for r in ds.index(["sample_key", "split"]) if r["split"] == "train")
    loader = torch.utils.data.DataLoader(_pipeline(ds, mx.safe_samples()), batch_size=None, num_workers=2)
    encoder = LabelEncoder.from_card(ds.card)
    tasks = TaskSet.from_names(["tags", "key"], encoder)
    torch.manual_seed(0)
    model = build_model(ModelSpec("shortchunk-small", tasks.size, ds.card["audio"]["sample_rate"]))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    before = [p.detach().clone() for p in model.parameters()]
    seen, losses = [], []
    for batch in loader:
        assert batch["audio"].shape[1] == 4000  # 0.5 s at the card's 8 kHz
        logits = model(batch["audio"])
        loss, _ = tasks.loss(logits, batch["targets"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        seen += batch["keys"]
    assert sorted(seen) == train_keys  # split_by_worker: every train sample exactly once over two workers
    assert len(losses) >= 3 and all(np.isfinite(losses))
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_webdatasets_own_reader_and_mixtapes_safe_one_give_the_same_samples(tiny_build):
    out, _ = tiny_build
    ds = open_dataset(str(out))
    ours = {b["__key__"]: b for b in wds.DataPipeline(wds.SimpleShardList(ds.shards("train")), mx.safe_samples(),
                                                      mx.decode(ds.card))}
    stock = {b["__key__"]: b for b in wds.DataPipeline(wds.SimpleShardList(ds.shards("train")),
                                                       wds.tarfile_to_samples(), mx.decode(ds.card))}
    assert set(ours) == set(stock) and len(ours) == ds.samples("train")
    for key, a in ours.items():
        b = stock[key]
        assert np.array_equal(a["audio"], b["audio"]) and a["clip"] == b["clip"]
        assert all(np.array_equal(a["targets"][t], b["targets"][t]) for t in a["targets"])
    crops = [list(wds.DataPipeline(wds.SimpleShardList(ds.shards("train")), mx.safe_samples(), mx.decode(ds.card),
                                   mx.random_crop(samples=1000, seed=5))) for _ in range(2)]
    assert all(np.array_equal(x["audio"], y["audio"]) for x, y in zip(*crops, strict=True))  # seeded by key


def test_hugging_face_datasets_loads_the_shards_with_the_cards_features(tiny_build, tmp_path):
    from datasets import load_dataset

    out, _ = tiny_build
    ds = open_dataset(str(out))
    files = hf_data_files(ds)
    assert set(files) == {s for s in ds.splits if ds.samples(s)}
    loaded = load_dataset("webdataset", data_files=files, features=hf_features(ds.card),
                          cache_dir=str(tmp_path / "hf"))  # never the user's ~/.cache
    index = {r["sample_key"]: r for r in ds.index()}
    for split, table in loaded.items():
        assert table.num_rows == ds.samples(split)
        for row in table:
            meta, expected = row["json"], index[row["__key__"]]
            assert meta["key"] == row["__key__"] and meta["split"] == split == expected["split"]
            assert sorted(meta["labels"]["tags"]) == sorted(expected["tags"])
            tonic_mode = meta["labels"]["key"]
            assert (f"{tonic_mode['tonic']} {tonic_mode['mode']}" if tonic_mode else "") == expected["musical_key"]
            audio, sr = sf.read(io.BytesIO(row["flac"]), dtype="float32")
            assert sr == ds.card["audio"]["sample_rate"] and len(audio) == expected["duration_ms"] * sr // 1000
    assert json.dumps(hf_features(ds.card).to_dict())  # the features are plain data, to store or share


def test_the_documented_examples_run_as_written(tiny_build):
    """The webdataset example in docs/training.md runs on a real build (its DIR replaced); every Python
    block of the docs at least compiles."""
    import re

    from tests import documentation

    blocks = re.findall(r"```python\n(.*?)```", documentation.text(), flags=re.S)
    for block in blocks:
        compile(block, "<docs>", "exec")
    example = next(b for b in blocks if "wds.DataPipeline" in b)
    out, _ = tiny_build
    scope: dict = {}
    exec(example.replace('"DIR"', repr(str(out))).replace("num_workers=2", "num_workers=0"), scope)
    batch = next(iter(scope["loader"]))
    assert batch["audio"].shape == (16, 2 * 8000) and set(batch["targets"]) >= {"key", "tags"}

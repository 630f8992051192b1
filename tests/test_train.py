"""The trainer against real shards: over a local HTTP server, with workers, and end to end."""

import json
from collections import Counter

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from mixtape.train.data import LabelEncoder, ShardStream, crop, expand_urls
from mixtape.train.loop import TrainConfig, TrainError, lr_at, train
from mixtape.train.metrics import clip_level, roc_auc_macro
from mixtape.train.models import ShortChunkCNN, count_parameters


def test_brace_expansion_keeps_order():
    assert expand_urls("http://h/train-{000000..000002}.tar") == [
        "http://h/train-000000.tar", "http://h/train-000001.tar", "http://h/train-000002.tar"]
    assert expand_urls("a-{0..1}.tar b.tar") == ["a-0.tar", "a-1.tar", "b.tar"]


def test_crop_random_centre_and_pad():
    x = np.arange(10, dtype=np.float32)
    assert crop(x, 4, None).tolist() == [3, 4, 5, 6]
    assert crop(x, 12, None).tolist() == [*range(10), 0, 0]
    rng = np.random.default_rng(0)
    starts = {int(crop(x, 4, rng)[0]) for _ in range(50)}
    assert starts == set(range(7))


def test_label_encoder_multi_hot_ignores_unknown_tags():
    enc = LabelEncoder(["bass", "drums", "piano"])
    assert enc.encode({"tags": ["piano", "bass", "kazoo"]}).tolist() == [1, 0, 1]


def test_metrics():
    t = np.array([[1, 0], [0, 1], [1, 1], [0, 1]], dtype=float)
    s = np.array([[0.9, 0.2], [0.1, 0.8], [0.8, 0.7], [0.3, 0.9]])
    assert roc_auc_macro(s, t) == pytest.approx(1.0)  # both columns perfectly ranked
    cs, _ct = clip_level(s, t, ["a", "a", "b", "b"])
    assert cs.shape == (2, 2) and np.allclose(cs[0], [0.5, 0.5])
    assert roc_auc_macro(np.ones((2, 1)), np.ones((2, 1))) is None


def test_lr_schedule_warms_up_then_decays():
    lrs = [lr_at(s, 100, 10, 1.0) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert lrs[10] > lrs[50] > lrs[99] >= 0.05


def test_small_model_is_small_and_takes_any_length():
    model = ShortChunkCNN(13, 16000)
    assert count_parameters(model) < 100_000
    assert model(torch.zeros(2, 16000)).shape == (2, 13)
    assert model(torch.zeros(2, 48000)).shape == (2, 13)


@pytest.mark.slow
def test_each_shard_read_once_across_dataloader_workers(tiny_build, http_server):
    out, card = tiny_build
    base = http_server(out)
    names = [s["name"] for s in card["splits"]["train"]["shards"]]
    stream = ShardStream([f"{base}/{n}" for n in names], LabelEncoder(card["vocabularies"]["tags"]), 8000,
                         crop_samples=4000, shuffle_buffer=16, seed=1)
    loader = DataLoader(stream, batch_size=4, num_workers=2, collate_fn=lambda b: list(zip(*b, strict=True)))
    keys = [k for _, _, ks, _ in loader for k in ks]
    counts = Counter(keys)
    assert len(counts) == card["splits"]["train"]["samples"] and set(counts.values()) == {1}


@pytest.mark.slow
def test_training_from_http_shards_decreases_the_loss(tiny_build, http_server, tmp_path):
    out, card = tiny_build
    base = http_server(out)
    n = len(card["splits"]["train"]["shards"])
    cfg = TrainConfig(shards=f"{base}/train-{{000000..{n - 1:06d}}}.tar", out=str(tmp_path / "run"), steps=40,
                      batch_size=8, crop_seconds=0.75, lr=5e-3, warmup_steps=5, seed=3)
    result = train(cfg, log=lambda _m: None)
    assert result.steps == 40 and result.samples == 320
    assert result.final_loss < 0.8 * result.first_loss
    assert result.valid["snippets"] == card["splits"]["valid"]["samples"]
    assert result.valid["roc_auc"] is None or 0 <= result.valid["roc_auc"] <= 1
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert len(metrics["losses"]) == 40
    ckpt = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)  # our own file, weights only
    assert ckpt["step"] == 40 and ckpt["tags"] == card["vocabularies"]["tags"]


def test_missing_card_is_a_clear_error(tmp_path):
    with pytest.raises(TrainError, match="--card"):
        train(TrainConfig(shards=str(tmp_path / "train-000000.tar"), out=str(tmp_path / "run"), steps=1))


@pytest.mark.slow
def test_a_dataset_folder_or_url_stands_for_its_train_shards(tiny_build, http_server, tmp_path):
    from mixtape.train.loop import resolve_dataset

    out, card = tiny_build
    names = [s["name"] for s in card["splits"]["train"]["shards"]]
    for spec in (str(out), http_server(out) + "/dataset.json"):
        _, train, valid = resolve_dataset(TrainConfig(shards=spec, out=str(tmp_path)))
        assert [u.rsplit("/", 1)[1] for u in train] == names
        assert [u.rsplit("/", 1)[1] for u in valid] == [s["name"] for s in card["splits"]["valid"]["shards"]]
    with pytest.raises(TrainError, match="neither shard URLs nor a dataset folder"):
        resolve_dataset(TrainConfig(shards=str(tmp_path / "nothing"), out=str(tmp_path)))

"""What ``mixtape evaluate | embed | baseline`` do with a finished run and a set of shards."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from mixtape.dataset.api import DatasetError, open_dataset
from mixtape.dataset.card import CardError, read_card, shard_checks
from mixtape.dataset.names import CARD_NAME
from mixtape.errors import MixtapeError
from mixtape.train.baseline import estimate_clip
from mixtape.train.checkpoint import BEST, CHECKPOINT, checkpoint_path, load_checkpoint
from mixtape.train.config import EVAL_BATCH_SIZE, EVAL_SPLIT
from mixtape.train.data import ShardStream, StreamStats, expand_urls, sibling_url
from mixtape.train.evaluate import aggregate_targets, evaluate_predictions, predict
from mixtape.train.metrics import group_mean, key_metrics, tempo_metrics
from mixtape.train.models import ModelSpec, MusicModel, build_model
from mixtape.train.targets import LabelEncoder, target_to_tempo
from mixtape.train.tasks import TaskSet
from mixtape.train.transfer import label_columns, write_table


class RunError(MixtapeError, RuntimeError):
    pass


def dataset_shards(spec: str, split: str) -> tuple[dict[str, Any], list[str]]:
    """(card, shard URLs) for shard URLs (brace-expanded; the card beside them) or for a dataset folder /
    URL (its card's ``split`` shards). The card is validated: its shard names cannot point elsewhere."""
    spec = spec.strip()
    if not spec.endswith(".tar") and "{" not in spec and " " not in spec:
        try:
            dataset = open_dataset(spec)
        except DatasetError as e:
            raise RunError(f"{spec} is neither shard URLs nor a dataset folder: {e}") from None
        try:
            return dataset.card, dataset.shards(split)
        except DatasetError as e:
            raise RunError(str(e)) from None
    urls = expand_urls(spec)
    return _card(sibling_url(urls[0], CARD_NAME), "no dataset card beside the shards"), urls


def _card(url: str, context: str) -> dict[str, Any]:
    try:
        return read_card(url)
    except CardError as e:
        raise RunError(f"{context}: {e}") from None


class LoadedRun:
    """A trained model rebuilt from its checkpoint (best.pt when early stopping kept one)."""

    def __init__(self, run: str | Path, which: str = "best"):
        path = checkpoint_path(run, BEST) if which == "best" else checkpoint_path(run, CHECKPOINT)
        if which == "best" and not path.exists():
            path = checkpoint_path(run, CHECKPOINT)
        ckpt = load_checkpoint(path)
        self.path = path
        self.spec = ModelSpec.from_dict(ckpt["model_spec"])
        self.tasks = TaskSet.from_list(ckpt["tasks"])
        vocab = ckpt["vocabularies"]
        self.encoder = LabelEncoder(list(vocab["tags"]), {k: list(v) for k, v in vocab["classes"].items()},
                                    list(vocab["key"]))
        self.window = int(ckpt["window"])
        self.step = int(ckpt["step"])
        self.model: MusicModel = build_model(self.spec)
        self.model.load_state_dict(ckpt["model"])
        self.model.eval()

    def check_rate(self, card: dict[str, Any]) -> None:
        sr = int(card["audio"]["sample_rate"])
        if sr != self.spec.sample_rate:
            raise RunError(f"the shards are at {sr} Hz but the model was trained at {self.spec.sample_rate} Hz")


def vocabulary_differences(run: LabelEncoder, card: dict[str, Any]) -> list[str]:
    """How a run's vocabularies differ from a dataset's: labels one has and the other lacks are scored as
    absent (their columns print as dashes), so a user must hear about it."""
    data = LabelEncoder.from_card(card)
    out = []

    def diff(what: str, ours: list[str], theirs: list[str]) -> None:
        only_run, only_data = sorted(set(ours) - set(theirs)), sorted(set(theirs) - set(ours))
        if only_run or only_data:
            out.append(f"{what}: only in the run {', '.join(only_run) or '-'}; only in the dataset "
                       f"{', '.join(only_data) or '-'}")

    diff("tags", run.tags, data.tags)
    for name in sorted(set(run.classes) | set(data.classes)):
        diff(f"class {name}", run.classes.get(name, []), data.classes.get(name, []))
    return out


def evaluate_run(run: str, shards: str, split: str = EVAL_SPLIT, batch_size: int = EVAL_BATCH_SIZE,
                 workers: int = 0) -> tuple[LoadedRun, dict[str, Any]]:
    loaded = LoadedRun(run)
    card, urls = dataset_shards(shards, split)
    loaded.check_rate(card)
    warnings = vocabulary_differences(loaded.encoder, card)
    with torch.inference_mode():
        pred = predict(loaded.model, loaded.tasks, urls, loaded.encoder, loaded.spec.sample_rate, loaded.window,
                       batch_size=batch_size, num_workers=workers, expected=shard_checks(card, urls))
    report = evaluate_predictions(loaded.tasks, pred)
    report["warnings"] = [f"the dataset's vocabularies differ from the run's: {w}" for w in warnings]
    return loaded, report


def embed_run(run: str, shards: str, out: str, split: str = EVAL_SPLIT, batch_size: int = EVAL_BATCH_SIZE,
              workers: int = 0) -> dict[str, Any]:
    """Per-clip mean of the penultimate features over every window of the clip, to Parquet."""
    loaded = LoadedRun(run)
    card, urls = dataset_shards(shards, split)
    loaded.check_rate(card)
    encoder = LabelEncoder.from_card(card)  # label columns from the target dataset's own vocabularies
    with torch.inference_mode():
        pred = predict(loaded.model, None, urls, encoder, loaded.spec.sample_rate, loaded.window,
                       batch_size=batch_size, num_workers=workers, embeddings=True, expected=shard_checks(card, urls))
    if pred.embeddings is None:
        raise RunError(f"no samples could be read from {shards} ({pred.stats.corrupt} corrupt)")
    clips, feats = group_mean(pred.embeddings, pred.clips)
    labels = label_columns(encoder, aggregate_targets(pred.targets, pred.clips))
    write_table(out, clips, feats, labels, {"mixtape.embedding": "model", "mixtape.run": str(loaded.path),
                                            "mixtape.dataset": str(card.get("name"))})
    return {"clips": len(clips), "dim": int(feats.shape[1]), "windows": len(pred.keys), "out": out,
            "stream": pred.stats.as_dict()}


def baseline_run(shards: str, split: str = EVAL_SPLIT, out: str | None = None) -> dict[str, Any]:
    """Key (MIREX) and tempo (Acc1 / Acc2) of the non-learned baseline per clip; optionally its features."""
    card, urls = dataset_shards(shards, split)
    sr = int(card["audio"]["sample_rate"])
    encoder = LabelEncoder.from_card(card)
    stream = ShardStream(urls, encoder, sr, crop_samples=None, batch_size=1, shuffle_shards=False,
                         expected=shard_checks(card, urls))
    snippets: dict[str, list[np.ndarray]] = {}
    targets: dict[str, list[np.ndarray]] = {}
    clips: list[str] = []
    stats = StreamStats()
    for batch in stream:
        stats.add(batch["stats"])
        if batch["end"] or batch["variants"][0] != 0:  # originals only: variants carry transformed labels
            continue
        clip = batch["clips"][0]
        snippets.setdefault(clip, []).append(batch["audio"][0].numpy())
        clips.append(clip)
        for name, value in batch["targets"].items():
            targets.setdefault(name, []).append(value.numpy())
    if not clips:
        raise RunError(f"no samples could be read from {shards} ({stats.corrupt} corrupt)")
    order = sorted(snippets)
    estimates = [estimate_clip(c, snippets[c], sr) for c in order]
    clip_targets = aggregate_targets({k: np.concatenate(v) for k, v in targets.items()}, clips)
    key_est = np.zeros((len(order), 24))
    key_est[np.arange(len(order)), [e.key for e in estimates]] = 1.0
    report = {"clips": len(order), "snippets": len(clips),
              "key": key_metrics(key_est, clip_targets["key"]),
              "tempo": tempo_metrics(np.array([e.tempo for e in estimates]),
                                     target_to_tempo(clip_targets["tempo"].astype(np.float64))),
              "stream": stats.as_dict()}
    if out:
        write_table(out, order, np.stack([e.features for e in estimates]), label_columns(encoder, clip_targets),
                    {"mixtape.embedding": "baseline: chroma + key profiles + onset autocorrelation",
                     "mixtape.dataset": str(card.get("name"))})
        report["out"] = out
    return report

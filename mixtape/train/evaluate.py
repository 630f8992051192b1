"""Predictions over shards, aggregated per snippet and per clip, and the tables ``mixtape evaluate`` prints.

Evaluation tiles every snippet with the model's input windows (nothing is cropped away), averages window
outputs (sigmoids, softmaxes, log2 tempo) per snippet and per clip, and scores each level. Clip level is
what a user of the model sees: one decision per recording.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from mixtape.train.data import ShardStream, StreamStats
from mixtape.train.metrics import group_mean
from mixtape.train.models import MusicModel
from mixtape.train.targets import LabelEncoder
from mixtape.train.tasks import TaskSet, headline


@dataclass
class Predictions:
    """One row per evaluation window."""

    outputs: dict[str, np.ndarray]  # task -> predictions
    targets: dict[str, np.ndarray]  # target name -> targets
    keys: list[str]
    clips: list[str]
    embeddings: np.ndarray | None
    stats: StreamStats


def predict(model: MusicModel, tasks: TaskSet | None, urls: list[str], encoder: LabelEncoder, sample_rate: int,
            window: int, batch_size: int = 32, num_workers: int = 0, embeddings: bool = False,
            device: str = "cpu", originals_only: bool = True,
            expected: dict[str, tuple[str, int]] | None = None) -> Predictions:
    """Model outputs for every evaluation window. ``originals_only`` drops augmented variants (variant > 0):
    their labels were transformed (a pitch-shifted key, a stretched tempo), so pooling them with the
    original under one clip would mix labels; valid and test splits hold originals only anyway."""
    stream = ShardStream(urls, encoder, sample_rate, crop_samples=window, batch_size=batch_size, crop="windows",
                         shuffle_shards=False, expected=expected)
    outputs: dict[str, list[np.ndarray]] = {}
    targets: dict[str, list[np.ndarray]] = {}
    keys: list[str] = []
    clips: list[str] = []
    embeds: list[np.ndarray] = []
    stats = StreamStats()
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for batch in DataLoader(stream, batch_size=None, num_workers=num_workers):
            stats.add(batch["stats"])
            if batch["end"]:
                continue
            keep = [i for i, v in enumerate(batch["variants"]) if v == 0 or not originals_only]
            if not keep:
                continue
            if len(keep) < len(batch["keys"]):
                batch = _subset(batch, keep)
            wave = batch["audio"].to(device)
            feats = model.embed(wave)
            if tasks is not None:
                for name, value in tasks.predict(model.head(feats)).items():
                    outputs.setdefault(name, []).append(value)
            if embeddings:
                embeds.append(feats.float().cpu().numpy())
            for name, value in batch["targets"].items():
                targets.setdefault(name, []).append(value.numpy())
            keys.extend(batch["keys"])
            clips.extend(batch["clips"])
    model.train(was_training)
    cat = {k: np.concatenate(v) for k, v in outputs.items()}
    return Predictions(cat, {k: np.concatenate(v) for k, v in targets.items()}, keys, clips,
                       np.concatenate(embeds) if embeds else None, stats)


def _subset(batch: dict[str, Any], rows: list[int]) -> dict[str, Any]:
    index = torch.tensor(rows)
    return {**batch, "audio": batch["audio"][index], "targets": {k: v[index] for k, v in batch["targets"].items()},
            "keys": [batch["keys"][i] for i in rows], "clips": [batch["clips"][i] for i in rows],
            "variants": [batch["variants"][i] for i in rows]}


def aggregate_targets(targets: dict[str, np.ndarray], groups: list[str]) -> dict[str, np.ndarray]:
    """Per group: the union of tags; for class, key and tempo targets the first labelled row's value
    (windows of one clip share labels in clean splits)."""
    order = sorted(set(groups))
    pos = {g: i for i, g in enumerate(order)}
    idx = np.array([pos[g] for g in groups], dtype=int)
    out: dict[str, np.ndarray] = {}
    for name, y in targets.items():
        if name == "tags":
            agg = np.zeros((len(order), y.shape[1]), dtype=np.float32)
            np.maximum.at(agg, idx, y)
        else:
            missing = -1 if y.dtype.kind == "i" else np.nan
            agg = np.full(len(order), missing, dtype=y.dtype)
            for i in range(len(y) - 1, -1, -1):  # backwards, so the first labelled row wins
                labelled = y[i] >= 0 if y.dtype.kind == "i" else np.isfinite(y[i])
                if labelled:
                    agg[idx[i]] = y[i]
        out[name] = agg
    return out


def aggregate(pred: Predictions, level: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(mean outputs, targets) per ``snippet`` (sample key) or ``clip``, rows in sorted group order."""
    groups = pred.keys if level == "snippet" else pred.clips
    outputs = {name: group_mean(v, groups)[1] for name, v in pred.outputs.items()}
    return outputs, aggregate_targets(pred.targets, groups)


def evaluate_predictions(tasks: TaskSet, pred: Predictions) -> dict[str, Any]:
    report: dict[str, Any] = {"windows": len(pred.keys), "snippets": len(set(pred.keys)),
                              "clips": len(set(pred.clips)), "stream": pred.stats.as_dict()}
    if not pred.keys:
        return report
    for level in ("snippet", "clip"):
        outputs, targets = aggregate(pred, level)
        report[level] = tasks.metrics(outputs, targets)
    return report


def score(tasks: TaskSet, report: dict[str, Any], level: str = "clip") -> float | None:
    """The mean headline metric over tasks at ``level`` (the early-stopping criterion)."""
    values = [headline(t, report.get(level, {}).get(t.name, {}))[1] for t in tasks.tasks]
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


def _fmt(v: Any) -> str:
    return "  -  " if v is None else f"{v:.3f}"


def format_report(tasks: TaskSet, report: dict[str, Any], per_tag: bool = True) -> list[str]:
    """Human-readable tables: one summary row per task and level, then per-tag and confusion tables."""
    lines = [f"evaluated {report['windows']} windows = {report['snippets']} snippets of {report['clips']} clips"
             + (f"; skipped {report['stream']['corrupt']} corrupt" if report["stream"]["corrupt"] else "")]
    if "clip" not in report:
        return lines
    lines.append(f"{'task':<18}{'metric':<10}{'snippet':>9}{'clip':>9}   (chance/notes)")
    for t in tasks.tasks:
        s, c = report["snippet"][t.name], report["clip"][t.name]
        if t.kind == "multilabel":
            lines.append(f"{t.name:<18}{'ROC-AUC':<10}{_fmt(s['roc_auc']):>9}{_fmt(c['roc_auc']):>9}   (0.500)")
            lines.append(f"{'':<18}{'PR-AUC':<10}{_fmt(s['pr_auc']):>9}{_fmt(c['pr_auc']):>9}   "
                         f"({_fmt(c['pr_auc_chance'])} = mean prevalence)")
        elif t.name == "key":
            lines.append(f"{t.name:<18}{'MIREX':<10}{_fmt(s['mirex']):>9}{_fmt(c['mirex']):>9}   (n={c['n']})")
            lines.append(f"{'':<18}{'accuracy':<10}{_fmt(s['accuracy']):>9}{_fmt(c['accuracy']):>9}   (0.042)")
        elif t.kind == "multiclass":
            lines.append(f"{t.name:<18}{'accuracy':<10}{_fmt(s['accuracy']):>9}{_fmt(c['accuracy']):>9}   "
                         f"({_fmt(c['chance'])} = majority class)")
        else:
            lines.append(f"{t.name:<18}{'Acc1':<10}{_fmt(s['acc1']):>9}{_fmt(c['acc1']):>9}   (n={c['n']})")
            lines.append(f"{'':<18}{'Acc2':<10}{_fmt(s['acc2']):>9}{_fmt(c['acc2']):>9}")
    for t in tasks.tasks:
        c = report["clip"][t.name]
        if t.kind == "multilabel" and per_tag:
            lines.append(f"per tag (clip level): {'tag':<16}{'ROC-AUC':>9}{'PR-AUC':>9}{'positives':>11}")
            for name, m in c["per_tag"].items():
                lines.append(f"{'':<22}{name:<16}{_fmt(m['roc_auc']):>9}{_fmt(m['pr_auc']):>9}{m['positives']:>11}")
        elif t.kind == "multiclass" and t.name != "key":
            width = max(6, *(len(x) + 1 for x in c["labels"]))
            lines.append(f"confusion {t.name} (clip level; rows truth, columns predicted)")
            lines.append(" " * width + "".join(f"{x:>{width}}" for x in c["labels"]))
            for label, row in zip(c["labels"], c["confusion"], strict=True):
                lines.append(f"{label:<{width}}" + "".join(f"{v:>{width}}" for v in row))
    return lines

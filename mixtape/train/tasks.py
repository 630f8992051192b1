"""The tasks one model learns at once: slices of its output, each with a loss, a prediction and metrics.

``tags`` is multi-label (sigmoid + BCE, soft targets allowed), each class field (e.g. ``genre``) and
``key`` (24 classes) are single-label (softmax + cross-entropy), ``tempo`` is a regression on
log2(bpm / 120). Samples without a label for a task are masked out of that task's loss, so datasets where
only some clips carry key or tempo (AcousticBrainz joins) still train every head they can.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from mixtape.errors import MixtapeError
from mixtape.labels import key_vocabulary
from mixtape.train.metrics import class_metrics, key_metrics, tag_metrics, tempo_metrics
from mixtape.train.targets import LabelEncoder, target_to_tempo

KINDS = ("multilabel", "multiclass", "regression")


@dataclass(frozen=True)
class Task:
    name: str  # tags | <class field> | key | tempo
    kind: str
    labels: tuple[str, ...]
    target: str  # the encoder's target name
    weight: float = 1.0

    @property
    def size(self) -> int:
        return 1 if self.kind == "regression" else len(self.labels)


class TaskError(MixtapeError, ValueError):
    pass


class TaskSet:
    def __init__(self, tasks: list[Task]):
        if not tasks:
            raise TaskError("no tasks to train: choose --tasks from tags, key, tempo or a class field")
        self.tasks = list(tasks)
        self.slices: dict[str, slice] = {}
        start = 0
        for t in self.tasks:
            self.slices[t.name] = slice(start, start + t.size)
            start += t.size
        self.size = start

    @classmethod
    def from_names(cls, names: list[str], encoder: LabelEncoder) -> TaskSet:
        """``names`` may hold ``tags``, ``key``, ``tempo``, class fields, or ``all`` (everything the card has)."""
        if names == ["all"]:
            names = (["tags"] if encoder.tags else []) + sorted(encoder.classes) + ["key", "tempo"]
        tasks: list[Task] = []
        for name in names:
            if name == "tags":
                if not encoder.tags:
                    raise TaskError("task 'tags': the dataset's tag vocabulary is empty (lower labels.tags.min_count "
                                    "in the spec, or train on a class field)")
                tasks.append(Task("tags", "multilabel", tuple(encoder.tags), "tags"))
            elif name == "key":
                tasks.append(Task("key", "multiclass", tuple(key_vocabulary()), "key"))
            elif name == "tempo":
                tasks.append(Task("tempo", "regression", (), "tempo"))
            elif name in encoder.classes:
                tasks.append(Task(name, "multiclass", tuple(encoder.classes[name]), f"class:{name}"))
            else:
                choices = ", ".join(["tags", "key", "tempo", *sorted(encoder.classes), "all"])
                raise TaskError(f"unknown task {name!r}; this dataset offers: {choices}")
        return cls(tasks)

    def as_list(self) -> list[dict[str, Any]]:
        return [{"name": t.name, "kind": t.kind, "labels": list(t.labels), "target": t.target, "weight": t.weight}
                for t in self.tasks]

    @classmethod
    def from_list(cls, items: list[dict[str, Any]]) -> TaskSet:
        return cls([Task(i["name"], i["kind"], tuple(i["labels"]), i["target"], float(i.get("weight", 1.0)))
                    for i in items])

    def loss(self, logits: torch.Tensor, targets: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """Weighted sum of the task losses; each task averages over the samples that have its label."""
        total = logits.new_zeros(())
        parts: dict[str, float] = {}
        for t in self.tasks:
            out, y = logits[:, self.slices[t.name]], targets[t.target]
            if t.kind == "multilabel":
                loss = F.binary_cross_entropy_with_logits(out, y.float())
            elif t.kind == "multiclass":
                y = y.long()
                if not (y >= 0).any():
                    continue
                loss = F.cross_entropy(out, y.clamp_min(0), reduction="none")[y >= 0].mean()
            else:
                mask = torch.isfinite(y)
                if not mask.any():
                    continue
                loss = F.smooth_l1_loss(out[:, 0][mask], y[mask].float(), beta=0.1)
            total = total + t.weight * loss
            parts[t.name] = float(loss.detach())
        return total, parts

    def predict(self, logits: torch.Tensor) -> dict[str, np.ndarray]:
        """Per task: sigmoid scores, softmax probabilities, or the regression output (log2 tempo)."""
        out: dict[str, np.ndarray] = {}
        for t in self.tasks:
            z = logits[:, self.slices[t.name]].float()
            if t.kind == "multilabel":
                out[t.name] = torch.sigmoid(z).cpu().numpy()
            elif t.kind == "multiclass":
                out[t.name] = torch.softmax(z, dim=1).cpu().numpy()
            else:
                out[t.name] = z[:, 0].cpu().numpy()
        return out

    def metrics(self, predictions: dict[str, np.ndarray], targets: dict[str, np.ndarray]) -> dict[str, Any]:
        """Metrics per task from aggregated predictions and targets (numpy, one row per item)."""
        out: dict[str, Any] = {}
        for t in self.tasks:
            p, y = predictions[t.name], targets[t.target]
            if t.kind == "multilabel":
                out[t.name] = tag_metrics(p, y, list(t.labels))
            elif t.name == "key":
                out[t.name] = key_metrics(p, y)
            elif t.kind == "multiclass":
                out[t.name] = class_metrics(p, y, list(t.labels))
            else:
                out[t.name] = tempo_metrics(target_to_tempo(p), target_to_tempo(y))
        return out


def headline(task: Task, metrics: dict[str, Any]) -> tuple[str, float | None]:
    """The one number early stopping and summaries use for a task (higher is better)."""
    if task.kind == "multilabel":
        return "roc_auc", metrics.get("roc_auc")
    if task.name == "key":
        return "mirex", metrics.get("mirex")
    if task.kind == "multiclass":
        return "accuracy", metrics.get("accuracy")
    return "acc1", metrics.get("acc1")

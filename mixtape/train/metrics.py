"""Metrics for multi-label tagging, at snippet level and aggregated per clip."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score


def roc_auc_macro(scores: np.ndarray, targets: np.ndarray) -> float | None:
    """Mean ROC-AUC over the labels that have both positives and negatives (None if no label has)."""
    aucs = [roc_auc_score(targets[:, j], scores[:, j]) for j in range(targets.shape[1])
            if 0 < targets[:, j].sum() < targets.shape[0]]
    return float(np.mean(aucs)) if aucs else None


def clip_level(scores: np.ndarray, targets: np.ndarray, clip_ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Average snippet scores per clip (targets are per clip already, so any snippet's will do)."""
    order = sorted(set(clip_ids))
    pos = {c: i for i, c in enumerate(order)}
    idx = np.array([pos[c] for c in clip_ids])
    sums = np.zeros((len(order), scores.shape[1]))
    np.add.at(sums, idx, scores)
    counts = np.bincount(idx, minlength=len(order))[:, None]
    clip_targets = np.zeros((len(order), targets.shape[1]))
    clip_targets[idx] = targets
    return sums / counts, clip_targets

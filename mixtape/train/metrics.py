"""Evaluation metrics for the tasks a mixtape dataset carries (pure numpy / scikit-learn, no torch).

Tags: ROC-AUC and PR-AUC (average precision), macro over the tags that have both positives and negatives
in the evaluated set, and per tag. Classes: accuracy and a confusion matrix. Key: the MIREX weighted
score (1 correct, 0.5 fifth, 0.3 relative, 0.2 parallel). Tempo: Acc1 (within 4%) and Acc2 (within 4% of
the reference or of its double, triple, half or third).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

TEMPO_TOLERANCE = 0.04
TEMPO_FACTORS = (1.0, 2.0, 3.0, 1.0 / 2.0, 1.0 / 3.0)


def _evaluable(targets: np.ndarray) -> list[int]:
    """Columns with both positives and negatives (hard labels: > 0.5)."""
    hard = targets > 0.5
    return [j for j in range(targets.shape[1]) if 0 < hard[:, j].sum() < targets.shape[0]]


def roc_auc_macro(scores: np.ndarray, targets: np.ndarray) -> float | None:
    """Mean ROC-AUC over the labels that have both positives and negatives (None if no label has)."""
    cols = _evaluable(targets)
    return float(np.mean([roc_auc_score(targets[:, j] > 0.5, scores[:, j]) for j in cols])) if cols else None


def tag_metrics(scores: np.ndarray, targets: np.ndarray, names: list[str]) -> dict[str, Any]:
    """Macro and per-tag ROC-AUC and PR-AUC; tags without both classes are listed with None."""
    per_tag: dict[str, dict[str, Any]] = {}
    evaluable = set(_evaluable(targets))
    for j, name in enumerate(names):
        positives = int((targets[:, j] > 0.5).sum())
        if j in evaluable:
            per_tag[name] = {"roc_auc": float(roc_auc_score(targets[:, j] > 0.5, scores[:, j])),
                             "pr_auc": float(average_precision_score(targets[:, j] > 0.5, scores[:, j])),
                             "positives": positives}
        else:
            per_tag[name] = {"roc_auc": None, "pr_auc": None, "positives": positives}
    rocs = [v["roc_auc"] for v in per_tag.values() if v["roc_auc"] is not None]
    prs = [v["pr_auc"] for v in per_tag.values() if v["pr_auc"] is not None]
    prevalence = [v["positives"] / len(targets) for v in per_tag.values() if v["pr_auc"] is not None]
    return {"roc_auc": float(np.mean(rocs)) if rocs else None, "pr_auc": float(np.mean(prs)) if prs else None,
            "pr_auc_chance": float(np.mean(prevalence)) if prevalence else None, "evaluated_tags": len(rocs),
            "per_tag": per_tag, "n": len(targets)}


def class_metrics(probs: np.ndarray, targets: np.ndarray, names: list[str]) -> dict[str, Any]:
    """Accuracy and confusion matrix (rows: truth, columns: prediction) over items with a label."""
    mask = targets >= 0
    t, p = targets[mask], probs[mask].argmax(axis=1) if mask.any() else np.zeros(0, dtype=int)
    confusion = np.zeros((len(names), len(names)), dtype=int)
    np.add.at(confusion, (t, p), 1)
    counts = np.bincount(t, minlength=len(names)) if len(t) else np.zeros(len(names), dtype=int)
    return {"accuracy": float((t == p).mean()) if len(t) else None,
            "chance": float(counts.max() / len(t)) if len(t) else None,
            "confusion": confusion.tolist(), "labels": list(names), "n": len(t)}


def mirex_key_score(estimated: int, reference: int, strict_fifth: bool = True) -> float:
    """MIREX weighted key score for two keys in the 24-key order (majors 0-11, minors 12-23, by tonic).

    A fifth counts when the estimate is a fifth *above* the reference (mir_eval's reading of MIREX);
    ``strict_fifth=False`` also accepts a fifth below (madmom's default)."""
    if estimated == reference:
        return 1.0
    e_minor, r_minor = estimated >= 12, reference >= 12
    e_tonic, r_tonic = estimated % 12, reference % 12
    if e_minor == r_minor and (e_tonic - r_tonic) % 12 in ((7,) if strict_fifth else (5, 7)):
        return 0.5  # a fifth
    if not r_minor and e_minor and (e_tonic - r_tonic) % 12 == 9:
        return 0.3  # relative minor
    if r_minor and not e_minor and (e_tonic - r_tonic) % 12 == 3:
        return 0.3  # relative major
    if e_minor != r_minor and e_tonic == r_tonic:
        return 0.2  # parallel
    return 0.0


def key_metrics(probs: np.ndarray, targets: np.ndarray) -> dict[str, Any]:
    mask = targets >= 0
    est = probs[mask].argmax(axis=1) if mask.any() else np.zeros(0, dtype=int)
    ref = targets[mask]
    scores = [mirex_key_score(int(e), int(r)) for e, r in zip(est, ref, strict=True)]
    return {"mirex": float(np.mean(scores)) if scores else None,
            "accuracy": float(np.mean(est == ref)) if len(ref) else None, "n": len(ref)}


def tempo_metrics(estimated_bpm: np.ndarray, reference_bpm: np.ndarray) -> dict[str, Any]:
    mask = np.isfinite(reference_bpm) & np.isfinite(estimated_bpm)
    e, r = estimated_bpm[mask], reference_bpm[mask]
    if not len(r):
        return {"acc1": None, "acc2": None, "n": 0}
    within = [np.abs(e - f * r) <= TEMPO_TOLERANCE * f * r for f in TEMPO_FACTORS]
    return {"acc1": float(within[0].mean()), "acc2": float(np.any(within, axis=0).mean()), "n": len(r)}


def group_mean(values: np.ndarray, groups: list[str]) -> tuple[list[str], np.ndarray]:
    """Mean of rows per group (groups sorted), e.g. snippet-window predictions per clip."""
    order = sorted(set(groups))
    pos = {g: i for i, g in enumerate(order)}
    idx = np.array([pos[g] for g in groups], dtype=int)
    sums = np.zeros((len(order), *values.shape[1:]), dtype=np.float64)
    np.add.at(sums, idx, values)
    counts = np.bincount(idx, minlength=len(order)).reshape(-1, *([1] * (values.ndim - 1)))
    return order, sums / counts


def clip_level(scores: np.ndarray, targets: np.ndarray, clip_ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Mean snippet scores per clip; a clip's tag targets are the union over its snippets."""
    order = sorted(set(clip_ids))
    _, mean_scores = group_mean(scores, clip_ids)
    pos = {c: i for i, c in enumerate(order)}
    clip_targets = np.zeros((len(order), targets.shape[1]))
    np.maximum.at(clip_targets, np.array([pos[c] for c in clip_ids]), targets)
    return mean_scores, clip_targets

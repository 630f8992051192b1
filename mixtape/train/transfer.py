"""Transfer: per-clip embeddings from a trained run, and cross-validated probes on them.

Small labelled target tasks are where a pretrained network's features pay off: a kNN or a logistic
regression on frozen embeddings needs only tens of examples. ``embed`` writes a Parquet table (one row per
clip: the mean of its windows' penultimate features, plus the labels decoded with the run's vocabularies);
``probe`` cross-validates a classifier on any label column of such a table, or of the non-learned
baseline's table, so the two are compared on equal terms.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mixtape import storage
from mixtape.errors import MixtapeError
from mixtape.labels import key_vocabulary
from mixtape.train.config import PROBE_FOLDS
from mixtape.train.targets import LabelEncoder, target_to_tempo

CLASSIFIERS = ("knn", "logreg")


class ProbeError(MixtapeError, ValueError):
    pass


def label_columns(encoder: LabelEncoder, targets: dict[str, np.ndarray]) -> dict[str, list[Any]]:
    """Readable label columns from aggregated targets: tags (list), class fields, key (name), tempo (bpm)."""
    n = len(next(iter(targets.values())))
    cols: dict[str, list[Any]] = {}
    if "tags" in targets:
        cols["tags"] = [[encoder.tags[j] for j in np.flatnonzero(row > 0.5)] for row in targets["tags"]]
    for field, names in encoder.classes.items():
        y = targets.get(f"class:{field}", np.full(n, -1))
        cols[field] = [names[i] if i >= 0 else None for i in y.tolist()]
    keys = key_vocabulary()
    cols["key"] = [keys[i] if i >= 0 else None for i in targets.get("key", np.full(n, -1)).tolist()]
    tempo = targets.get("tempo", np.full(n, np.nan))
    cols["tempo"] = [float(round(float(target_to_tempo(t)), 3)) if np.isfinite(t) else None for t in tempo]
    return cols


def write_table(path: str | Path, clip_ids: list[str], features: np.ndarray, labels: dict[str, list[Any]],
                meta: dict[str, str]) -> None:
    """One row per clip: ``clip_id``, ``embedding`` (list<float32>), then label columns."""
    columns: dict[str, Any] = {
        "clip_id": pa.array(clip_ids, pa.string()),
        "embedding": pa.array([row.astype(np.float32) for row in features], pa.list_(pa.float32())),
    }
    for name, values in labels.items():
        columns[name] = pa.array(values)
    table = pa.table(columns).replace_schema_metadata({k.encode(): v.encode() for k, v in meta.items()})
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, str(path))


@dataclass
class ProbeResult:
    label: str
    classifier: str
    accuracy: float
    std: float
    fold_accuracies: list[float]
    chance: float
    n: int
    classes: int
    folds: int
    dropped: list[str]


def _label_vector(table: pa.Table, label: str) -> np.ndarray:
    if label.startswith("tag:"):
        if "tags" not in table.column_names:
            raise ProbeError("the table has no tags column")
        tag = label[4:]
        return np.array([tag in (row or []) for row in table.column("tags").to_pylist()], dtype=object)
    if label not in table.column_names or label in ("clip_id", "embedding"):
        choices = [c for c in table.column_names if c not in ("clip_id", "embedding")]
        raise ProbeError(f"no label column {label!r}; the table has: {', '.join(choices)} (or tag:NAME)")
    if label == "tags":
        raise ProbeError("tags are multi-label: probe one tag at a time with --label tag:NAME")
    values = table.column(label).to_pylist()
    if label == "tempo":
        # tempo is continuous: probe it as half-octave classes named by their lower edge in bpm
        return np.array([None if v is None else f"{round(60 * 2 ** (np.floor(2 * np.log2(v / 60)) / 2))}+ bpm"
                         for v in values], dtype=object)
    return np.array(values, dtype=object)


def probe(path: str | Path, label: str, classifier: str = "logreg", folds: int = PROBE_FOLDS, seed: int = 0,
          neighbours: int = 5) -> ProbeResult:
    """Stratified k-fold accuracy of ``classifier`` on the embeddings for one label column."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if classifier not in CLASSIFIERS:
        raise ProbeError(f"classifier must be one of {', '.join(CLASSIFIERS)}, not {classifier!r}")
    table = storage.read_parquet(str(path))
    y_all = _label_vector(table, label)
    keep = np.array([v is not None for v in y_all])
    X = np.stack([np.asarray(e, dtype=np.float32) for e in table.column("embedding").to_pylist()])[keep]
    y = y_all[keep].astype(str)
    values, counts = np.unique(y, return_counts=True)
    dropped = sorted(str(v) for v, c in zip(values, counts, strict=True) if c < 2)
    if dropped:  # a value seen in one clip cannot be both trained on and tested: leave it out, say so
        keep_rows = np.isin(y, values[counts >= 2])
        X, y = X[keep_rows], y[keep_rows]
    labels, counts = np.unique(y, return_counts=True)
    if len(labels) < 2:
        raise ProbeError(f"label {label!r} has {len(labels)} value(s) seen in >= 2 clips (of {len(y_all)} rows): "
                         "nothing to cross-validate")
    n_folds = int(max(2, min(folds, counts.min())))
    k = min(neighbours, len(y) - len(y) // n_folds)  # no more neighbours than a training fold holds
    model = (make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=k)) if classifier == "knn" else
             make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0)))
    cv = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    scores = cross_val_score(model, X, y, cv=cv, scoring="accuracy")
    return ProbeResult(label, classifier, float(scores.mean()), float(scores.std()), [float(s) for s in scores],
                       float(counts.max() / len(y)), len(y), len(labels), n_folds, dropped)

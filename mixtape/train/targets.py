"""Training targets from a sample's labels, using the dataset card's vocabularies (no torch).

One encoder serves every task a model can learn from a mixtape dataset: multi-hot tags (or the soft
weights a ``mix`` with ``labels: soft`` leaves), one class index per class field, the key as one of 24
major/minor classes, and the tempo as a regression target. Missing labels are encoded as "no target"
(-1 for indices, NaN for tempo) so losses and metrics can mask them instead of inventing a label.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mixtape.labels import MODES, TONICS, key_name, normalise_key

#: Tempo targets are log2(bpm / TEMPO_REF): symmetric around a typical tempo, so that halving and
#: doubling errors weigh the same and the regression target stays near [-1, 1].
TEMPO_REF = 120.0


def tempo_to_target(bpm: float) -> float:
    return math.log2(bpm / TEMPO_REF)


def target_to_tempo(target: float | np.ndarray) -> Any:
    return TEMPO_REF * np.exp2(target)


def key_index(name: str) -> int:
    """'C# minor' -> 13: the fixed 24-key order (majors C..B, then minors C..B) every dataset shares."""
    tonic, _, mode = name.partition(" ")
    return MODES.index(mode) * 12 + TONICS.index(tonic)


@dataclass
class LabelEncoder:
    """Encodes a sample's ``labels`` JSON into per-task numpy targets."""

    tags: list[str]
    classes: dict[str, list[str]] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)
    soft_tags: bool = True
    _tag_index: dict[str, int] = field(init=False, repr=False)
    _class_index: dict[str, dict[str, int]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._tag_index = {t: i for i, t in enumerate(self.tags)}
        self._class_index = {f: {v: i for i, v in enumerate(vs)} for f, vs in self.classes.items()}

    @classmethod
    def from_card(cls, card: dict[str, Any], soft_tags: bool = True) -> LabelEncoder:
        vocab = card.get("vocabularies", {})
        return cls(tags=list(vocab.get("tags", [])), classes={k: list(v) for k, v in vocab.get("classes", {}).items()},
                   keys=list(vocab.get("key", [])), soft_tags=soft_tags)

    def vocabularies(self) -> dict[str, Any]:
        """The vocabularies in the card's shape, as a checkpoint records them."""
        return {"tags": self.tags, "classes": self.classes, "key": self.keys}

    def encode(self, labels: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"tags": self.encode_tags(labels)}
        classes = labels.get("classes") or {}
        for f, index in self._class_index.items():
            out[f"class:{f}"] = np.int64(index.get(str(classes.get(f)), -1))
        key = labels.get("key")
        k = normalise_key(key.get("tonic", ""), key.get("mode", "")) if isinstance(key, dict) else None
        out["key"] = np.int64(key_index(key_name(k)) if k else -1)
        tempo = labels.get("tempo")
        ok = isinstance(tempo, (int, float)) and not isinstance(tempo, bool) and math.isfinite(tempo) and tempo > 0
        out["tempo"] = np.float32(tempo_to_target(float(tempo)) if ok and tempo is not None else math.nan)
        return out

    def encode_tags(self, labels: dict[str, Any]) -> np.ndarray:
        y = np.zeros(len(self.tags), dtype=np.float32)
        soft = labels.get("soft_tags") if self.soft_tags else None
        if isinstance(soft, dict) and soft:
            for t, w in soft.items():
                i = self._tag_index.get(t)
                if i is not None and isinstance(w, (int, float)):
                    y[i] = min(1.0, max(0.0, float(w)))
            return y
        for t in labels.get("tags") or []:
            i = self._tag_index.get(t)
            if i is not None:
                y[i] = 1.0
        return y

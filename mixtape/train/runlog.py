"""A run's record as it goes: metrics.jsonl (every event), TensorBoard when installed, and the human log.

Only rank 0 writes, so a distributed run keeps one record.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

# report fields too wide for a scalar log (per-tag tables, confusion matrices, label lists, error texts)
_NOT_SCALARS = ("per_tag", "confusion", "labels", "errors")


class RunLog:
    def __init__(self, out: Path, enabled: bool, log: Callable[[str], None]):
        self.enabled, self.human = enabled, log
        self.file = open(out / "metrics.jsonl", "a", encoding="utf-8") if enabled else None
        self.tb = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(out / "tensorboard"))
            except ImportError:  # TensorBoard is optional
                self.tb = None

    def event(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        assert self.file is not None
        self.file.write(json.dumps(row, sort_keys=True, default=float) + "\n")
        self.file.flush()
        if self.tb is not None:
            for k, v in flat(row).items():
                if isinstance(v, (int, float)) and k not in ("step", "epoch"):
                    self.tb.add_scalar(f"{row.get('event', 'train')}/{k}", v, row.get("step", 0))

    def say(self, message: str) -> None:
        if self.enabled:
            self.human(message)

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        if self.tb is not None:
            self.tb.close()


def flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested report as ``a/b/c`` scalar fields (the wide tables left out)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if k in _NOT_SCALARS:
            continue
        if isinstance(v, dict):
            out.update(flat(v, f"{prefix}{k}/"))
        else:
            out[f"{prefix}{k}"] = v
    return out

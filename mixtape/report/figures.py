"""The report's pictures: histograms and spectrograms drawn with matplotlib (Agg) into PNG bytes.

Plain functions from data to PNG bytes, so the page builder stays free of plotting details. Every figure
is drawn with fixed sizes, fonts and no timestamps in the PNG metadata, so a report of one dataset is the
same bytes each time it is written.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")

import librosa
import numpy as np
from matplotlib import pyplot as plt

PNG_METADATA = {"Software": None}
COLOURS = ("#3b6ea8", "#d9822b", "#4f9a5b", "#b04a5a", "#7c5fa8", "#6b6b6b")


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, metadata=PNG_METADATA, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def bar_chart(title: str, labels: Sequence[str], series: dict[str, Sequence[float]], xlabel: str = "",
              horizontal: bool = True) -> bytes:
    """Grouped bars: one group per label, one bar per series (e.g. per split)."""
    n = max(1, len(labels))
    height = max(2.2, 0.28 * n * max(1, len(series)) ** 0.5 + 1.0) if horizontal else 3.2
    fig, ax = plt.subplots(figsize=(7.5, min(height, 14.0)))
    width = 0.8 / max(1, len(series))
    pos = np.arange(n)
    for i, (name, values) in enumerate(series.items()):
        offset = pos - 0.4 + width * (i + 0.5)
        if horizontal:
            ax.barh(offset, values, height=width, label=name, color=COLOURS[i % len(COLOURS)])
        else:
            ax.bar(offset, values, width=width, label=name, color=COLOURS[i % len(COLOURS)])
    if horizontal:
        ax.set_yticks(pos, labels)
        ax.invert_yaxis()
        ax.set_xlabel(xlabel)
    else:
        ax.set_xticks(pos, labels, rotation=45, ha="right")
        ax.set_ylabel(xlabel)
    ax.set_title(title)
    if len(series) > 1:
        ax.legend(frameon=False, fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def histogram(title: str, series: Mapping[str, Sequence[float]], xlabel: str, bins: int = 30) -> bytes:
    """Overlaid step histograms, one per series, over shared bins."""
    fig, ax = plt.subplots(figsize=(7.5, 3.0))
    values = [np.asarray(v, dtype=float) for v in series.values() if len(v)]
    if values:
        both = np.concatenate(values)
        lo, hi = float(both.min()), float(both.max())
        edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
        for i, (name, v) in enumerate(series.items()):
            if len(v):
                ax.hist(np.asarray(v, dtype=float), bins=edges.tolist(), histtype="step", linewidth=1.6, label=name,
                        color=COLOURS[i % len(COLOURS)])
    else:
        ax.text(0.5, 0.5, "no values", ha="center", va="center", transform=ax.transAxes)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    if len(series) > 1:
        ax.legend(frameon=False, fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def spectrogram(audio: np.ndarray, sr: int, title: str, n_mels: int = 64) -> bytes:
    """A log-mel spectrogram (dB, 80 dB range) of a mono signal."""
    mel = librosa.feature.melspectrogram(y=audio.astype(np.float32), sr=sr, n_fft=1024, hop_length=256,
                                         n_mels=n_mels, fmax=sr / 2)
    db = librosa.power_to_db(mel, ref=max(float(mel.max()), 1e-10), top_db=80.0)
    fig, ax = plt.subplots(figsize=(4.2, 1.9))
    ax.imshow(db, origin="lower", aspect="auto", cmap="magma", vmin=-80, vmax=0,
              extent=(0, len(audio) / sr, 0, n_mels))
    ax.set_title(title, fontsize=8)
    ax.set_xlabel("s", fontsize=7)
    ax.set_ylabel("mel band", fontsize=7)
    ax.tick_params(labelsize=6)
    return _png(fig)

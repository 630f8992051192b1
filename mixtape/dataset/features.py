"""Optional features stored next to each sample (``<key>.logmel.npy``) for spectrogram models.

Computed from the sample exactly as written (after augmentation), mono, in numpy/librosa; saved as float16
``.npy`` (loadable with ``allow_pickle=False``). The parameters go into the card, so a reader knows what it
holds and a trainer can check they match its own front-end.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

MEMBER_SUFFIX = "logmel.npy"


@dataclass(frozen=True)
class LogMelSpec:
    n_fft: int = 512
    hop: int = 256
    n_mels: int = 64
    f_min: float = 0.0
    f_max: float | None = None
    log_c: float = 1000.0

    def card(self, sample_rate: int, frames: int) -> dict[str, Any]:
        n = 1 + frames // self.hop
        return {**asdict(self), "f_max": self.f_max or sample_rate / 2, "compression": "log(1 + log_c * mel_power)",
                "dtype": "float16", "shape": [self.n_mels, n], "center": True, "window": "hann",
                "member": MEMBER_SUFFIX}


def logmel(audio: np.ndarray, sr: int, spec: LogMelSpec) -> np.ndarray:
    """log(1 + C * mel power) of the channel mean, float16, shape (n_mels, frames)."""
    mono = audio.mean(axis=0) if audio.ndim == 2 else audio
    import librosa  # here, not at import: the trainer's settings read LogMelSpec without the DSP stack

    mel = librosa.feature.melspectrogram(y=mono.astype(np.float32), sr=sr, n_fft=spec.n_fft, hop_length=spec.hop,
                                         n_mels=spec.n_mels, fmin=spec.f_min, fmax=spec.f_max or sr / 2, power=2.0)
    return np.log1p(spec.log_c * mel).astype(np.float16)


def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def load_npy(data: bytes) -> np.ndarray:
    """Never unpickles: an object array in a shard raises instead of running code."""
    return np.load(io.BytesIO(data), allow_pickle=False)

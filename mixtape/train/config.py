"""The trainer's settings as plain dataclasses: the one place their defaults are written (the CLI reads
them from here), importable without torch so ``mixtape train --help`` starts at once."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from mixtape.dataset.features import LogMelSpec

COMPRESSIONS = ("log1p", "db")
NORMS = ("none", "per_frequency", "a_weighting")
KINDS = ("logmel", "logfreq", "chroma")
#: the lowest pitch of the log-frequency front-ends when ``f_min`` is 0: C2
LOGFREQ_F_MIN = 65.406


@dataclass(frozen=True)
class FrontendConfig:
    """Options for the log-mel front-end (ignored by waveform models except ``scale``).

    ``compression``: ``log1p`` is ``log(1 + C * mel)`` with ``C = log_c`` (no -inf, keeps quiet detail;
    the small-music-model literature found it learns better than dB), ``db`` is ``10 log10`` clipped to
    ``top_db`` below the maximum. ``norm``: ``per_frequency`` standardises each mel band with statistics
    accumulated over training (frozen at evaluation); ``a_weighting`` weights each band's power by the
    A-curve at its centre frequency (loudness as heard) before compression; ``none`` leaves it. ``scale``
    multiplies the front-end output.
    """

    # log-mel as a dataset stores it (``features: {logmel}``), so stored and computed features agree
    n_fft: int = LogMelSpec.n_fft
    hop: int = LogMelSpec.hop
    n_mels: int = LogMelSpec.n_mels
    f_min: float = LogMelSpec.f_min
    f_max: float | None = LogMelSpec.f_max
    compression: str = "log1p"
    log_c: float = LogMelSpec.log_c
    top_db: float = 80.0
    norm: str = "per_frequency"
    scale: float = 1.0
    #: logmel, logfreq (semitone-spaced bins) or chroma (12 pitch classes)
    kind: str = "logmel"
    bins_per_semitone: int = 3
    octaves: int = 6

    @property
    def bands(self) -> int:
        """Frequency rows the front-end outputs."""
        if self.kind == "logfreq":
            return 12 * self.octaves * self.bins_per_semitone
        return 12 if self.kind == "chroma" else self.n_mels

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"frontend kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        if self.bins_per_semitone < 1 or self.octaves < 1:
            raise ValueError("frontend needs bins_per_semitone >= 1 and octaves >= 1")
        if self.compression not in COMPRESSIONS:
            raise ValueError(f"frontend compression must be one of {', '.join(COMPRESSIONS)}, not {self.compression!r}")
        if self.norm not in NORMS:
            raise ValueError(f"frontend norm must be one of {', '.join(NORMS)}, not {self.norm!r}")
        if self.n_fft < 16 or self.hop < 1 or self.n_mels < 4:
            raise ValueError("frontend needs n_fft >= 16, hop >= 1 and n_mels >= 4")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)



#: the STFT of the log-frequency and chroma front-ends unless given: a long window resolves semitones
LOGFREQ_STFT: dict[str, int] = {"n_fft": 4096, "hop": 512}


def default_frontend(kind: str) -> FrontendConfig:
    """The front-end of ``kind`` with every option at its default."""
    if kind == "logmel":
        return FrontendConfig(kind=kind)
    return FrontendConfig(kind=kind, n_fft=LOGFREQ_STFT["n_fft"], hop=LOGFREQ_STFT["hop"])


#: what ``mixtape evaluate | embed | baseline`` read unless told: the split, and samples per batch
EVAL_SPLIT = "valid"
EVAL_BATCH_SIZE = 32
#: stratified folds of ``mixtape probe``
PROBE_FOLDS = 5


FAMILIES = ("samplecnn", "pons", "shortchunk", "keycnn")
#: preset name -> (family, default width). ``*-small`` presets stay under ~100k parameters.
PRESETS: dict[str, tuple[str, int]] = {
    "samplecnn": ("samplecnn", 32), "samplecnn-small": ("samplecnn", 16),
    "pons": ("pons", 16), "pons-small": ("pons", 8),
    "shortchunk": ("shortchunk", 32), "shortchunk-small": ("shortchunk", 16),
    "keycnn": ("keycnn", 8),
}
#: the front-end a preset trains on unless one is given (others: log-mel with FrontendConfig's defaults)
PRESET_FRONTENDS: dict[str, FrontendConfig] = {
    # Korzeniowski & Widmer's resolution: 2 bins per semitone over 5 octaves from C2, ~16 frames a second
    "keycnn": FrontendConfig(kind="logfreq", n_fft=4096, hop=1024, bins_per_semitone=2, octaves=5),
}


@dataclass
class TrainConfig:
    shards: str
    out: str
    valid_shards: str | None = None
    card: str | None = None
    model: str = "shortchunk-small"
    width: int = 0  # 0 = the preset's width
    blocks: int = 8  # samplecnn: input 3^(blocks+1) samples
    tasks: str = "tags"  # comma-separated: tags, key, tempo, class fields, or all
    frontend: FrontendConfig = field(default_factory=FrontendConfig)
    steps: int | None = 200  # stop after this many steps (None: run `epochs`)
    epochs: int | None = None  # exact epochs (not with `resampled`)
    batch_size: int = 16
    crop_seconds: float = 2.0
    crops: int = 1  # random crops per sample
    lr: float = 3e-3
    weight_decay: float = 1e-2
    warmup_steps: int = 20
    grad_clip: float = 1.0
    dropout: float = 0.3
    shuffle_buffer: int = 256
    resampled: bool = False
    eval_every: int = 0  # steps; 0 = at the end of each epoch in epoch mode, else only at the end
    patience: int = 0  # early stopping: evaluations without improvement (0 = off)
    checkpoint_every: int = 0  # steps; 0 = at evaluations and at the end
    num_workers: int = 0
    seed: int = 0
    threads: int = 0
    device: str = "auto"
    amp: bool = True  # mixed precision when on a GPU
    resume: str | None = None  # a run folder or checkpoint to continue
    stop_after: int | None = None  # leave after this many steps of *this* process (a planned interruption)
    trace: bool = False  # write every step's sample keys to trace[-rank<r>].jsonl
    force: bool = False  # resume even on a dataset with another spec hash or vocabulary
    verify_remote: bool = False  # check remote shards against the card's sha256 too (local ones always are)
    clips: str | None = None  # a file of clip ids (one per line): train only on their samples

"""The records that flow through a build: Clip (a source recording), ClipWindow (a stretch of one to read),
PlanRow (one sample to render), Reject.

They hold metadata only, never audio, so grouping and sorting in the plan phase stay cheap. Labels are a
plain JSON-able mapping typed by field (see ``mixtape.labels``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mixtape.untrusted import clean_detail, show


@dataclass(frozen=True)
class Clip:
    """One source recording: where it is, what it is, and (after probing) exactly what it holds."""

    clip_id: str
    #: where to read it (absolute); never written to an output, so datasets do not depend on where inputs live
    uri: str
    #: the path relative to its source's root, which outputs may show
    relpath: str
    #: the source's name (its id namespace) and position in the spec, which orders duplicates
    source: str
    source_index: int = 0
    title: str = ""
    uploader: str = ""
    pack: str = ""
    artist: str = ""
    album: str = ""
    release_group: str = ""
    #: the recording a clip was cut from (ESC-50 src_file, UrbanSound8K fsID): slices of one recording
    #: must stay in one split
    source_id: str = ""
    fold: str = ""
    licence: str = ""
    url: str = ""
    labels: dict[str, Any] = field(default_factory=dict)
    #: a window of the file (CSV indexes that cut clips from longer recordings), in ``window_unit``
    #: (seconds or samples); an end of 0 means the end of the file
    window_start: float = 0.0
    window_end: float = 0.0
    window_unit: str = "seconds"
    #: where the window starts, in source frames (set by the probe; ``frames`` is then the window's length)
    offset_frames: int = 0
    #: a rendered score's recipe (see ``mixtape.sources.score.recipe``): its audio is synthesised from the file at
    #: ``uri`` with these settings instead of decoded from it; empty for recordings
    synth: dict[str, Any] = field(default_factory=dict)
    #: who else is owed credit beyond title / author / licence (a score's encoding and SoundFont)
    credits: str = ""
    # filled by the probe (of the window, when there is one)
    sha256: str = ""
    sample_rate: int = 0
    channels: int = 0
    frames: int = 0
    container: str = ""
    bit_depth: int = 0
    peak_db: float = 0.0
    block_rms_db: tuple[float, ...] = ()
    # filled by split assignment
    split: str = ""

    @property
    def duration_ms(self) -> int:
        return self.frames * 1000 // self.sample_rate if self.sample_rate else 0

    @property
    def window_length_frames(self) -> int:
        """Frames of the file the clip covers when it is a window of it; 0 for a whole file."""
        return self.frames if (self.window_start or self.window_end) else 0

    @property
    def attribution(self) -> str:
        by = f" by {self.uploader or self.artist}" if (self.uploader or self.artist) else ""
        where = f" ({self.url})" if self.url else ""
        lic = f", licensed under {self.licence}" if self.licence else ""
        return f'"{self.title or self.clip_id}"{by}{where}{lic}'

    def group(self, group_by: str) -> str:
        """The value that keeps related recordings in one split; falls back to the clip itself."""
        value = {"clip": "", "uploader": self.uploader, "pack": self.pack, "artist": self.artist,
                 "album": self.album, "release_group": self.release_group, "source_id": self.source_id,
                 "fold": self.fold}[group_by]
        return f"{group_by}:{value}" if value else f"clip:{self.clip_id}"


@dataclass(frozen=True)
class ClipWindow:
    """A stretch of one clip's audio and how to find its file: what the renderer reads for a sample, for the
    sample's mix partner and for an impulse response, on any worker. ``offset_frames`` / ``length_frames``
    are the clip's own part of its file in source frames (0, 0: the whole file); ``start_ms`` counts from
    there. ``synth`` is the recipe of a rendered score (empty for recordings)."""

    clip_id: str
    uri: str
    sha256: str
    start_ms: int
    duration_ms: int
    offset_frames: int = 0
    length_frames: int = 0
    synth: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The plain fields a plan's material reference carries (``synth`` only when there is one, so plans
        of recordings hash as they did before scores existed)."""
        d = {"clip_id": self.clip_id, "uri": self.uri, "sha256": self.sha256, "start_ms": self.start_ms,
             "duration_ms": self.duration_ms, "offset_frames": self.offset_frames,
             "length_frames": self.length_frames}
        return {**d, "synth": self.synth} if self.synth else d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ClipWindow:
        """The window a reference describes; its other keys (labels, role, licence...) are left alone."""
        return cls(clip_id=d["clip_id"], uri=d["uri"], sha256=d["sha256"], start_ms=int(d["start_ms"]),
                   duration_ms=int(d["duration_ms"]), offset_frames=int(d.get("offset_frames", 0)),
                   length_frames=int(d.get("length_frames", 0)), synth=d.get("synth") or {})


@dataclass(frozen=True)
class Reject:
    """An input that did not make it into the dataset, and why (stage + stable reason code + detail)."""

    clip_id: str
    path: str
    stage: str
    reason: str
    detail: str

    def __post_init__(self) -> None:
        # The rejects table must be the same bytes on every run: no memory addresses, no raw control characters.
        object.__setattr__(self, "detail", clean_detail(self.detail))
        object.__setattr__(self, "path", show(self.path, limit=1000))


@dataclass(frozen=True)
class PlanRow:
    """Exactly how to make one sample: source window, augmentation parameters, target shard and order."""

    key: str
    hash: str
    split: str
    clip_id: str
    uri: str
    sha256: str
    start_ms: int
    duration_ms: int
    variant: int
    augment: tuple[dict[str, Any], ...]
    labels: dict[str, Any]
    licence: str
    attribution: str
    #: the input's source (name) and path within it: how the plan finds the file again on any machine
    source: str = ""
    relpath: str = ""
    #: the clip's window of its file in source frames (whole file: 0, 0); sample windows are relative to it
    offset_frames: int = 0
    length_frames: int = 0
    #: the stretch of the clip the variant is made from: ``duration_ms * rate`` when time-stretched
    src_start_ms: int = 0
    src_duration_ms: int = 0
    #: material other clips lend this sample (mix partner, impulse response): where to read it
    material: tuple[dict[str, Any], ...] = ()
    shard: str = ""
    #: the recipe of a rendered score (empty for recordings; then absent from the record, so plans of
    #: recordings hash as they did before scores existed)
    synth: dict[str, Any] = field(default_factory=dict)

    def source_window(self) -> ClipWindow:
        """The stretch of the clip this sample is made from (longer than the sample when time-stretched)."""
        start, duration = ((self.src_start_ms, self.src_duration_ms) if self.src_duration_ms
                           else (self.start_ms, self.duration_ms))
        return ClipWindow(self.clip_id, self.uri, self.sha256, start, duration, self.offset_frames,
                          self.length_frames, self.synth)

    def record(self) -> dict[str, Any]:
        """The row without machine-specific paths: what ``plan.parquet`` stores and plan hashes cover."""
        d = {f: getattr(self, f) for f in self.__dataclass_fields__ if f not in ("uri", "material")}
        if not self.synth:
            del d["synth"]
        d["augment"] = list(self.augment)
        d["material"] = [{k: v for k, v in m.items() if k != "uri"} for m in self.material]
        return d

    @classmethod
    def from_record(cls, rec: dict[str, Any], roots: dict[str, str]) -> PlanRow:
        """A row back from its record, its inputs found under ``roots`` (source name -> folder)."""
        from mixtape import storage

        def locate(source: str, relpath: str) -> str:
            if source not in roots:
                raise KeyError(f"the plan reads source {show(source)}, which no spec source provides")
            parts = str(relpath).replace("\\", "/").split("/")
            if not relpath or str(relpath).startswith("/") or ".." in parts:
                raise ValueError(f"the plan names an input outside its source: {show(relpath)}")
            return storage.join(roots[source], relpath)

        fields = {k: v for k, v in rec.items() if k in cls.__dataclass_fields__}
        fields["augment"] = tuple(rec["augment"])
        fields["material"] = tuple({**m, "uri": locate(m["source"], m["relpath"])} for m in rec["material"])
        return cls(uri=locate(rec["source"], rec["relpath"]), **{k: v for k, v in fields.items() if k != "uri"})

    def sample_json(self, audio_meta: dict[str, Any]) -> dict[str, Any]:
        """The ``<key>.json`` member: labels, provenance and licence, all a user needs without the index."""
        return {
            "key": self.key,
            "clip_id": self.clip_id,
            "split": self.split,
            "window": {"start_ms": self.start_ms, "duration_ms": self.duration_ms,
                       "source_start_ms": self.src_start_ms, "source_duration_ms": self.src_duration_ms},
            "variant": self.variant,
            "labels": self.labels,
            "augment": list(self.augment),
            "audio": audio_meta,
            "source": {"sha256": self.sha256},
            "licence": self.licence,
            "attribution": self.attribution,
        }

"""A dataset as Lhotse Shar, so Lhotse's own samplers and dataloaders train on it: ``mixtape export``.

Hugging Face ``datasets`` reads mixtape shards as they are (``dataset/hf.py``); Lhotse cannot, because a
Shar shard pairs each audio member with a Lhotse manifest rather than mixtape's sample JSON. So each
mixtape shard becomes, per split, ``cuts.NNNNNN.jsonl.gz`` (one MonoCut per sample: the sample key is the
cut id, its labels in the supervision's ``custom``, its provenance in the cut's ``custom``) beside
``recording.NNNNNN.tar`` (each sample's audio bytes as they are, no re-encoding, then its Recording
manifest). ``CutSet.from_shar(in_dir=OUT/train)`` reads it. Written with fixed metadata (tar mtime 0, gzip
without a timestamp), so an export is the same bytes every time.
"""

from __future__ import annotations

import gzip
import io
import json
import os
from collections.abc import Callable
from typing import Any

import soundfile as sf

from mixtape import storage
from mixtape.dataset.shardformat import AUDIO_EXTENSIONS, ShardWriter, iter_raw_samples
from mixtape.errors import MixtapeError
from mixtape.untrusted import load_json, show


class ExportError(MixtapeError, ValueError):
    pass


def _recording(key: str, sample_rate: int, frames: int, channels: int) -> dict[str, Any]:
    """A Recording manifest whose audio is the Shar member next to it (Lhotse's placeholder form)."""
    return {"id": key, "sources": [{"type": "shar", "channels": list(range(channels)), "source": ""}],
            "sampling_rate": sample_rate, "num_samples": frames, "duration": frames / sample_rate,
            "channel_ids": list(range(channels))}


def _cut(key: str, doc: dict[str, Any], recording: dict[str, Any]) -> dict[str, Any]:
    channel: int | list[int] = 0 if len(recording["channel_ids"]) == 1 else recording["channel_ids"]
    found = doc.get("labels")
    labels: dict[str, Any] = found if isinstance(found, dict) else {}
    supervision = {"id": key, "recording_id": key, "start": 0.0, "duration": recording["duration"],
                   "channel": channel, "custom": {k: labels[k] for k in ("tags", "classes", "key", "tempo")
                                                  if k in labels}}
    custom = {k: doc[k] for k in ("clip_id", "split", "variant", "licence", "attribution", "augment") if k in doc}
    return {"id": key, "start": 0.0, "duration": recording["duration"], "channel": channel,
            "supervisions": [supervision], "recording": recording, "custom": custom, "type": "MonoCut"}


def export_shar(location: str, card: dict[str, Any], out: str, log: Callable[[str], None] = lambda _m: None
                ) -> dict[str, int]:
    """Write every split of the dataset at ``location`` (its validated ``card``) as Lhotse Shar under
    ``out/<split>/``; samples per split. ``out`` must not exist yet or be empty: nothing is overwritten."""
    if os.path.exists(out) and os.listdir(out):
        raise ExportError(f"{out} exists and is not empty: export into a new folder")
    counts: dict[str, int] = {}
    for split, info in card["splits"].items():
        folder = os.path.join(out, split)
        os.makedirs(folder, exist_ok=True)
        counts[split] = 0
        for n, shard in enumerate(info["shards"]):
            cuts = _export_shard(f"{location}/{shard['name']}", os.path.join(folder, f"recording.{n:06d}.tar"))
            counts[split] += len(cuts)
            lines = "".join(json.dumps(c, sort_keys=True, ensure_ascii=False) + "\n" for c in cuts).encode()
            with open(os.path.join(folder, f"cuts.{n:06d}.jsonl.gz"), "wb") as f:
                with gzip.GzipFile(fileobj=f, mode="wb", mtime=0, filename="") as z:
                    z.write(lines)
        log(f"export: {split}: {counts[split]} cuts in {len(info['shards'])} shard(s) -> {folder}")
    return counts


def _export_shard(url: str, tar_path: str) -> list[dict[str, Any]]:
    cuts = []
    with storage.open_url(url) as stream, open(tar_path, "wb") as f:
        writer = ShardWriter(f)
        for raw in iter_raw_samples(stream):
            ext = next((e for e in AUDIO_EXTENSIONS if e in raw.members), None)
            if ext is None or raw.doc is None:
                raise ExportError(f"{show(url)}: sample {show(raw.key)} has no audio or no JSON member")
            doc = load_json(raw.doc, f"{show(raw.key)}.json")
            meta = sf.info(io.BytesIO(raw.members[ext]))
            recording = _recording(raw.key, meta.samplerate, meta.frames, meta.channels)
            writer.add(f"{raw.key}.{ext}", raw.members[ext])
            writer.add(f"{raw.key}.json", (json.dumps(recording, sort_keys=True) + "\n").encode())
            cuts.append(_cut(raw.key, doc if isinstance(doc, dict) else {}, recording))
        writer.close()
    return cuts

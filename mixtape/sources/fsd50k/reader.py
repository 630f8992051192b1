"""``kind: fsd50k``: the FSD50K release layout.

- ``FSD50K.ground_truth/dev.csv`` (``fname,labels,mids,split``) and ``eval.csv`` (no ``split`` column);
  labels are comma-joined inside quotes and become the clip's tags;
- ``FSD50K.ground_truth/vocabulary.csv``: ``index,label,mid`` with no header; a clip with a label outside
  it is rejected (``out_of_vocabulary: keep`` keeps it);
- ``FSD50K.metadata/{dev,eval}_clips_info_FSD50K.json``: Freesound title, tags, licence URL and uploader per
  clip (the Freesound user tags are kept in ``labels.extra.freesound_tags``, not mixed with ground truth);
- audio in ``FSD50K.dev_audio/<fname>.wav`` and ``FSD50K.eval_audio/<fname>.wav``.

The fold is the release's split: ``train`` / ``val`` for dev clips, ``eval`` for eval clips, so
``splits: {group_by: fold, folds: {train: [train], valid: [val], test: [eval]}}`` reproduces it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePosixPath

from mixtape import storage
from mixtape.labels import normalise_tags
from mixtape.records import Clip, Reject
from mixtape.sources.common import audio_files, clip, read_csv, read_text, reject, unselected_audio
from mixtape.sources.freesound.dump import freesound_url, is_numeric_id
from mixtape.spec import SourceSpec
from mixtape.untrusted import load_json

PARTS = (("dev", "FSD50K.dev_audio"), ("eval", "FSD50K.eval_audio"))


def list_fsd50k(source: SourceSpec) -> Iterator[Clip | Reject]:
    root = source.root
    gt = storage.join(root, "FSD50K.ground_truth")
    if not storage.exists(storage.join(gt, "dev.csv")) and not storage.exists(storage.join(gt, "eval.csv")):
        archives = [f for f in storage.list_files(root) if f.endswith(".zip")] if storage.exists(root) else []
        hint = (f"; {root} holds the release archives: run `mixtape fsd50k unpack {root} --out DIR` and point "
                "`path` at DIR") if archives else ""
        yield reject(source, source.path, source.path, "missing_metadata",
                     f"no FSD50K.ground_truth/dev.csv or eval.csv under {root}{hint}")
        return
    vocab_uri = storage.join(gt, "vocabulary.csv")
    vocabulary = None
    if storage.exists(vocab_uri):
        _, rows = read_csv(vocab_uri, header=False)
        vocabulary = {normalise_tags([r[1]])[0] for r in rows if len(r) >= 2}
    listed: set[str] = set()
    for part, audio_dir in PARTS:
        csv_uri = storage.join(gt, f"{part}.csv")
        if not storage.exists(csv_uri):
            continue
        info_uri = storage.join(root, "FSD50K.metadata", f"{part}_clips_info_FSD50K.json")
        info = load_json(read_text(info_uri), f"FSD50K.metadata/{part}_clips_info_FSD50K.json") \
            if storage.exists(info_uri) else {}
        if not isinstance(info, dict):
            info = {}
        present = {PurePosixPath(rel).stem: rel for rel in audio_files(storage.join(root, audio_dir),
                                                                        source.extensions)}
        header, rows = read_csv(csv_uri, delimiter=",")
        cols = {h.strip(): i for i, h in enumerate(header)}
        if "fname" not in cols or "labels" not in cols:
            yield reject(source, f"{part}.csv", f"FSD50K.ground_truth/{part}.csv", "bad_metadata",
                         f"expected columns fname,labels[,mids,split]; got {header}")
            continue
        for n, row in enumerate(rows, 2):
            fname = row[cols["fname"]].strip() if len(row) > cols["fname"] else ""
            if not is_numeric_id(fname):
                yield reject(source, f"{part}.csv:{n}", f"FSD50K.ground_truth/{part}.csv", "bad_metadata",
                             f"row {n} has no numeric fname: {row}")
                continue
            listed.add(f"{audio_dir}/{fname}")
            rel = present.get(fname)
            if rel is None:
                yield reject(source, fname, f"{audio_dir}/{fname}.wav", "missing_audio", "listed in the ground "
                             f"truth of {part} but not in {audio_dir}")
                continue
            labels_raw = row[cols["labels"]].split(",") if len(row) > cols["labels"] else []
            tags = normalise_tags(labels_raw)
            unknown = sorted(set(tags) - vocabulary) if vocabulary is not None else []
            if unknown and source.options["out_of_vocabulary"] == "reject":
                yield reject(source, fname, f"{audio_dir}/{rel}", "label_not_in_vocabulary",
                             f"labels {unknown} are not in FSD50K.ground_truth/vocabulary.csv")
                continue
            fold = row[cols["split"]].strip() if "split" in cols and len(row) > cols["split"] else part
            meta = info.get(fname)
            meta = meta if isinstance(meta, dict) else {}
            uploader = str(meta.get("uploader") or "")
            yield clip(source, fname, f"{audio_dir}/{rel}", title=str(meta.get("title") or fname),
                       uploader=uploader, licence=str(meta.get("license") or ""), fold=fold, source_id=fname,
                       url=freesound_url(int(fname), uploader),
                       labels={"tags": tags, "classes": {}, "key": None, "tempo": None,
                               "extra": {"freesound_tags": normalise_tags(meta.get("tags") or [])}})
    for _, audio_dir in PARTS:
        if storage.exists(storage.join(root, audio_dir)):
            yield from unselected_audio(source, storage.join(root, audio_dir), prefix=f"{audio_dir}/")
        for rel in audio_files(storage.join(root, audio_dir), source.extensions):
            if f"{audio_dir}/{PurePosixPath(rel).stem}" not in listed:
                yield reject(source, f"{audio_dir}/{rel}", f"{audio_dir}/{rel}", "no_metadata",
                             "audio file is in no ground-truth CSV")

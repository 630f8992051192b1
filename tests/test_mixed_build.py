"""Real Beam builds over a collection of every source kind at once."""

import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from mixtape.pipelines.build import build
from mixtape.spec import parse_spec
from tests import formats
from tests.test_source_kinds import CLOTHO, ESC50, US8K

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    root = tmp_path_factory.mktemp("mixed")
    formats.fsd50k(root / "fsd50k")
    formats.esc50(root / "esc50")
    formats.urbansound8k(root / "us8k")
    formats.clotho(root / "clotho")
    formats.windowed_index(root / "cuts")
    formats.freesound_pack(root / "pack")
    formats.acousticbrainz(root / "ab")
    formats.folder(root / "folder")
    (root / "dump" / "audio").mkdir(parents=True)
    # the same audio as a pack file, under another id: a content duplicate
    shutil.copy(root / "pack" / "mridangam_stroke_1.5" / "B" / "224029__akshaylaya__cha-b-000.wav",
                root / "dump" / "audio" / "224029.wav")
    formats.tone(root / "dump" / "audio" / "5.wav", seconds=1.5)
    sf.write(root / "dump" / "audio" / "6.wav", np.zeros((16000, 10), np.float32) + 0.1, 16000)  # 10 channels
    (root / "dump" / "metadata.jsonl").write_text(
        '{"id": 224029, "name": "copy", "license": "http://creativecommons.org/publicdomain/zero/1.0/"}\n'
        '{"id": 5, "name": "ok", "license": "http://creativecommons.org/publicdomain/zero/1.0/", "geotag": null}\n'
        '{"id": 6, "name": "ten channels", "license": "http://creativecommons.org/licenses/by/4.0/"}\n')
    spec = {
        "name": "mixed", "seed": 5,
        "sources": [
            {"kind": "freesound_dump", "path": "dump"},
            {"kind": "freesound_pack", "name": "pack", "path": "pack"},
            {"kind": "fsd50k", "path": "fsd50k"},
            {**ESC50, "path": "esc50"},
            {**US8K, "path": "us8k"},
            {**CLOTHO, "path": "clotho"},
            {"kind": "csv_index", "name": "cuts", "path": "cuts", "csv": "index.tsv",
             "columns": {"file": "file", "id": "label", "start": "start", "end": "end", "class": "label"}},
            {"kind": "acousticbrainz", "name": "ab", "path": "ab/docs", "audio": "../audio",
             "mapping": "../mapping.csv", "genre_tsv": "../genres.tsv"},
            {"kind": "folder", "path": "folder", "pattern": "{genre}/{artist}/*"},
        ],
        "audio": {"sample_rate": 8000, "channels": 1},
        "snippets": {"duration": 0.25, "hop": 0.25},
        "splits": {"group_by": "source_id", "fractions": {"train": 0.6, "valid": 0.2, "test": 0.2}},
        "licences": {"deny": ["cc-by-nc", "cc-by-nc-sa"]},
        "shards": {"max_samples": 50},
    }
    return root, spec


def test_mixed_collection_accounting_and_reasons(mixed):
    root, raw = mixed
    card = build(parse_spec(raw, root), str(root / "out"))
    acc = card["accounting"]
    assert acc["clips_in"] == acc["clips_used"] + acc["clips_rejected"]
    by_source = acc["by_source"]
    assert sum(s["clips_used"] for s in by_source.values()) == acc["clips_used"]
    assert sum(s["clips_rejected"] for s in by_source.values()) == acc["clips_rejected"]
    assert by_source["pack"] == {"kind": "freesound_pack", "clips_used": 0, "clips_rejected": 4, "rejects_by_reason": {
        "duplicate_content": 1, "licence_not_allowed": 2, "missing_audio": 1}}
    rejects = pq.read_table(root / "out" / "rejects.parquet").to_pylist()
    assert len(rejects) == acc["clips_rejected"] and all(r["reason"] and r["detail"] for r in rejects)
    by_id = {r["clip_id"]: r["reason"] for r in rejects}
    assert by_id["pack:224029"] == "duplicate_content"  # the dump comes first in the spec, so its copy stays
    assert "freesound:224029" not in by_id
    assert by_id["freesound:6"] == "unsupported_channels"
    assert by_id["cuts:outro"] == "window_outside_file"
    assert by_id["pack:224030"] == "licence_not_allowed"  # NC is denied by the spec
    assert by_id["fsd50k:99"] == "licence_not_allowed" and by_id["clotho: Ambience Birds.wav"] == "licence_not_allowed"
    index = pq.read_table(root / "out" / "index.parquet").to_pylist()
    used = {r["clip_id"] for r in index}
    assert len(used) == acc["clips_used"]
    prefixes = {cid.split(":", 1)[0] for cid in used}
    # every pack sound is NC (denied) or a duplicate, so the pack contributes rejects only
    assert prefixes == {"freesound", "fsd50k", "esc50", "us8k", "clotho", "cuts", "ab", "folder"}
    # slices of one recording (UrbanSound8K fsID 135776, ESC-50 src_file 100032) never straddle splits
    split_of = {}
    for r in index:
        split_of.setdefault(r["clip_id"], r["split"])
    assert split_of["us8k:135776-2-0-49.wav"] == split_of["us8k:135776-2-0-50.wav"]
    assert split_of["esc50:1-100032-A-0.wav"] == split_of["esc50:1-100032-B-0.wav"]
    # licence and attribution travel with every sample and into the card
    unlicensed = ("folder:", "cuts:", "ab:", "us8k:", "esc50:")  # these fixtures carry no licence column
    assert all(r["licence"] for r in index if not r["clip_id"].startswith(unlicensed))
    attribution = {a["clip_id"]: a for a in card["attribution"]}
    assert set(attribution) == used
    assert attribution["fsd50k:64760"]["author"] == "casualsamples"


def test_windows_are_rendered_from_their_offsets(mixed):
    root, raw = mixed
    out = root / "out"
    if not out.exists():
        build(parse_spec(raw, root), str(out))
    index = pq.read_table(out / "index.parquet").to_pylist()
    verse = [r for r in index if r["clip_id"] == "cuts:verse"]
    assert len(verse) == 10  # 2.5 s window / 0.25 s snippets


def test_fold_splits_follow_the_dataset(tmp_path):
    formats.esc50(tmp_path / "esc50")
    spec = parse_spec({"name": "folds", "seed": 1, "sources": [{**ESC50, "path": "esc50"}],
                       "audio": {"sample_rate": 8000}, "snippets": {"duration": 0.5},
                       "splits": {"group_by": "fold", "folds": {"train": [1], "test": [2]}}}, tmp_path)
    card = build(spec, str(tmp_path / "out"))
    index = pq.read_table(tmp_path / "out" / "index.parquet").to_pylist()
    assert {r["clip_id"]: r["split"] for r in index} == {
        "esc50:1-100032-A-0.wav": "train", "esc50:1-100032-B-0.wav": "train", "esc50:2-104089-A-22.wav": "test"}
    assert card["accounting"]["rejects_by_reason"] == {"missing_audio": 1}


def test_fold_not_in_any_split_is_rejected(tmp_path):
    formats.esc50(tmp_path / "esc50")
    spec = parse_spec({"name": "folds", "seed": 1, "sources": [{**ESC50, "path": "esc50"}],
                       "audio": {"sample_rate": 8000}, "snippets": {"duration": 0.5},
                       "splits": {"group_by": "fold", "folds": {"train": [1]}}}, tmp_path)
    card = build(spec, str(tmp_path / "out"))
    assert card["accounting"]["rejects_by_reason"] == {"fold_not_in_splits": 1, "missing_audio": 1}

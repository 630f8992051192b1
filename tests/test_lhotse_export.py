"""``mixtape export --format lhotse-shar``: Lhotse's own Shar reader reads the export, each cut's audio the
sample's bytes and its supervision the sample's labels; an export is the same bytes every time."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import soundfile as sf
from lhotse import CutSet

from mixtape.dataset.api import open_dataset


def _export(dataset, out) -> None:
    r = subprocess.run([sys.executable, "-m", "mixtape", "export", str(dataset), "--out", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "as Lhotse Shar" in r.stdout


def test_lhotse_reads_the_export_with_the_samples_audio_and_labels(tiny_build, tmp_path):
    out, _ = tiny_build
    ds = open_dataset(str(out))
    _export(out, tmp_path / "shar")
    index = {r["sample_key"]: r for r in ds.index()}
    for split in ds.splits:
        cuts = list(CutSet.from_shar(in_dir=tmp_path / "shar" / split))
        assert sorted(c.id for c in cuts) == sorted(k for k, r in index.items() if r["split"] == split)
        for cut in cuts[:5]:
            row = index[cut.id]
            audio = cut.load_audio()
            flac = next(s for s in _samples(out, row["shard"]) if s[0] == cut.id)[1]
            expected, sr = sf.read(io.BytesIO(flac), dtype="float32", always_2d=True)
            assert cut.sampling_rate == sr == ds.card["audio"]["sample_rate"]
            assert np.allclose(audio, expected.T, atol=1e-6)
            sup = cut.supervisions[0]
            assert sorted(sup.custom["tags"]) == sorted(row["tags"]) and cut.custom["clip_id"] == row["clip_id"]
    _export(out, tmp_path / "again")
    for p in sorted((tmp_path / "shar").rglob("*")):
        if p.is_file():
            assert p.read_bytes() == (tmp_path / "again" / p.relative_to(tmp_path / "shar")).read_bytes(), p


def test_an_export_never_writes_into_a_folder_that_holds_anything(tiny_build, tmp_path):
    out, _ = tiny_build
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "mine.txt").write_text("keep me")
    r = subprocess.run([sys.executable, "-m", "mixtape", "export", str(out), "--out", str(tmp_path / "busy")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "exists and is not empty" in r.stderr
    assert [p.name for p in (tmp_path / "busy").iterdir()] == ["mine.txt"]


def _samples(dataset, shard):
    from mixtape.dataset.shardformat import iter_raw_samples

    with open(dataset / shard, "rb") as f:
        return [(s.key, s.audio) for s in iter_raw_samples(f)]

import json

import soundfile as sf

from mixtape.audio import probe
from mixtape.demo.collection import STYLES, generate, plan_collection


def files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_generation_is_byte_identical_for_a_seed_with_any_number_of_workers(tmp_path):
    generate(tmp_path / "a", seed=5, n_clips=6, min_seconds=2, max_seconds=3)
    generate(tmp_path / "b", seed=5, n_clips=6, min_seconds=2, max_seconds=3, workers=2)
    a, b = files(tmp_path / "a"), files(tmp_path / "b")
    assert a.keys() == b.keys() and any(k.endswith(".ogg") for k in a)
    assert a == b
    generate(tmp_path / "c", seed=6, n_clips=6, min_seconds=2, max_seconds=3)
    assert files(tmp_path / "c") != a


def test_collection_mixes_formats_rates_channels_and_has_two_broken_clips(tmp_path):
    info = generate(tmp_path, seed=1, n_clips=12, min_seconds=5, max_seconds=6)
    records = [json.loads(line) for line in (tmp_path / "freesound" / "metadata.jsonl").read_text().splitlines()]
    assert len(records) == info["clips"] == 14
    for field in ("id", "name", "tags", "username", "license", "duration", "samplerate", "channels", "pack"):
        assert all(field in r for r in records), field
    audio = sorted((tmp_path / "freesound" / "audio").iterdir())
    assert {p.suffix for p in audio} == {".flac", ".wav", ".ogg"}
    good = [p for p in audio if not p.name.startswith("399")]
    probes = [probe(p.read_bytes(), p.name) for p in good]
    assert {p.channels for p in probes} == {1, 2}
    assert len({p.sample_rate for p in probes}) >= 2
    assert all(5 <= p.duration <= 6.01 for p in probes)
    by_id = {str(r["id"]): r for r in records}
    for p, pr in zip(good, probes, strict=True):
        rec = by_id[p.stem]
        assert (rec["samplerate"], rec["channels"]) == (pr.sample_rate, pr.channels)
    assert sf.info(tmp_path / "freesound" / "audio" / "399002.flac").frames > 0  # silent, not broken


def test_acousticbrainz_documents_match_the_music(tmp_path):
    generate(tmp_path, seed=2, n_clips=8, min_seconds=2, max_seconds=2)
    plans = plan_collection(2, 8, 2, 2)
    records = [json.loads(line) for line in (tmp_path / "freesound" / "metadata.jsonl").read_text().splitlines()]
    with_ab = [(r, p) for r, p in zip(records, plans, strict=False) if "mbid" in r]
    assert with_ab
    for rec, plan in with_ab:
        low = json.loads((tmp_path / "acousticbrainz" / "lowlevel" / f"{rec['mbid']}.json").read_text())
        high = json.loads((tmp_path / "acousticbrainz" / "highlevel" / f"{rec['mbid']}_highlevel.json").read_text())
        assert low["rhythm"]["bpm"] == plan.bpm and low["tonal"]["key_scale"] == plan.mode
        assert high["highlevel"]["genre_rosamerica"]["value"] == plan.style.genre_code
        assert plan.style.name in [t.lower() for t in rec["tags"]]
    assert {p.style.name for p in plans} == {s.name for s in STYLES}

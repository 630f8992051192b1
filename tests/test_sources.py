import json

import numpy as np
import soundfile as sf

from mixtape.labels import labels_from_acousticbrainz, normalise_key, normalise_tags
from mixtape.records import Clip, Reject
from mixtape.sources.registry import list_source
from mixtape.spec import parse_spec
from tests.conftest import REALDATA


def source(tmp_path, **kw):
    spec = parse_spec({"name": "s", "seed": 1, "sources": [{"kind": "freesound_dump", "path": "dump", **kw}]},
                      tmp_path)
    return spec.sources[0]


def wav(path, seconds=1.0, sr=8000):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros(int(seconds * sr), np.float32), sr)


def split(items):
    clips = {i.clip_id: i for i in items if isinstance(i, Clip)}
    rejects = {i.clip_id: i for i in items if isinstance(i, Reject)}
    return clips, rejects


def test_freesound_dump_reads_records_and_rejects_what_it_cannot_use(tmp_path):
    dump = tmp_path / "dump"
    for sid in (1, 2, 5):
        wav(dump / "audio" / f"{sid}.wav")
    wav(dump / "audio" / "2.flac")  # a second file for id 2
    lines = [
        json.dumps({"id": 1, "name": "kick", "tags": ["Drums", "drums", "kick "], "username": "u",
                    "license": "http://creativecommons.org/licenses/by/4.0/",
                    "pack": "https://freesound.org/apiv2/packs/77/", "geotag": None}),
        json.dumps({"id": "2", "name": "snare", "tags": [], "username": "u", "pack": None,
                    "geotag": "41.3 2.1"}),
        "{not json",
        json.dumps({"id": 3, "name": "missing audio"}),
        json.dumps({"name": "no id"}),
    ]
    (dump / "metadata.jsonl").write_text("\ufeff" + "\n".join(lines) + "\n")
    clips, rejects = split(list(list_source(source(tmp_path))))
    assert set(clips) == {"freesound:1", "freesound:2"}
    one = clips["freesound:1"]
    assert one.labels["tags"] == ["drums", "kick"] and one.pack == "77" and one.uploader == "u"
    assert one.relpath == "audio/1.wav" and one.url == "https://freesound.org/people/u/sounds/1/"
    assert clips["freesound:2"].relpath == "audio/2.flac"  # sorted: flac before wav
    reasons = sorted(r.reason for r in rejects.values())
    assert reasons == ["bad_metadata", "bad_metadata", "duplicate_audio", "missing_audio", "no_metadata"]
    assert rejects["freesound:3"].reason == "missing_audio"
    assert rejects["freesound:audio/5.wav"].reason == "no_metadata"


def test_metadata_json_shapes(tmp_path):
    dump = tmp_path / "dump"
    wav(dump / "audio" / "7.ogg".replace("ogg", "wav"))
    for doc in ({"count": 1, "next": None, "results": [{"id": 7, "name": "a"}]},
                [{"id": 7, "name": "a"}],
                {"7": {"name": "a"}}):
        (dump / "metadata.json").write_text(json.dumps(doc))
        clips, rejects = split(list(list_source(source(tmp_path))))
        assert list(clips) == ["freesound:7"] and not rejects


def test_real_freesound_api_page_is_read_as_a_dump(tmp_path):
    """A real captured /apiv2/search/text/ page (when shared/realdata is present) or one in its shape."""
    real = REALDATA / "freesound_style" / "api_responses" / "futurice_sound_search_result.json"
    page = json.loads(real.read_text()) if real.exists() else {
        "count": 2, "next": "https://freesound.org/apiv2/search/text/?page=2", "results": [
            {"id": 11, "name": "a", "tags": ["Worst", "worst"], "geotag": None},
            {"id": 12, "name": "b", "tags": [], "geotag": "41.4 2.2"}]}
    dump = tmp_path / "dump"
    dump.mkdir()
    (dump / "metadata.json").write_text(json.dumps(page))
    first = page["results"][0]
    wav(dump / "audio" / f"{first['id']}.wav")
    clips, rejects = split(list(list_source(source(tmp_path))))
    assert list(clips) == [f"freesound:{first['id']}"]
    assert clips[f"freesound:{first['id']}"].labels["tags"] == normalise_tags(first["tags"])
    assert len(rejects) == len(page["results"]) - 1
    assert {r.reason for r in rejects.values()} == {"missing_audio"}


def test_acousticbrainz_join_by_mbid(tmp_path):
    mbid = "0dad432b-16cc-4bf0-8961-fd31d124b01b"
    dump, ab = tmp_path / "dump", tmp_path / "ab"
    wav(dump / "audio" / "1.wav")
    wav(dump / "audio" / "2.wav")
    (dump / "metadata.jsonl").write_text(json.dumps({"id": 1, "name": "x", "mbid": mbid.upper()}) + "\n" +
                                         json.dumps({"id": 2, "name": "y", "mbid": "bé686320-not-a-uuid"}) + "\n")
    real_low = REALDATA / "acousticbrainz" / "lowlevel" / f"{mbid}.json"
    real_high = REALDATA / "acousticbrainz" / "highlevel" / f"{mbid}_highlevel.json"
    (ab / "lowlevel").mkdir(parents=True)
    (ab / "highlevel").mkdir()
    low = real_low.read_text() if real_low.exists() else json.dumps(
        {"tonal": {"key_key": "D", "key_scale": "major"}, "rhythm": {"bpm": 139.9}})
    high = real_high.read_text() if real_high.exists() else json.dumps(
        {"highlevel": {"genre_rosamerica": {"value": "cla", "probability": 0.5}}})
    (ab / "lowlevel" / f"{mbid}.json").write_text(low)
    (ab / "highlevel" / f"{mbid}_highlevel.json").write_text(high)
    clips, rejects = split(list(list_source(source(tmp_path, acousticbrainz="../ab"))))
    labels = clips["freesound:1"].labels
    assert labels["key"] == {"tonic": "D", "mode": "major"}
    assert 100 < labels["tempo"] < 200
    assert "genre" in labels["classes"] and labels["extra"]["mbid"] == mbid
    assert rejects["freesound:2"].reason == "bad_mbid"


def test_folder_source_labels_by_parent(tmp_path):
    wav(tmp_path / "music" / "jazz" / "a.wav")
    wav(tmp_path / "music" / "rock" / "b b.wav")
    (tmp_path / "music" / "notes.txt").write_text("not audio")
    spec = parse_spec({"name": "f", "seed": 1, "sources": [{"kind": "folder", "path": "music",
                                                            "class_field": "genre"}]}, tmp_path)
    clips, rejects = split(list(list_source(spec.sources[0])))
    assert sorted(clips) == ["folder:jazz/a.wav", "folder:rock/b b.wav"] and not rejects
    assert clips["folder:rock/b b.wav"].labels["classes"] == {"genre": "rock"}


def test_key_spelling_is_normalised():
    assert normalise_key("A#", "Minor") == {"tonic": "Bb", "mode": "minor"}
    assert normalise_key("db", "major") == {"tonic": "C#", "mode": "major"}
    assert normalise_key("H", "major") is None
    assert labels_from_acousticbrainz({"tonal": {"key_key": "Eb", "key_scale": "minor"}}, None)["key"] == {
        "tonic": "Eb", "mode": "minor"}


def test_freesound_audiocommons_key_and_tempo_only_when_confident(tmp_path):
    dump = tmp_path / "dump"
    records = [
        {"id": 1, "ac_analysis": {"ac_tonality": "Db major", "ac_tonality_confidence": 0.8, "ac_tempo": 128,
                                  "ac_tempo_confidence": 0.7}},
        {"id": 2, "ac_analysis": {"ac_tonality": "F minor", "ac_tonality_confidence": 0.2, "ac_tempo": 0,
                                  "ac_tempo_confidence": 0.0}},
        {"id": 3, "ac_analysis": {"ac_tonality": "H dorian", "ac_tonality_confidence": 0.9, "ac_tempo": "fast",
                                  "ac_tempo_confidence": True}},
        {"id": 4},
    ]
    for r in records:
        wav(dump / "audio" / f"{r['id']}.wav")
    (dump / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    clips, _ = split(list(list_source(source(tmp_path))))
    assert clips["freesound:1"].labels["key"] == {"tonic": "C#", "mode": "major"}
    assert clips["freesound:1"].labels["tempo"] == 128.0
    for sid in (2, 3, 4):
        assert clips[f"freesound:{sid}"].labels["key"] is None and clips[f"freesound:{sid}"].labels["tempo"] is None
    clips, _ = split(list(list_source(source(tmp_path, ac_min_confidence=0.1))))
    assert clips["freesound:2"].labels["key"] == {"tonic": "F", "mode": "minor"}
    assert clips["freesound:2"].labels["tempo"] is None  # tempo 0 means "none found", whatever the threshold


def test_real_audiocommons_record():
    from mixtape.sources.freesound.dump import labels_from_audiocommons

    real = REALDATA / "freesound_style" / "freesound_one_shot_percussive_sounds" / "sound_info_analysis.json"
    if real.exists():  # the captured real record, when shared/realdata is present
        labels = labels_from_audiocommons(json.loads(real.read_text())[0]["ac_analysis"], 0.5)
        assert labels["key"] == {"tonic": "F", "mode": "minor"} and labels["tempo"] is None  # tempo 0, conf. 0

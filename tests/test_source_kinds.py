"""Every source kind on its own fixtures (real layouts, quirks included) and, when shared/realdata is
present, on the real files too."""

from collections import Counter
from dataclasses import replace

import pytest

from mixtape.audio import probe
from mixtape.licences import licence_family
from mixtape.records import Clip, Reject
from mixtape.sources.folder import match_pattern
from mixtape.sources.freesound.pack import parse_readme
from mixtape.sources.registry import list_source
from mixtape.spec import parse_spec
from tests import formats
from tests.conftest import REALDATA

FS = REALDATA / "freesound_style"
AB = REALDATA / "acousticbrainz"


def read(source: dict, base=None):
    spec = parse_spec({"name": "t", "seed": 1, "sources": [source]}, base)
    items = list(list_source(spec.sources[0]))
    clips = {i.clip_id: i for i in items if isinstance(i, Clip)}
    rejects = {i.clip_id: i for i in items if isinstance(i, Reject)}
    assert len(clips) + len(rejects) == len(items), "ids must be unique within a source"
    return clips, rejects


def reasons(rejects) -> dict:
    return {k: r.reason for k, r in rejects.items()}


# ------------------------------------------------------------------------------------------------ FSD50K
def test_fsd50k_layout(tmp_path):
    facts = formats.fsd50k(tmp_path)
    clips, rejects = read({"kind": "fsd50k", "path": str(tmp_path)})
    assert {k: c.fold for k, c in clips.items()} == facts["clips"]
    assert reasons(rejects) == facts["rejects"]
    guitar = clips["fsd50k:64760"]
    assert guitar.labels["tags"] == ["electric_guitar", "guitar", "music"]  # quoted comma-joined labels
    assert guitar.labels["extra"]["freesound_tags"] == ["electric", "guitar"]
    assert guitar.uploader == "casualsamples" and licence_family(guitar.licence) == "sampling+"
    assert clips["fsd50k:21914"].title == "a cool title here.wav"  # the placeholder entry is read as it is
    kept, _ = read({"kind": "fsd50k", "path": str(tmp_path), "out_of_vocabulary": "keep"})
    assert "fsd50k:555" in kept


def test_fsd50k_real_files():
    root = FS / "fsd50k"
    if not root.exists():
        return
    clips, _rejects = read({"kind": "fsd50k", "path": str(root), "out_of_vocabulary": "keep"})
    assert set(clips) == {"fsd50k:64760", "fsd50k:21914", "fsd50k:99"}
    assert clips["fsd50k:99"].fold == "eval" and clips["fsd50k:21914"].fold == "val"
    assert "chatter" in clips["fsd50k:99"].labels["tags"]
    # the fixture's vocabulary lists only two labels: with the default rule the others are rejected
    strict, strict_rejects = read({"kind": "fsd50k", "path": str(root)})
    assert set(strict) == {"fsd50k:21914"}
    assert {r.reason for r in strict_rejects.values()} == {"label_not_in_vocabulary"}


# ------------------------------------------------------------------------------------------------ CSV indexes
ESC50 = {"kind": "csv_index", "name": "esc50", "csv": "meta/esc50.csv", "audio_dir": "audio",
         "columns": {"file": "filename", "class": "category", "fold": "fold", "source_id": "src_file"}}
US8K = {"kind": "csv_index", "name": "us8k", "csv": "metadata/UrbanSound8K.csv", "audio_dir": "audio",
        "columns": {"file": "fold{fold}/{slice_file_name}", "id": "slice_file_name", "class": "class", "fold": "fold",
                    "source_id": "fsID"}}
CLOTHO = {"kind": "csv_index", "name": "clotho", "csv": "clotho_metadata_development.csv",
          "audio_dir": "clotho_audio_development",
          "columns": {"file": "file_name", "tags": "keywords", "source_id": "sound_id", "url": "sound_link",
                      "uploader": "manufacturer", "licence": "license"}}


def test_esc50_style_index(tmp_path):
    facts = formats.esc50(tmp_path)
    clips, rejects = read({**ESC50, "path": str(tmp_path)})
    assert {k: c.fold for k, c in clips.items()} == facts["clips"]
    assert reasons(rejects) == facts["rejects"]
    dog = clips["esc50:1-100032-A-0.wav"]
    assert dog.labels["classes"] == {"class": "dog"} and dog.source_id == "100032"
    assert dog.labels["extra"] == {"esc10": "True", "take": "A", "target": "0"}


def test_urbansound8k_style_index_with_a_file_template(tmp_path):
    facts = formats.urbansound8k(tmp_path)
    clips, rejects = read({**US8K, "path": str(tmp_path)})
    assert sorted(clips) == facts["ids"] and not rejects
    slice49 = clips["us8k:135776-2-0-49.wav"]
    assert slice49.relpath == "fold1/135776-2-0-49.wav" and slice49.fold == "1" and slice49.source_id == "135776"
    assert slice49.labels["extra"]["salience"] == "2"
    # start/end here locate the slice in its Freesound original, so they are not mapped as a window
    assert (slice49.window_start, slice49.window_end) == (0.0, 0.0)


def test_clotho_crlf_keywords_and_a_name_with_a_leading_space(tmp_path):
    facts = formats.clotho(tmp_path)
    clips, rejects = read({**CLOTHO, "path": str(tmp_path)})
    assert not rejects
    birds = clips[f"clotho:{facts['space_name']}"]
    assert birds.relpath == " Ambience Birds.wav" and birds.uploader == "Juan_Merie_Venter"
    assert birds.labels["tags"] == ["ambience", "birds", "night", "outside", "owi"]
    assert licence_family(birds.licence) == "cc-by-nc"
    # the DCASE variant: semicolon-delimited, with a BOM
    dcase, rej = read({"kind": "csv_index", "name": "dcase", "path": str(tmp_path), "csv": "dcase_test.csv",
                       "audio_dir": "clotho_audio_development",
                       "columns": {"file": "file_name", "uploader": "manufacturer", "licence": "license"}})
    assert list(dcase) == ["dcase:rain.wav"] and dcase["dcase:rain.wav"].uploader == "ceejay"
    assert reasons(rej) == {"dcase: Ambience Birds.wav": "no_metadata"}


def test_windows_cut_clips_from_long_recordings(tmp_path):
    formats.windowed_index(tmp_path)
    clips, _ = read({"kind": "csv_index", "name": "cuts", "path": str(tmp_path), "csv": "index.tsv",
                     "columns": {"file": "file", "id": "label", "start": "start", "end": "end", "class": "label"}})
    assert {k: (c.window_start, c.window_end) for k, c in clips.items()} == {
        "cuts:intro": (0.5, 2.0), "cuts:verse": (3.0, 5.5), "cuts:outro": (5.0, 9.0)}
    data = (tmp_path / "long.wav").read_bytes()
    p = probe(data, "long.wav", (3.0, 5.5, "seconds"))
    assert (p.offset_frames, p.frames) == (48000, 40000)


def test_real_csv_indexes():
    if not FS.exists():
        return
    clips, rejects = read({**ESC50, "path": str(FS / "esc50")})
    assert list(clips) == ["esc50:1-104089-A-22.wav"] and len(rejects) == 1999  # the complete real index
    assert Counter(r.reason for r in rejects.values()) == {"missing_audio": 1999}
    clips, rejects = read({**US8K, "path": str(FS / "urbansound8k")})
    assert list(clips) == ["us8k:135776-2-0-49.wav"] and len(rejects) == 8731
    assert clips["us8k:135776-2-0-49.wav"].labels["classes"]["class"] == "children_playing"
    clips, rejects = read({**CLOTHO, "path": str(FS / "clotho")})
    assert list(clips) == ["clotho: Ambience Birds.wav"] and not rejects
    clips, _ = read({"kind": "csv_index", "name": "noisy", "path": str(FS / "fsdnoisy18k"),
                     "csv": "FSDnoisy18k.meta/train.csv", "audio_dir": "FSDnoisy18k.audio_train",
                     "columns": {"file": "fname", "class": "label"}})
    assert clips["noisy:17.wav"].labels["extra"]["manually_verified"] == "1"
    clips, rejects = read({"kind": "csv_index", "name": "ff", "path": str(FS / "freefield1010"),
                           "csv": "ff1010bird_metadata_2018.csv", "audio_dir": ".",
                           "columns": {"file": "{itemid}.wav", "class": "hasbird"}})
    assert list(clips) == ["ff:64486.wav"] and len(rejects) == 8


# ------------------------------------------------------------------------------------------------ packs
def test_freesound_pack_download(tmp_path):
    facts = formats.freesound_pack(tmp_path)
    clips, rejects = read({"kind": "freesound_pack", "name": "pack", "path": str(tmp_path)})
    assert {k: c.licence for k, c in clips.items()} == facts["clips"]
    assert reasons(rejects) == facts["rejects"]
    bheem = clips["pack:224030"]
    assert (bheem.uploader, bheem.pack, bheem.title) == ("akshaylaya", "14157", "bheem-b-001")
    assert bheem.url == "https://freesound.org/s/224030/"
    assert licence_family(clips["pack:224029"].licence) == "cc0"


def test_pack_readme_parser_and_real_packs():
    info = parse_readme(formats.PACK_README)
    assert info.user == "akshaylaya" and info.licence_name == "Attribution Noncommercial"
    assert len(info.sounds) == 3
    for folder, name, present in (("mridangam_stroke", "mridangam", "224030"), ("carnatic_varnam", "varnam", "223578")):
        if not (FS / folder).exists():
            continue
        clips, rejects = read({"kind": "freesound_pack", "name": name, "path": str(FS / folder)})
        assert list(clips) == [f"{name}:{present}"]
        assert {r.reason for r in rejects.values()} == {"missing_audio"}
    if (FS / "mridangam_stroke").exists():
        _, rejects = read({"kind": "freesound_pack", "name": "m", "path": str(FS / "mridangam_stroke")})
        assert len(rejects) == 1324  # the readme lists 1325 sounds; one is present


# ------------------------------------------------------------------------------------------------ AcousticBrainz
def ab_source(root, **kw):
    return {"kind": "acousticbrainz", "name": "ab", "path": str(root / "docs"), "audio": str(root / "audio"),
            "mapping": str(root / "mapping.csv"), "genre_tsv": [str(root / "genres.tsv")],
            "class_csv": [str(root / "dataset.csv")], **kw}


def test_acousticbrainz_documents_join_audio_by_mbid(tmp_path):
    facts = formats.acousticbrainz(tmp_path)
    clips, rejects = read(ab_source(tmp_path))
    assert set(clips) == set(facts["clips"])
    assert reasons(rejects) == facts["rejects"]
    for cid, expected in facts["clips"].items():
        labels = clips[cid].labels
        assert labels["key"] == expected["key"]
        if "genre" in expected:
            assert labels["classes"]["genre"] == expected["genre"]
    bowie = clips[f"ab:{formats.MBIDS[0]}"]
    assert bowie.relpath == "bowie.flac" and bowie.artist == "David Bowie" and bowie.album == "Ziggy"
    assert bowie.release_group == "6c8a5a3c-0000-4000-8000-000000000001"
    assert bowie.labels["tempo"] == 139.9 and "relaxed" in bowie.labels["tags"] and "happy" not in bowie.labels["tags"]
    assert bowie.labels["classes"]["class"] == "Class #1"  # from the dataset CSV, '#' kept
    assert clips[f"ab:{formats.MBIDS[1]}"].relpath == "wintory.mp3"  # ID3 UFID
    film = clips[f"ab:{formats.MBIDS[2]}"]
    assert film.relpath == "film.ogg" and "stage-&-screen---film-music" in film.labels["tags"]
    mapped = clips[f"ab:{formats.MBIDS[3]}"]
    assert mapped.relpath == "mapped.wav" and "pop/rock" in mapped.labels["tags"]  # mapping CSV, tar.bz2 doc
    assert mapped.release_group == "a3fb800d-a878-3406-8b62-d2b84cfba36e"
    # a probability threshold drops low-confidence classifier outputs
    strict, _ = read(ab_source(tmp_path, genre_threshold=0.7))
    assert "genre" not in strict[f"ab:{formats.MBIDS[0]}"].labels["classes"]
    assert strict[f"ab:{formats.MBIDS[1]}"].labels["classes"]["genre"] == "rock"


def test_the_keyed_beam_join_gives_what_the_reader_gives_whatever_order_documents_arrive_in(tmp_path):
    """The build reads AcousticBrainz keyed by MBID (document files spread over workers, a CoGroupByKey on
    the recording): the same clips, labels merged in the same order, and the same rejects as the reader, on
    a fixture where recordings have documents in several files and archives, broken files and bad ids."""
    from apache_beam.testing.util import assert_that, equal_to

    from mixtape.pipelines.ingest import JoinAcousticBrainz
    from mixtape.pipelines.runners import RunnerConfig, make_pipeline

    formats.acousticbrainz(tmp_path)
    spec = parse_spec({"name": "t", "seed": 1, "sources": [{"kind": "folder", "path": str(tmp_path / "audio")},
                                                           ab_source(tmp_path)]}, None)
    expected = list(list_source(spec.sources[1]))
    assert {i.reason for i in expected if isinstance(i, Reject)} >= {"bad_acousticbrainz", "no_audio"}
    assert sum(isinstance(i, Clip) for i in expected) >= 4
    with make_pipeline(RunnerConfig(workers=1)) as p:
        joined = p | JoinAcousticBrainz([(1, spec.sources[1])])
        assert_that(joined.clips, equal_to([replace(c, source_index=1) for c in expected if isinstance(c, Clip)]),
                    label="SameClips")
        assert_that(joined.rejects, equal_to([r for r in expected if isinstance(r, Reject)]), label="SameRejects")


def test_real_acousticbrainz_documents(tmp_path):
    if not AB.exists():
        return
    # join the two real low-level documents (and the high-level one) to audio through a mapping CSV
    formats.tone(tmp_path / "a.flac")
    formats.tone(tmp_path / "b.flac", freq=500)
    m0, m1 = "0dad432b-16cc-4bf0-8961-fd31d124b01b", "e8afe383-1478-497e-90b1-7885c7f37f6e"
    (tmp_path / "map.csv").write_text(f"mbid,file\n{m0},a.flac\n{m1},b.flac\n")
    clips, rejects = read({"kind": "acousticbrainz", "name": "ab", "path": str(AB), "audio": str(tmp_path),
                           "mapping": str(tmp_path / "map.csv"),
                           "genre_tsv": [str(p) for p in sorted((AB / "genre_groundtruth").glob("*.tsv"))],
                           "class_csv": [str(p) for p in sorted((AB / "datasets").glob("*.csv"))]})
    assert clips[f"ab:{m0}"].labels["key"] == {"tonic": "D", "mode": "major"}
    assert abs(clips[f"ab:{m0}"].labels["tempo"] - 139.926) < 0.01
    assert clips[f"ab:{m0}"].labels["classes"]["genre"] == "classical"
    assert clips[f"ab:{m1}"].artist == "David Bowie" and clips[f"ab:{m1}"].labels["key"]["tonic"] == "D"
    by_reason = Counter(r.reason for r in rejects.values())
    assert by_reason["no_audio"] >= 3  # the MediaEval feature files (tree and tar.bz2) have no audio here
    assert rejects["ab:bé686320-8057-4ca2-b484-e01434a3a2b1"].reason == "bad_mbid"  # the invalid UUID


# ------------------------------------------------------------------------------------------------ folder
def test_folder_labels_from_pattern_sidecar_and_tags(tmp_path):
    formats.folder(tmp_path)
    clips, rejects = read({"kind": "folder", "path": str(tmp_path), "pattern": "{genre}/{artist}/*",
                           "sidecar": "labels.csv"})
    assert sorted(clips) == ["folder:jazz/miles/so what.wav", "folder:rock/bowie/starman.flac"]
    assert reasons(rejects) == {"folder:loose.wav": "path_pattern"}
    miles = clips["folder:jazz/miles/so what.wav"]
    assert miles.artist == "miles" and miles.labels["classes"] == {"genre": "jazz", "mood": "calm"}
    assert miles.labels["tags"] == ["cool", "trumpet"]
    starman = clips["folder:rock/bowie/starman.flac"]
    assert starman.album == "Ziggy Stardust" and starman.labels["classes"]["genre"] == "rock"  # path wins
    assert match_pattern("{genre}/*", "a/b/c.wav") == {"genre": "b"}
    assert match_pattern("{genre}/{artist}/*", "c.wav") is None


def test_real_folder_with_symlinks():
    lib = REALDATA / "audio" / "librosa"
    if not lib.exists():
        return
    clips, rejects = read({"kind": "folder", "name": "lib", "path": str(lib)})
    assert "lib:Karissa_Hobbs_-_Let's_Go_Fishin'.ogg" in clips and not rejects  # a symlink, kept for dedupe


def test_licence_families():
    cases = {
        "http://creativecommons.org/licenses/by-nc/3.0/": "cc-by-nc",
        "http://creativecommons.org/publicdomain/zero/1.0/": "cc0",
        "http://creativecommons.org/licenses/sampling+/1.0/": "sampling+",
        "Attribution Noncommercial": "cc-by-nc",
        "Attribution": "cc-by",
        "Creative Commons 0": "cc0",
        "CC BY-NC-SA 4.0": "cc-by-nc-sa",
        "Licensed under CC BY 3.0 and 4.0": "cc-by",
        "public domain": "public-domain",
        "": "unknown",
        "all rights reserved": "unknown",
    }
    assert {k: licence_family(k) for k in cases} == cases


def test_dump_extra_metadata_and_real_one_shot_and_near_silent_files(tmp_path):
    dump = tmp_path / "dump"
    formats.tone(dump / "one" / "183.wav")
    (dump / "info.json").write_text('[{"id": 183, "name": "1.wav", "samplerate": 16000.0, "channels": 1.0}]')
    (dump / "licenses.txt").write_text('{"183": {"name": "x", "username": "plagasul", '
                                       '"license": "http://creativecommons.org/licenses/by/3.0/"}}')
    clips, _ = read({"kind": "freesound_dump", "path": str(dump), "metadata": "info.json",
                     "extra_metadata": "licenses.txt"})
    c = clips["freesound:183"]
    assert (c.title, c.uploader, licence_family(c.licence)) == ("1.wav", "plagasul", "cc-by")
    real = FS / "freesound_one_shot_percussive_sounds"
    if real.exists():
        clips, _ = read({"kind": "freesound_dump", "path": str(real), "metadata": "sound_info_analysis.json",
                         "extra_metadata": "licenses.txt"})
        c = clips["freesound:183"]
        assert c.relpath == "one_shot_percussive_sounds/1/183.wav" and c.uploader == "plagasul"
        assert "finger" in c.labels["tags"]
    placeholder = FS / "good_sounds" / "good-sounds" / "sound_files" / "flute_almudena_reference" / "akg" / "0000.wav"
    if placeholder.exists():  # labelled as a flute C4 note but near-silent: its windows fall below -60 dBFS
        assert max(probe(placeholder.read_bytes()).block_rms_db) < -60


def test_acousticbrainz_descriptors_are_kept_and_go_stale_under_augmentation(tmp_path):
    from mixtape.augment.ops import apply_chain_labels
    from mixtape.labels import labels_from_acousticbrainz

    labels = labels_from_acousticbrainz({"lowlevel": {"average_loudness": 0.9}, "tonal": {"tuning_frequency": 440.1},
                                         "rhythm": {"bpm": 120.0}}, None)
    assert labels["extra"]["acousticbrainz_descriptors"] == {"lowlevel.average_loudness": 0.9,
                                                             "tonal.tuning_frequency": 440.1}
    shifted = apply_chain_labels(labels, [{"op": "pitch_shift", "semitones": 1}])
    assert shifted["stale"] == ["extra.acousticbrainz_descriptors"]


def test_genre_codes_become_names_and_a_spec_map_makes_one_spelling_per_value():
    from mixtape.labels import labels_from_acousticbrainz
    from mixtape.pipelines.ingest import _admit
    from mixtape.records import Clip, Reject
    from mixtape.spec import SpecError, parse_spec

    high = {"highlevel": {"genre_rosamerica": {"value": "jaz", "probability": 0.9},
                          "genre_tzanetakis": {"value": "roc", "probability": 0.9}}}
    labels = labels_from_acousticbrainz(None, high)
    assert labels["classes"]["genre"] == "jazz" and labels["classes"]["genre_tzanetakis"] == "rock"
    assert labels["extra"]["acousticbrainz_genre_codes"] == {"genre_rosamerica": "jaz", "genre_tzanetakis": "roc"}

    raw = {"name": "m", "seed": 1, "sources": [{"kind": "folder", "path": "x"}],
           "labels": {"map": {"genre": {"Jazz": "jazz", "bebop": "jazz"}, "tags": {"Piano": "piano"}},
                      "classes": {"genre": ["jazz", "rock"]}}}
    spec = parse_spec(raw)
    assert spec.to_dict()["labels"]["map"] == {"genre": {"Jazz": "jazz", "bebop": "jazz"}, "tags": {"Piano": "piano"}}
    folder = Clip(clip_id="folder:a.wav", uri="/x/a.wav", relpath="a.wav", source="folder",
                  labels={"tags": ["Piano"], "classes": {"genre": "bebop"}, "key": None, "tempo": None, "extra": {}})
    (admitted,) = list(_admit(("folder:a.wav", [folder]), spec))
    assert admitted.labels["classes"]["genre"] == "jazz" and admitted.labels["tags"] == ["piano"]
    other = Clip(clip_id="folder:b.wav", uri="/x/b.wav", relpath="b.wav", source="folder",
                 labels={"tags": [], "classes": {"genre": "polka"}, "key": None, "tempo": None, "extra": {}})
    (rejected,) = [x.value for x in _admit(("folder:b.wav", [other]), spec)]
    assert isinstance(rejected, Reject) and rejected.reason == "label_not_in_vocabulary"
    with pytest.raises(SpecError, match=r"labels\.map\.genre"):
        parse_spec({**raw, "labels": {"map": {"genre": ["jazz"]}}})

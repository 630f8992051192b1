"""Small collections written by the tests in the real layouts (quirks included), never downloaded.

Each builder returns facts the tests check against. The shapes follow the real files described in
shared/realdata/README.md.
"""

from __future__ import annotations

import bz2
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import soundfile as sf
import zstandard

MBIDS = ["0dad432b-16cc-4bf0-8961-fd31d124b01b", "e8afe383-1478-497e-90b1-7885c7f37f6e",
         "be9e01e5-8f93-494d-bbaa-ddcc5a52f629", "01a1a77a-f81e-49a5-9fea-7060394409ec",
         "01a0a332-d340-4806-a88b-cb60a05355c0", "7ded30da-4cf1-4ae4-8292-439722df6ea4"]


def tone(path: Path, seconds: float = 1.2, sr: int = 16000, freq: float = 440.0, channels: int = 1,
         fmt: str | None = None, subtype: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    x = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    data = np.stack([x] * channels, axis=1) if channels > 1 else x
    sf.write(path, data, sr, format=fmt, subtype=subtype)
    return path


def fsd50k(root: Path) -> dict:
    gt, meta = root / "FSD50K.ground_truth", root / "FSD50K.metadata"
    gt.mkdir(parents=True)
    meta.mkdir()
    (gt / "vocabulary.csv").write_text("0,Electric_guitar,/m/02sgy\n1,Guitar,/m/0342h\n2,Crushing,/m/07plct2\n"
                                       "3,Music,/m/04rlf\n")  # no header
    (gt / "dev.csv").write_text('fname,labels,mids,split\n'
                                '64760,"Electric_guitar,Guitar,Music","/m/02sgy,/m/0342h,/m/04rlf",train\n'
                                '21914,Crushing,/m/07plct2,val\n'
                                '555,"Crushing,Kazoo","/m/07plct2,/m/x",train\n'
                                '777,Music,/m/04rlf,train')  # no newline at the end, as in the release
    (gt / "eval.csv").write_text('fname,labels,mids\n99,"Music,Guitar","/m/04rlf,/m/0342h"\n')
    (meta / "dev_clips_info_FSD50K.json").write_text(
        '{\n    "64760": {\n        "title": "guitarras_63.wav",\n        "tags": ["electric", "guitar"],\n'
        '        "license": "http://creativecommons.org/licenses/sampling+/1.0/",\n'
        '        "uploader": "casualsamples"\n    },\n    "21914": {\n    "title": "a cool title here.wav",\n'
        '    "tags": ["cool"],\n    "license": "http://creativecommons.org/licenses/by/3.0/",\n'
        '    "uploader": "cooluploader"\n    }\n}')
    (meta / "eval_clips_info_FSD50K.json").write_text(json.dumps({"99": {
        "title": "manzana.wav", "tags": ["apple"], "license": "http://creativecommons.org/licenses/by-nc/3.0/",
        "uploader": "plagasul"}}))
    for i, (fname, part) in enumerate((("64760", "dev"), ("21914", "dev"), ("555", "dev"), ("99", "eval"),
                                       ("4242", "dev"))):
        tone(root / f"FSD50K.{part}_audio" / f"{fname}.wav", sr=44100, freq=300 + 50 * i)
    # 777 is listed but has no audio; 4242 has audio but no row; 555 has a label outside the vocabulary
    return {"clips": {"fsd50k:64760": "train", "fsd50k:21914": "val", "fsd50k:99": "eval"},
            "rejects": {"fsd50k:555": "label_not_in_vocabulary", "fsd50k:777": "missing_audio",
                        "fsd50k:FSD50K.dev_audio/4242.wav": "no_metadata"}}


def esc50(root: Path) -> dict:
    (root / "meta").mkdir(parents=True)
    (root / "meta" / "esc50.csv").write_text(
        "filename,fold,target,category,esc10,src_file,take\n"
        "1-100032-A-0.wav,1,0,dog,True,100032,A\n"
        "1-100032-B-0.wav,1,0,dog,True,100032,B\n"
        "2-104089-A-22.wav,2,22,clapping,False,104089,A\n"
        "3-555-A-1.wav,3,1,rooster,False,555,A\n")
    for name, f in (("1-100032-A-0.wav", 300), ("1-100032-B-0.wav", 320), ("2-104089-A-22.wav", 500)):
        tone(root / "audio" / name, seconds=1.5, sr=44100, freq=f)
    return {"clips": {"esc50:1-100032-A-0.wav": "1", "esc50:1-100032-B-0.wav": "1", "esc50:2-104089-A-22.wav": "2"},
            "rejects": {"esc50:3-555-A-1.wav": "missing_audio"}}


def urbansound8k(root: Path) -> dict:
    (root / "metadata").mkdir(parents=True)
    (root / "metadata" / "UrbanSound8K.csv").write_text(
        "slice_file_name,fsID,start,end,salience,fold,classID,class\n"
        "100032-3-0-0.wav,100032,0.0,0.317551,1,5,3,dog_bark\n"
        "135776-2-0-49.wav,135776,24.5,28.5,2,1,2,children_playing\n"
        "135776-2-0-50.wav,135776,25.0,29.0,2,1,2,children_playing\n")
    tone(root / "audio" / "fold5" / "100032-3-0-0.wav", seconds=1.0, sr=22050)
    tone(root / "audio" / "fold1" / "135776-2-0-49.wav", seconds=1.0, sr=48000, channels=2, freq=500)
    tone(root / "audio" / "fold1" / "135776-2-0-50.wav", seconds=1.0, sr=48000, channels=2, freq=520)
    return {"ids": ["us8k:100032-3-0-0.wav", "us8k:135776-2-0-49.wav", "us8k:135776-2-0-50.wav"]}


def clotho(root: Path) -> dict:
    (root / "clotho_audio_development").mkdir(parents=True)
    tone(root / "clotho_audio_development" / " Ambience Birds.wav", seconds=1.2, sr=44100)
    tone(root / "clotho_audio_development" / "rain.wav", seconds=1.2, sr=44100, freq=600)
    rows = ["file_name,keywords,sound_id,sound_link,start_end_samples,manufacturer,license",
            ' Ambience Birds.wav,Ambience;outside;OWI;Birds;night,327673,'
            'https://freesound.org/people/Juan_Merie_Venter/sounds/327673,"[11162624, 11932169]",'
            'Juan_Merie_Venter,http://creativecommons.org/licenses/by-nc/3.0/',
            "rain.wav,rain;water,1234,https://freesound.org/people/x/sounds/1234,,x,"
            "http://creativecommons.org/publicdomain/zero/1.0/"]
    (root / "clotho_metadata_development.csv").write_bytes(("\r\n".join(rows) + "\r\n").encode())
    (root / "dcase_test.csv").write_bytes(("\ufefffile_name;start_end_samples;manufacturer;license\n"
                                           "rain.wav;[3584, 1325506];ceejay;"
                                           "http://creativecommons.org/publicdomain/zero/1.0/\n").encode())
    return {"space_name": " Ambience Birds.wav"}


def windowed_index(root: Path) -> dict:
    """A CSV that cuts clips out of long recordings (start/end in seconds), one window past the end."""
    tone(root / "long.wav", seconds=6.0, sr=16000, freq=300)
    (root / "index.tsv").write_text("file\tstart\tend\tlabel\n"
                                    "long.wav\t0.5\t2.0\tintro\n"
                                    "long.wav\t3.0\t5.5\tverse\n"
                                    "long.wav\t5.0\t9.0\toutro\n")
    return {}


PACK_README = """Sound pack downloaded from Freesound
----------------------------------------

This pack of sounds contains sounds by the following user:
 - akshaylaya ( https://freesound.org/people/akshaylaya/ )

You can find this pack online at: https://freesound.org/people/akshaylaya/packs/14157/

License details
---------------

Attribution Noncommercial: http://creativecommons.org/licenses/by-nc/3.0/


Sounds in this pack
-------------------

  * 224031__akshaylaya__thom-b-002.wav
    * url: https://freesound.org/s/224031/
    * license: Attribution Noncommercial
  * 224030__akshaylaya__bheem-b-001.wav
    * url: https://freesound.org/s/224030/
    * license: Attribution Noncommercial
  * 224029__akshaylaya__cha-b-000.wav
    * url: https://freesound.org/s/224029/
    * license: Creative Commons 0
"""


def freesound_pack(root: Path) -> dict:
    folder = root / "mridangam_stroke_1.5" / "B"  # the tonic is only in the folder name
    folder.mkdir(parents=True)
    (folder / "_readme_and_license.txt").write_text(PACK_README)
    tone(folder / "224030__akshaylaya__bheem-b-001.wav", seconds=0.8, sr=44100)
    tone(folder / "224029__akshaylaya__cha-b-000.wav", seconds=0.8, sr=44100, freq=600)
    tone(folder / "224099__akshaylaya__extra-b-9.wav", seconds=0.8, sr=44100, freq=700)  # not in the readme
    (folder / "._224030__akshaylaya__bheem-b-001.wav").write_bytes(b"\x00\x05\x16\x07 AppleDouble junk")
    return {"clips": {"pack:224030": "http://creativecommons.org/licenses/by-nc/3.0/",
                      "pack:224029": "Creative Commons 0",
                      "pack:224099": "http://creativecommons.org/licenses/by-nc/3.0/"},
            "rejects": {"pack:224031": "missing_audio"}}


def _low(mbid: str, key: str, scale: str, bpm: float, extra_tags: dict | None = None) -> dict:
    return {"lowlevel": {"average_loudness": 0.9}, "rhythm": {"bpm": bpm},
            "tonal": {"key_key": key, "key_scale": scale, "key_strength": 0.7},
            "metadata": {"audio_properties": {"codec": "flac", "bit_rate": 0},
                         "tags": {"title": ["Soul Love"], "artist": ["David Bowie"], "album": ["Ziggy"],
                                  "musicbrainz_recordingid": [mbid], "musicbrainz album type": ["album"],
                                  **(extra_tags or {})}}}


def _tar(path: Path, members: dict[str, bytes], compress: str) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    path.write_bytes(bz2.compress(raw) if compress == "bz2" else zstandard.ZstdCompressor().compress(raw))


def acousticbrainz(root: Path) -> dict:
    """Documents in every shape, plus audio joined by MBID tags (FLAC, MP3/ID3, OGG) or a mapping CSV."""
    docs = root / "docs"
    (docs / "lowlevel").mkdir(parents=True)
    (docs / "highlevel").mkdir()
    (docs / "api").mkdir()
    (docs / "mediaeval" / "be").mkdir(parents=True)
    m0, m1, m2, m3, m4, m5 = MBIDS
    rg = {"musicbrainz_releasegroupid": ["6c8a5a3c-0000-4000-8000-000000000001"]}
    (docs / "lowlevel" / f"{m0}.json").write_text(json.dumps(_low(m0, "D", "major", 139.9, rg)))
    (docs / "highlevel" / f"{m0}_highlevel.json").write_text(json.dumps({"highlevel": {
        "genre_rosamerica": {"value": "cla", "probability": 0.66},
        "genre_tzanetakis": {"value": "jaz", "probability": 0.31},
        "mood_relaxed": {"value": "relaxed", "probability": 1.0},
        "mood_happy": {"value": "not_happy", "probability": 0.94}}, "metadata": {}}))
    (docs / "highlevel" / f"{m1}_highlevel_models.json").write_text(json.dumps({  # flat models dict
        "genre_rosamerica": {"value": "roc", "probability": 0.8, "all": {"roc": 0.8}}}))
    # the bulk API shape: {mbid: {"0": document}} (a subset of features, read first; later documents fill in)
    (docs / "api" / "bulk.json").write_text(json.dumps({m1: {"0": {"lowlevel": {"average_loudness": 0.1},
                                                                    "metadata": {"tags": {}}}}}))
    (docs / "lowlevel" / f"{m1}.json").write_text(json.dumps(_low(m1, "A#", "minor", 146.7)))
    (docs / "mediaeval" / "be" / f"{m2}.json").write_text(json.dumps(_low(m2, "Eb", "major", 90.0)))
    (docs / "mediaeval" / "be" / "._.DS_Store").write_bytes(b"junk")
    (docs / "broken.json").write_text("{not json")
    _tar(docs / "features-train-01.tar.bz2", {
        "train/._.DS_Store": b"junk", "train/.DS_Store": b"junk",
        f"train/01/{m3}.json": json.dumps(_low(m3, "C", "minor", 120.0)).encode()}, "bz2")
    _tar(docs / "features-validation-01.tar.zst", {
        f"validation/01/{m4}.json": json.dumps(_low(m4, "F#", "major", 100.0)).encode(),
        "__MACOSX/validation/01/._x.json": b"junk"}, "zst")
    tsv = ("recordingmbid\treleasegroupmbid\tgenre1\tgenre2\tgenre3\tgenre4\n"
           f"{m2}\tfa7475c1-78a3-31e3-8b27-ca4fef89ba12\tstage & screen\tstage & screen---film music\t\t\n"
           f"{m3}\ta3fb800d-a878-3406-8b62-d2b84cfba36e\tpop/rock\t\t\t\n"
           "not-an-mbid\tx\trock\t\t\t\n")
    (root / "genres.tsv").write_text(tsv)
    (root / "dataset.csv").write_bytes(("\ufeff" + f"{m4},róck music\n" "description,a datasét\n"
                                        f"{m0},Class #1\n" "bé686320-8057-4ca2-b484-e01434a3a2b1,rock\n").encode())

    import mutagen.flac
    import mutagen.oggvorbis
    from mutagen.id3 import ID3, TIT2, UFID

    audio = root / "audio"
    f = mutagen.flac.FLAC(tone(audio / "bowie.flac", sr=44100))
    f["MUSICBRAINZ_TRACKID"] = m0
    f.save()
    tone(audio / "wintory.mp3", sr=44100, fmt="MP3", subtype="MPEG_LAYER_III")
    tags = ID3()
    tags.add(UFID(owner="http://musicbrainz.org", data=m1.encode()))
    tags.add(TIT2(encoding=3, text="Nascence"))
    tags.save(audio / "wintory.mp3")
    o = mutagen.oggvorbis.OggVorbis(tone(audio / "film.ogg", sr=22050))
    o["musicbrainz_trackid"] = m2.upper()
    o.save()
    tone(audio / "mapped.wav", sr=22050, freq=550)  # joined by the mapping CSV
    tone(audio / "untagged.wav", sr=22050, freq=660)
    o = mutagen.oggvorbis.OggVorbis(tone(audio / "lonely.ogg", sr=22050, freq=700))
    o["musicbrainz_trackid"] = m5  # valid id, no document
    o.save()
    o = mutagen.oggvorbis.OggVorbis(tone(audio / "badid.ogg", sr=22050, freq=720))
    o["musicbrainz_trackid"] = "bé686320-8057-4ca2-b484-e01434a3a2b1"
    o.save()
    (root / "mapping.csv").write_text(f"mbid,file\n{m3},mapped.wav\n")
    return {
        "clips": {f"ab:{m0}": {"key": {"tonic": "D", "mode": "major"}, "genre": "classical"},
                  f"ab:{m1}": {"key": {"tonic": "Bb", "mode": "minor"}, "genre": "rock"},
                  f"ab:{m2}": {"key": {"tonic": "Eb", "mode": "major"}},
                  f"ab:{m3}": {"key": {"tonic": "C", "mode": "minor"}}},
        "rejects": {"ab:untagged.wav": "no_mbid", "ab:badid.ogg": "bad_mbid", f"ab:{m5}": "no_acousticbrainz_document",
                    f"ab:{m4}": "no_audio", "ab:broken.json": "bad_acousticbrainz", "ab:not-an-mbid": "bad_mbid",
                    "ab:bé686320-8057-4ca2-b484-e01434a3a2b1": "bad_mbid"},
    }


def folder(root: Path) -> dict:
    import mutagen.flac

    tone(root / "jazz" / "miles" / "so what.wav", sr=22050)
    f = mutagen.flac.FLAC(tone(root / "rock" / "bowie" / "starman.flac", sr=22050, freq=500))
    f["ARTIST"] = "David Bowie"
    f["ALBUM"] = "Ziggy Stardust"
    f["GENRE"] = "Glam"
    f.save()
    tone(root / "loose.wav", sr=22050, freq=600)  # does not match the pattern
    (root / "labels.csv").write_text("file,tags,mood\njazz/miles/so what.wav,trumpet;cool,calm\n")
    return {}

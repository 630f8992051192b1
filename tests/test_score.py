"""Rendered scores: the audio and the labels are measured, not trusted.

Scores are written by the tests (MIDI with pretty_midi, ABC and MusicXML as text) or taken from the
music21 corpus the package ships; nothing is downloaded.
"""

from __future__ import annotations

import io
import json
import re
import shutil
from collections import Counter
from pathlib import Path

import librosa
import numpy as np
import pretty_midi
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from mixtape.dataset.verify import verify
from mixtape.labels import TONICS
from mixtape.pipelines.build import BuildError, RunnerConfig, build
from mixtape.records import Clip, Reject
from mixtape.sources.registry import list_source
from mixtape.sources.score.analysis import chord_label
from mixtape.sources.score.formats import ScoreError, read_performance
from mixtape.sources.score.recipe import ScoreSettings, realise, render_recipe
from mixtape.sources.score.synth import encode_render, open_soundfont, synthesise
from mixtape.spec import parse_spec
from tests import documentation

RATE = 16000
SCALE_ABC = b"""%abc-2.1
X:1
T:Scale one
M:4/4
L:1/4
Q:1/4=120
K:C
CDEF|GABc|]
X:2
T:Scale two
M:3/4
L:1/4
K:G
GAB|cde|]
X:3
T:Arpeggio
M:4/4
L:1/4
K:Am
A,CEA|ecA,2|]
"""
REST_ONLY_XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<score-partwise version="3.1"><part-list><score-part id="P1"><part-name>Voice</part-name></score-part></part-list>
<part id="P1"><measure number="1"><attributes><divisions>1</divisions><time><beats>4</beats><beat-type>4</beat-type>
</time></attributes><note><rest/><duration>4</duration><type>whole</type></note></measure></part></score-partwise>
"""


def midi_bytes(notes: list[tuple[float, float, int]], program: int = 0, tempo: float = 120.0, drum: bool = False,
               key_number: int | None = None) -> bytes:
    pm = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    inst = pretty_midi.Instrument(program=program, is_drum=drum, name="lead")
    inst.notes = [pretty_midi.Note(velocity=100, pitch=p, start=s, end=e) for s, e, p in notes]
    pm.instruments.append(inst)
    if key_number is not None:
        pm.key_signature_changes.append(pretty_midi.KeySignature(key_number, 0.0))
    buf = io.BytesIO()
    pm.write(buf)
    return buf.getvalue()


def settings(**options) -> ScoreSettings:
    spec = parse_spec({"name": "s", "seed": 11, "sources": [{"kind": "score", "path": "x", **options}]})
    return ScoreSettings.of(spec.sources[0], spec.seed, RATE, 1)


def decoded(audio: bytes) -> np.ndarray:
    x, sr = sf.read(io.BytesIO(audio), dtype="float32", always_2d=True)
    assert sr == RATE
    return x.mean(axis=1)


def f0(x: np.ndarray, sr: int) -> float:
    """Fundamental by the harmonic product spectrum of a steady stretch."""
    seg = x[sr // 4: sr // 4 + 16384]
    spec = np.abs(np.fft.rfft(seg * np.hanning(len(seg)), 8 * len(seg)))
    freqs = np.fft.rfftfreq(8 * len(seg), 1 / sr)
    hps = spec.copy()
    for h in (2, 3):
        hps[: len(spec[::h])] *= spec[::h]
    band = (freqs > 60) & (freqs < 2000)
    return float(freqs[band][np.argmax(hps[band])])


@pytest.mark.parametrize("program", [0, 40, 42, 73])
def test_an_a4_renders_at_440_hz(program):
    recipe, labels, audio, _ = realise("score:a4.mid", midi_bytes([(0.0, 2.0, 69)], program=program),
                                       {"format": "midi", "tune": 0}, settings())
    assert abs(f0(decoded(audio), RATE) - 440.0) < 4.4
    assert recipe["programs"] == [program] and labels["extra"]["score"]["parts"][0]["program"] == program


def test_the_known_chorale_gets_its_known_key():
    from music21 import corpus

    data = Path(corpus.getWork("bach/bwv66.6")).read_bytes()
    _, labels, _, _ = realise("score:bach/bwv66.6.mxl", data, {"format": "mxl", "tune": 0}, settings())
    assert labels["key"] == {"tonic": "F#", "mode": "minor"}
    assert labels["extra"]["score"]["key_signature"] == {"sharps": 3, "tonic": "F#", "mode": "minor"}
    assert labels["classes"]["meter"] == "4/4" and labels["tempo"] == 96.0  # the file's own tempo mark
    assert labels["extra"]["score"]["tempo_source"] == "score"
    assert [p["name"] for p in labels["extra"]["score"]["parts"]] == ["Soprano", "Alto", "Tenor", "Bass"]


def test_a_drawn_tempo_is_exact_and_the_onsets_keep_it():
    """Quarter notes written at 120 BPM, rendered at a tempo drawn from [90, 90]: onsets every 60/90 s."""
    beats = [(i * 0.5, i * 0.5 + 0.2, 72) for i in range(16)]  # at 120 BPM a quarter is 0.5 s
    recipe, labels, audio, _perf = realise("score:beat.mid", midi_bytes(beats, program=0),
                                          {"format": "midi", "tune": 0}, settings(tempo=[90, 90]))
    assert recipe["tempo"] == 90.0 and labels["tempo"] == 90.0
    assert labels["extra"]["score"]["tempo_source"] == "drawn"
    x = decoded(audio)
    onsets = librosa.onset.onset_detect(y=x, sr=RATE, units="time", hop_length=128, backtrack=False)
    ioi = float(np.median(np.diff(onsets)))
    assert abs(60.0 / ioi - 90.0) / 90.0 < 0.02, onsets
    notes = labels["notes"]
    assert [round(n["start"], 6) for n in notes] == [round(i * 60 / 90, 6) for i in range(16)]
    for n in notes[1:]:  # every labelled onset has an audio onset within 40 ms (one at 0 s has no attack to see)
        assert np.min(np.abs(onsets - n["start"])) < 0.04


def test_chords_are_labelled_where_they_sound():
    """Block chords C, F/A, G7, Am: the labels' times are the notes' times, and each segment's chroma
    peaks on the labelled root."""
    blocks = [(0.0, [60, 64, 67], "C:maj"), (1.0, [57, 60, 65], "F:maj/3"), (2.0, [55, 59, 62, 65], "G:7"),
              (3.0, [57, 60, 64], "A:min")]
    notes = [(t, t + 1.0, p) for t, chord, _ in blocks for p in chord]
    _, labels, audio, _ = realise("score:chords.mid", midi_bytes(notes, program=0), {"format": "midi", "tune": 0},
                                  settings())
    assert [(c["start"], c["end"], c["label"]) for c in labels["chords"]] == [
        (float(t), float(t + 1), label) for t, _, label in blocks]
    x = decoded(audio)
    chroma = librosa.feature.chroma_cqt(y=x, sr=RATE, hop_length=512)
    for t, _, label in blocks:
        a, b = int((t + 0.2) * RATE / 512), int((t + 0.8) * RATE / 512)
        strongest = int(np.argmax(chroma[:, a:b].mean(axis=1)))
        root = TONICS.index(label.split(":")[0])
        assert strongest in {root, (root + 3) % 12, (root + 4) % 12, (root + 7) % 12}
    assert chord_label([]) == "N" and chord_label([60, 61]) == "X"


def test_renders_are_pure_whatever_was_rendered_before():
    """The same recipe after another piece with other programs gives the same bytes (a reused synthesiser
    instance did not), and equal audio encodes to equal bytes (libsndfile's float WAV PEAK chunk did not)."""
    st = settings(programs={"*": [0, 40, 73]})
    a = midi_bytes([(0.0, 1.0, 60), (0.5, 2.0, 67)], program=0)
    b = midi_bytes([(0.0, 3.0, 48), (1.0, 2.5, 76)], program=19)
    recipe, _, first, _ = realise("score:a.mid", a, {"format": "midi", "tune": 0}, st)
    realise("score:b.mid", b, {"format": "midi", "tune": 0}, st)
    assert render_recipe(a, recipe, st.font) == first
    perf = read_performance(a, "midi")
    audio = synthesise(perf, [0], RATE, st.font)
    assert encode_render(audio, RATE) == encode_render(audio.copy(), RATE)


def test_instrumentation_is_drawn_per_render_from_the_spec_lists_and_recorded():
    st = settings(programs={"lead": ["flute", "oboe", "violin"]})
    data = midi_bytes([(0.0, 1.0, 69)], program=0)

    def draws(piece: str) -> list[int]:
        return [realise(f"{piece}~{k}", data, {"format": "midi", "tune": 0, "render": k}, st, piece)[0]["programs"][0]
                for k in range(4)]

    first = draws("score:x")
    assert sorted(first[:3]) == [40, 68, 73]  # three renders, three timbres: never a repeat while the list allows
    assert first[3] in {40, 68, 73}  # a fourth must repeat one
    assert draws("score:x") == first  # keyed by the piece: the same choice every run
    assert any(draws(f"score:y{i}") != first for i in range(3))  # other pieces draw their own order
    assert realise("score:k", data, {"format": "midi", "tune": 0}, settings())[0]["programs"] == [0]  # keep


@pytest.mark.parametrize("data, fmt, reason", [
    (b"MThd\x00\x00\x00\x06\x00\x01\x00\x02\x01\xe0MTrk\x00\x00\xff\xff", "midi", "bad_score"),
    (b"", "midi", "empty_score"),
    (b"   \n", "abc", "empty_score"),
    (REST_ONLY_XML, "musicxml", "no_notes"),
    (b"<score-partwise><part", "musicxml", "bad_score"),
    (b"PK\x03\x04 not really a zip", "mxl", "bad_score"),
])
def test_broken_scores_are_rejects_with_their_reason(data, fmt, reason):
    with pytest.raises(ScoreError) as e:
        realise("score:bad", data, {"format": fmt, "tune": 0}, settings())
    assert e.value.reason == reason


def test_drum_only_and_six_hour_scores_are_rejected():
    drums = midi_bytes([(i * 0.25, i * 0.25 + 0.1, 36) for i in range(8)], drum=True)
    with pytest.raises(ScoreError) as e:
        realise("score:drums.mid", drums, {"format": "midi", "tune": 0}, settings())
    assert e.value.reason == "drums_only"
    long = midi_bytes([(0.0, 1.0, 60), (6 * 3600.0, 6 * 3600.0 + 1, 62)])
    with pytest.raises(ScoreError) as e:
        realise("score:long.mid", long, {"format": "midi", "tune": 0}, settings())
    assert e.value.reason == "too_long" and "21601 s" in e.value.detail


def test_an_unreadable_soundfont_is_one_clear_error(tmp_path):
    from mixtape.cli import main

    (tmp_path / "scores").mkdir()
    (tmp_path / "scores" / "a.mid").write_bytes(midi_bytes([(0.0, 1.0, 60)]))
    (tmp_path / "broken.sf2").write_bytes(b"RIFX not a soundfont")
    (tmp_path / "spec.yaml").write_text("name: s\nseed: 1\nsources: [{kind: score, path: scores, "
                                        "soundfont: broken.sf2}]\n")
    assert main(["build", str(tmp_path / "spec.yaml"), "--out", str(tmp_path / "out")]) == 2
    with pytest.raises(BuildError, match=r"sources\[0\].soundfont: soundfont .*broken.sf2 is not a SoundFont"):
        build(parse_spec({"name": "s", "seed": 1, "sources": [
            {"kind": "score", "path": str(tmp_path / "scores"), "soundfont": str(tmp_path / "broken.sf2")}]}),
            str(tmp_path / "out"))
    with pytest.raises(BuildError, match="music21's corpus has no collection 'nosuch'"):
        build(parse_spec({"name": "s", "seed": 1, "sources": [{"kind": "score", "corpus": ["nosuch"]}]}),
              str(tmp_path / "out"))


def test_a_custom_soundfont_is_used_and_recorded(tmp_path):
    from mixtape.sources.score.synth import builtin_soundfont_path

    copy = tmp_path / "My Font.sf2"
    shutil.copyfile(builtin_soundfont_path(), copy)
    st = settings(soundfont=str(copy), soundfont_licence="CC-BY 4.0, me")
    assert st.font.name == "My Font.sf2" and st.font.sha256 == open_soundfont(None).sha256
    assert st.font_licence == "CC-BY 4.0, me"


# ----------------------------------------------------------------------------------------- in a build


@pytest.fixture(scope="module")
def score_collection(tmp_path_factory) -> Path:
    """A folder in the Lakh MIDI layout (nested hash folders), an ABC file of three tunes, a broken MIDI file
    and a stray WAV, plus a spec that also reads three chorales from music21's corpus."""
    root = tmp_path_factory.mktemp("scores")
    lmd = root / "midi" / "lmd_full" / "0"
    lmd.mkdir(parents=True)
    major = (0, 2, 4, 5, 7, 9, 11)
    (lmd / "0a1b2c.mid").write_bytes(midi_bytes([(i * 0.4, i * 0.4 + 0.35, 62 + major[i % 7]) for i in range(20)],
                                                program=0, tempo=150))
    (lmd / "0d4e5f.mid").write_bytes(midi_bytes([(i * 0.3, i * 0.3 + 0.6, 45 + major[(i * 2) % 7]) for i in range(24)],
                                                program=32))
    (root / "midi" / "broken.mid").write_bytes(b"MThd\x00\x00\x00\x06garbage")
    (root / "midi" / "tunes.abc").write_bytes(SCALE_ABC)
    (root / "midi" / "take.wav").write_bytes(b"RIFF")
    (root / "spec.yaml").write_text(
        "name: scores\nseed: 3\n"
        "sources:\n"
        "  - {kind: score, name: bach, corpus: [bach], limit: 3, renders: 2,\n"
        "     programs: {soprano: [flute, oboe], alto: [clarinet], tenor: [viola], bass: [cello, bassoon]}}\n"
        "  - {kind: score, name: lmd, path: midi, tempo: [100, 140], genre: pop}\n"
        "audio: {sample_rate: 8000, channels: 1, format: flac}\n"
        "snippets: {duration: 2.0, hop: 2.0}\n"
        "splits: {group_by: source_id, fractions: {train: 0.6, valid: 0.2, test: 0.2}}\n"
        "augment: {variants: 1, chain: [{op: pitch_shift, p: 1.0, semitones: [-2, 2]},"
        " {op: time_stretch, p: 0.5, rate: [0.9, 1.1]}]}\n"
        "shards: {max_samples: 16}\n")
    return root


def test_listing_gives_one_clip_per_tune_and_render_and_accounts_for_every_file(score_collection):
    from mixtape.spec import load_spec

    spec = load_spec(score_collection / "spec.yaml")
    bach = list(list_source(spec.sources[0]))
    assert len(bach) == 6 and all(isinstance(c, Clip) for c in bach)
    assert {c.source_id for c in bach} == {c.clip_id.split(":", 1)[1].rsplit("~", 1)[0] for c in bach}
    assert bach[0].labels["classes"] == {"collection": "bach", "composer": "Johann Sebastian Bach", "genre": "baroque"}
    lmd = list(list_source(spec.sources[1]))
    ids = sorted(x.clip_id for x in lmd)
    assert ids == ["lmd:broken.mid", "lmd:lmd_full/0/0a1b2c.mid", "lmd:lmd_full/0/0d4e5f.mid", "lmd:take.wav",
                   "lmd:tunes.abc#1", "lmd:tunes.abc#2", "lmd:tunes.abc#3"]
    stray = next(x for x in lmd if x.clip_id == "lmd:take.wav")
    assert isinstance(stray, Reject) and stray.reason == "not_selected"


@pytest.fixture(scope="module")
def score_build(score_collection, tmp_path_factory) -> tuple[Path, dict]:
    """(folder, card) of the score collection built in memory."""
    from mixtape.spec import load_spec

    out = tmp_path_factory.mktemp("score-build") / "a"
    return out, build(load_spec(score_collection / "spec.yaml"), str(out), RunnerConfig(workers=1))


def readme_queries() -> list[str]:
    block = re.search(r"```sql\n(.*?)```", documentation.text(), flags=re.S)
    assert block, "the docs have their DuckDB examples in a sql block"
    lines = [line for line in block.group(1).splitlines() if not line.startswith("--")]
    return [q.strip() for q in " ".join(lines).split(";") if q.strip()]


def test_the_readmes_index_columns_and_duckdb_queries_hold_on_a_build(score_build):
    import duckdb

    from mixtape.dataset.index import INDEX_SCHEMA, class_map, read_index, recorded_steps
    from mixtape.licences import licence_family

    columns = documentation.text().split("| column | type | holds |\n", 1)[1].split("\n\n", 1)[0]
    table = re.findall(r"^\| `(\w+)` \| `([^`]+)` \|", columns, flags=re.M)
    assert table == [(f.name, str(f.type)) for f in INDEX_SCHEMA]  # every column, its type, in order
    out, _card = score_build
    rows = read_index(str(out / "index.parquet"))
    tag = Counter(t for r in rows for t in r["tags"]).most_common(1)[0][0]
    queries = readme_queries()
    assert len(queries) == 5
    got = [duckdb.sql(q.replace("DIR", str(out)).replace("'piano'", f"'{tag}'")).fetchall() for q in queries]
    assert dict(got[0]) == Counter(r["split"] for r in rows if tag in r["tags"])
    genres = Counter(class_map(r["classes"]).get("genre") for r in rows)
    assert dict(got[1]) == genres and {"baroque", "pop"} <= set(genres)
    shifted = {(r["sample_key"], r["musical_key"], s["semitones"]) for r in rows
               for s in recorded_steps(r["augment"]) if s["op"] == "pitch_shift"}
    assert set(got[2]) == shifted and shifted
    assert dict(got[3]) == Counter(op for r in rows for op in r["augment_ops"])
    families: dict[str, set[str]] = {}
    for r in rows:
        families.setdefault(licence_family(r["licence"]), set()).add(r["clip_id"])
    assert dict(got[4]) == {f: len(c) for f, c in families.items()}


@pytest.mark.slow
def test_a_score_build_is_the_same_bytes_on_every_runner_and_verifies(score_collection, score_build, tmp_path):
    from mixtape.spec import load_spec

    spec = load_spec(score_collection / "spec.yaml")
    a, card = score_build
    b = tmp_path / "b"
    build(spec, str(b), RunnerConfig(workers=2))
    files = sorted(p.name for p in a.iterdir() if p.is_file() and p.name != "build.json")
    assert files == sorted(p.name for p in b.iterdir() if p.is_file() and p.name != "build.json")
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)

    acc = card["accounting"]
    assert acc["clips_in"] == 13 and acc["clips_used"] == 11
    rejects = {r["clip_id"]: r["reason"] for r in pq.read_table(a / "rejects.parquet").to_pylist()}
    assert rejects == {"lmd:broken.mid": "bad_score", "lmd:take.wav": "not_selected"}
    assert card["versions"]["synthesiser"].startswith("tinysoundfont ")
    assert card["versions"]["soundfont:TimGM6mb"] == open_soundfont(None).sha256
    credits = {r["clip_id"]: r.get("credits", "") for r in card["attribution"]}
    assert "TimGM6mb by Tim Brechbill" in credits["bach:bach/bwv1.6.mxl~1"]

    index = pq.read_table(a / "index.parquet").to_pylist()
    shifted = [r for r in index if "pitch_shift" in r["augment_ops"]]
    assert shifted and all(r["musical_key"] for r in shifted)
    groups: dict[str, set[str]] = {}
    for r in index:
        piece = r["clip_id"].rsplit("~", 1)[0]
        groups.setdefault(piece, set()).add(r["split"])
    assert all(len(s) == 1 for s in groups.values())  # both renders of a chorale stay in one split
    programs = {}
    for r in index:
        if r["clip_id"].startswith("bach:"):
            programs.setdefault(r["clip_id"], set()).add(r["variant"])
    assert len(programs) == 6

    # the labels in the shards are the score's, moved by the augmentation that made the sample
    import tarfile
    name = card["splits"]["train"]["shards"][0]["name"]
    with tarfile.open(a / name) as tar:
        docs = [json.loads(tar.extractfile(m).read()) for m in tar if m.name.endswith(".json")]
    for doc in docs:
        labels, window = doc["labels"], doc["window"]
        assert labels["notes"] and all(0 <= n["start"] <= n["end"] <= window["duration_ms"] / 1000 + 1e-6
                                       for n in labels["notes"])
        shift = next((op for op in doc["augment"] if op["op"] == "pitch_shift"), None)
        if shift is not None and float(shift["semitones"]).is_integer():
            assert labels["key"] is not None and "stale" not in labels
    assert verify(str(a), rerender_fraction=1.0).ok

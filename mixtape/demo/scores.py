"""The demo's music: real compositions from the corpus music21 ships, rendered through the built-in
General MIDI SoundFont, with labels read from the scores.

Most pieces are read by the build itself (``kind: score`` sources in the demo spec). Folk tunes from
O'Neill's *Music of Ireland* (1850) are rendered here, ahead of the build, into a Freesound-style dump with
AcousticBrainz-style documents that carry each tune's analysed key and its tempo, so every demo build also
runs the dump and AcousticBrainz paths on real music; two broken files join the dump so the rejects path
runs too. Everything is a pure function of the corpus, the SoundFont and the seed.
"""

from __future__ import annotations

import hashlib
import io
import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from mixtape.demo.collection import write_broken_clips
from mixtape.sources.score.formats import abc_tunes
from mixtape.sources.score.recipe import CORPUS_LICENCE, ScoreSettings, realise
from mixtape.spec import corpus_root, parse_spec

#: The folk collection rendered into the dump, and how (the dump is a recording collection: its
#: instrumentation and tempo are drawn once, here, and the dump's audio is what the build sees).
DUMP_COLLECTION = "oneills1850"
DUMP_SOURCE = {"kind": "score", "corpus": [DUMP_COLLECTION], "excerpt_seconds": 30, "tempo": [96, 132],
               "programs": {"*": ["violin", "flute", "accordion", "acoustic_guitar_(nylon)", "harmonica",
                                  "pan_flute"]}}
DUMP_RATE = 22050
#: Shares of the demo's pieces per part (the rest are the dump's folk tunes).
SHARES = {"chorales": 0.45, "renaissance": 0.15, "medieval": 0.10}

SPEC_TEMPLATE = """\
# The demo dataset: a worked example of a mixtape spec. Paths are relative to this file.
name: mixtape-demo
version: 2.0.0                   # the dataset's semantic version, recorded in the card
seed: 1234                       # seeds every random choice: same spec + inputs => same bytes

sources:
  - kind: score                  # symbolic music rendered through a SoundFont (the built-in TimGM6mb)
    name: chorales
    corpus: [bach]               # collections of the corpus music21 ships
    limit: {chorales}                   # the first N pieces of each collection
    excerpt_seconds: 30          # render each piece's first 30 s (at its rendered tempo)
    programs:                    # instruments drawn per render from these lists (recorded in the recipe)
      soprano: [flute, oboe, violin, trumpet]
      alto: [clarinet, viola, english_horn]
      tenor: [cello, french_horn, bassoon]
      bass: [contrabass, tuba, bassoon]
  - kind: score
    name: renaissance
    corpus: [palestrina]
    limit: {renaissance}
    excerpt_seconds: 30
    tempo: [70, 100]             # quarter notes per minute, drawn per clip (the score has no tempo mark)
    programs: {{'*': [church_organ, recorder, choir_aahs, string_ensemble_1]}}
  - kind: score
    name: medieval
    corpus: [trecento]
    limit: {medieval}
    excerpt_seconds: 30
    programs: {{'*': [recorder, harpsichord, acoustic_guitar_(nylon), church_organ]}}
  - kind: freesound_dump         # metadata.jsonl (Freesound API fields) + audio/<id>.<ext>: folk tunes
    path: collection/freesound   # rendered by the demo (see mixtape/demo/scores.py)
    acousticbrainz: ../acousticbrainz   # (relative to path) key, tempo, genre for clips with an `mbid`

audio:
  sample_rate: 16000             # every sample is resampled to this rate
  channels: 1                    # 1 = downmix to mono, 2 = stereo
  format: flac                   # flac | wav

snippets:
  duration: 3.0                  # seconds per sample
  hop: 3.0                       # seconds between window starts (< duration overlaps)
  min_rms_db: -60                # windows quieter than this are skipped
  max_per_clip: 6                # at most 6 windows per piece, spread over it

splits:
  group_by: source_id            # one piece (all its renders) never spans splits
  fractions: {{train: 0.7, valid: 0.15, test: 0.15}}

augment:
  variants: 2                    # augmented variants per train snippet, besides the clean original
  keep_original: true
  splits: [train]                # valid / test stay clean
  chain:                         # pitch_shift and time_stretch run first, fused in one pass; labels follow
    - {{op: pitch_shift, p: 0.7, semitones: [-2, 2]}}        # whole semitones: key, chords, notes move with it
    - {{op: time_stretch, p: 0.7, rate: [0.85, 1.15]}}       # tempo label x rate, every time / rate
    - {{op: mix, p: 0.3, snr_db: [3, 12], labels: union}}    # a partner from the same split; tags are unioned
    - {{op: add_noise, p: 0.2, snr_db: [15, 30], colour: [white, pink]}}
    - {{op: gain, p: 0.5, db: [-6, 3]}}

shards:
  max_samples: 64                # ceiling per shard

labels:
  tags: {{min_count: 3}}           # tags seen in fewer clips stay in the JSON but not in the vocabulary
"""


def allocation(pieces: int) -> dict[str, int]:
    """How many pieces each part of the demo takes (at least one each)."""
    out = {name: max(1, round(pieces * share)) for name, share in SHARES.items()}
    out["folk"] = max(1, pieces - sum(out.values()))
    return out


def demo_spec(pieces: int) -> str:
    return SPEC_TEMPLATE.format(**allocation(pieces))


def _settings() -> ScoreSettings:
    spec = parse_spec({"name": "demo-dump", "seed": 1234, "sources": [DUMP_SOURCE]})
    return ScoreSettings.of(spec.sources[0], spec.seed, DUMP_RATE, 2)


def _tunes(root: Path, n: int) -> list[tuple[str, int, bytes]]:
    """(relative path, tune index, file bytes) of the collection's first ``n`` tunes."""
    out: list[tuple[str, int, bytes]] = []
    for path in sorted((root / DUMP_COLLECTION).glob("*.abc")):
        data = path.read_bytes()
        for t in range(len(abc_tunes(data))):
            if len(out) == n:
                return out
            out.append((f"{DUMP_COLLECTION}/{path.name}", t, data))
    return out


def _mbid(sid: int) -> str:
    return str(uuid.UUID(bytes=hashlib.sha256(f"mixtape-demo/mbid/{sid}".encode()).digest()[:16], version=4))


def _ab_documents(labels: dict[str, Any], seconds: float, mbid: str, name: str) -> tuple[dict, dict]:
    key = labels["key"] or {"tonic": "", "mode": ""}
    low = {
        "lowlevel": {"average_loudness": 0.9},
        "rhythm": {"bpm": float(labels["tempo"]), "beats_count": int(seconds * labels["tempo"] / 60)},
        "tonal": {"key_key": key["tonic"], "key_scale": key["mode"],
                  "key_strength": labels["extra"]["score"]["key_strength"]},
        "metadata": {"audio_properties": {"length": seconds, "sample_rate": DUMP_RATE, "codec": "flac",
                                          "bit_rate": 0},
                     "tags": {"file_name": name, "musicbrainz_recordingid": [mbid]},
                     "version": {"essentia": "mixtape demo (labels from the score)", "extractor": "music 1.0"}}}
    high = {"highlevel": {"genre_mixtape": {"value": "folk", "probability": 1.0, "all": {"folk": 1.0}}},
            "metadata": {"version": {"highlevel": {"models_essentia_git_sha": "mixtape demo"}}}}
    return low, high


def write_dump(out: str | Path, tunes: int) -> dict[str, Any]:
    """Render ``tunes`` folk tunes into ``out/freesound`` (a dump) and ``out/acousticbrainz``."""
    out = Path(out)
    dump, ab = out / "freesound", out / "acousticbrainz"
    for d in (dump / "audio", ab / "lowlevel", ab / "highlevel"):
        d.mkdir(parents=True, exist_ok=True)
    settings = _settings()
    records = []
    for i, (rel, tune, data) in enumerate(_tunes(Path(corpus_root()), tunes)):
        sid = 500_000 + i
        piece = f"{rel}#{tune + 1}"
        _, labels, audio, perf = realise(f"demo:{piece}", data, {"format": "abc", "tune": tune}, settings, piece)
        samples, rate = sf.read(io.BytesIO(audio), dtype="float32", always_2d=True)
        name = f"{sid}.flac"
        sf.write(dump / "audio" / name, np.clip(samples, -1, 1), rate, format="FLAC", subtype="PCM_16")
        title = perf.title or piece
        rec: dict[str, Any] = {
            "id": sid, "name": f"{title} (O'Neill's Music of Ireland, 1850)",
            "tags": [*labels["tags"], "folk", "irish", "tune"], "username": "oneills1850",
            "license": CORPUS_LICENCE, "duration": round(samples.shape[0] / rate, 3), "samplerate": rate,
            "channels": samples.shape[1], "type": "flac",
            "pack": f"https://freesound.org/apiv2/packs/{9100 + i // 25}/", "url": "", "geotag": None,
        }
        if i % 5 != 4:  # most tunes have AcousticBrainz-style documents (key, tempo, genre); some do not
            mbid = _mbid(sid)
            rec["mbid"] = mbid
            low, high = _ab_documents(labels, rec["duration"], mbid, name)
            (ab / "lowlevel" / f"{mbid}.json").write_text(json.dumps(low, indent=1) + "\n")
            (ab / "highlevel" / f"{mbid}_highlevel.json").write_text(json.dumps(high, indent=1) + "\n")
        records.append(rec)
    extra, broken = write_broken_clips(dump)
    records += extra
    with open(dump / "metadata.jsonl", "w", encoding="utf-8") as f:
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return {"clips": len(records), "broken": broken, "with_acousticbrainz": sum("mbid" in r for r in records),
            "path": str(out)}

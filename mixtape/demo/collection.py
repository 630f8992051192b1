"""The embedded demo collection: small synthetic music in the Freesound dump layout, from a seed.

Nothing can be downloaded, so the demo makes its own music: four styles with distinct instruments, tempi
and harmony, each clip in a known key at a known tempo, so tags, genre, key and tempo labels are learnable
and pitch/time augmentations visibly matter. Some clips get AcousticBrainz-style documents keyed by a
MusicBrainz-style recording id. Two clips are broken on purpose (one truncated, one silent) so the rejects
path runs in every demo build.
"""

from __future__ import annotations

import io
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from mixtape.hashing import stable_words
from mixtape.labels import TONICS

LICENCES = (
    "http://creativecommons.org/publicdomain/zero/1.0/",
    "http://creativecommons.org/licenses/by/4.0/",
    "http://creativecommons.org/licenses/by-nc/4.0/",
)
UPLOADERS = ("toneweaver", "loopsmith", "quietroom", "basement_tapes", "modular_mara", "harpsi_chris")
FORMATS = (("flac", "FLAC", "PCM_16"), ("wav", "WAV", "PCM_16"), ("ogg", "OGG", "VORBIS"))
RATES = (22050, 44100, 48000)
MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)


@dataclass(frozen=True)
class Style:
    name: str
    genre_code: str  # AcousticBrainz genre_rosamerica value
    tempo: tuple[int, int]
    instruments: tuple[str, ...]  # the harmonic/melodic instruments it may use
    drums: tuple[str, ...]  # kit pieces it uses
    sevenths: bool
    progression_major: tuple[int, ...]
    progression_minor: tuple[int, ...]


STYLES = (
    Style("classical", "cla", (60, 90), ("strings", "piano"), (), False, (0, 3, 4, 0), (0, 5, 3, 4)),
    Style("jazz", "jaz", (100, 140), ("piano", "bass"), ("ride",), True, (1, 4, 0, 0), (1, 4, 0, 5)),
    Style("rock", "roc", (110, 150), ("guitar", "bass"), ("kick", "snare", "hihat"), False,
          (0, 4, 5, 3), (0, 6, 5, 6)),
    Style("electronic", "dan", (120, 130), ("synth", "bass"), ("kick", "hihat", "clap"), False,
          (5, 3, 0, 4), (0, 5, 2, 6)),
)


def midi_hz(note: float) -> float:
    return 440.0 * 2.0 ** ((note - 69) / 12.0)


# ------------------------------------------------------------------------------------------- instruments


def _partials(f0: float, t: np.ndarray, amps: list[float], decay: float, sr: int, inharm: float = 0.0,
              vibrato: float = 0.0) -> np.ndarray:
    out = np.zeros_like(t)
    phase_mod = vibrato * np.sin(2 * np.pi * 5.5 * t) if vibrato else 0.0
    for k, a in enumerate(amps, 1):
        fk = f0 * k * np.sqrt(1 + inharm * k * k)
        if fk >= sr / 2 - 100:
            break
        out += a * np.sin(2 * np.pi * fk * t + k * phase_mod) * np.exp(-t * decay * (1 + 0.3 * k))
    return out


def _envelope(n: int, sr: int, attack: float, release: float) -> np.ndarray:
    env = np.ones(n)
    a = min(n, max(1, int(attack * sr)))
    r = min(n - a, max(1, int(release * sr)))
    env[:a] = np.linspace(0, 1, a)
    if r > 0:
        env[n - r:] *= np.linspace(1, 0, r)
    return env


def instrument_note(name: str, note: float, dur: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    n = max(1, int(dur * sr))
    t = np.arange(n) / sr
    f0 = midi_hz(note)
    if name == "piano":
        x = _partials(f0, t, [1, .5, .3, .2, .12, .08, .05], 2.5, sr, inharm=4e-4)
        x *= _envelope(n, sr, 0.004, 0.05)
    elif name == "strings":
        x = _partials(f0, t, [1 / k for k in range(1, 12)], 0.0, sr, vibrato=0.004)
        x *= _envelope(n, sr, min(0.25, dur / 3), min(0.2, dur / 3))
    elif name == "bass":
        x = _partials(f0, t, [1, .6, .2, .1], 1.8, sr) * _envelope(n, sr, 0.01, 0.04)
    elif name == "guitar":
        x = _partials(f0, t, [1, .8, .7, .5, .45, .3, .25, .2, .15, .1], 1.2, sr, inharm=1e-4)
        x = np.tanh(2.5 * x) * _envelope(n, sr, 0.003, 0.05)
    elif name == "synth":
        x = _partials(f0, t, [1 / k if k % 2 else 0.0 for k in range(1, 16)], 0.4, sr)
        x *= _envelope(n, sr, 0.01, 0.08)
    else:
        raise ValueError(name)
    return x


def drum_hit(name: str, sr: int, rng: np.random.Generator) -> np.ndarray:
    if name == "kick":
        n = int(0.35 * sr)
        t = np.arange(n) / sr
        freq = 50 + 90 * np.exp(-t * 30)
        return np.sin(2 * np.pi * np.cumsum(freq) / sr) * np.exp(-t * 9)
    if name in ("snare", "clap"):
        n = int(0.22 * sr)
        t = np.arange(n) / sr
        noise = rng.standard_normal(n) * np.exp(-t * (22 if name == "snare" else 35))
        body = 0.5 * np.sin(2 * np.pi * 190 * t) * np.exp(-t * 25) if name == "snare" else 0.0
        return 0.6 * noise + body
    # hihat / ride: high-passed noise (first difference) with a short (hihat) or long (ride) tail
    n = int((0.08 if name == "hihat" else 0.5) * sr)
    t = np.arange(n) / sr
    noise = np.diff(rng.standard_normal(n + 1))
    return 0.25 * noise * np.exp(-t * (45 if name == "hihat" else 7))


def _place(track: np.ndarray, sound: np.ndarray, at: int, gain: float) -> None:
    if at >= track.shape[0]:
        return
    m = min(sound.shape[0], track.shape[0] - at)
    track[at:at + m] += gain * sound[:m]


# ------------------------------------------------------------------------------------------- composition


@dataclass(frozen=True)
class ClipPlan:
    index: int
    style: Style
    tonic: int
    mode: str
    bpm: int
    seconds: float
    sample_rate: int
    channels: int
    fmt: tuple[str, str, str]
    instruments: tuple[str, ...]
    uploader: str
    has_ab: bool


def _role(inst: str, instruments: tuple[str, ...]) -> str:
    """bass plays the bass line; strings and guitar play chords; piano plays chords unless another chord
    instrument is there (then the melody); synth plays the melody."""
    if inst == "bass":
        return "bass"
    if inst in ("strings", "guitar"):
        return "chords"
    if inst == "piano":
        return "melody" if any(i in ("strings", "guitar") for i in instruments) else "chords"
    return "melody"


def compose(plan: ClipPlan, rng: np.random.Generator) -> np.ndarray:
    """Render one clip: chords on every bar, a melody or bass line, drums per style; shape (ch, frames)."""
    sr, style = plan.sample_rate, plan.style
    n = int(plan.seconds * sr)
    beat = 60.0 / plan.bpm
    scale = MAJOR if plan.mode == "major" else MINOR
    prog = style.progression_major if plan.mode == "major" else style.progression_minor
    root = 48 + plan.tonic  # C3 + tonic
    tracks = {name: np.zeros(n) for name in (*plan.instruments, "drums")}
    n_bars = int(np.ceil(plan.seconds / (4 * beat)))

    def degree(d: int, octave: int = 0) -> int:
        return root + 12 * (octave + d // 7) + scale[d % 7]

    for bar in range(n_bars):
        chord_deg = prog[bar % len(prog)]
        chord = [degree(chord_deg), degree(chord_deg + 2), degree(chord_deg + 4)]
        if style.sevenths:
            chord.append(degree(chord_deg + 6))
        t0 = bar * 4 * beat
        for inst in plan.instruments:
            if _role(inst, plan.instruments) == "chords":
                # harmony: strings sustain a bar, the others strike on beats 1 and 3
                hits = [0.0] if inst == "strings" else [0.0, 2.0]
                notes = chord if inst != "guitar" else [chord[0], chord[0] + 7, chord[0] + 12]
                dur = 4 * beat if inst == "strings" else 2 * beat
                for h in hits:
                    for note in notes:
                        _place(tracks[inst], instrument_note(inst, note + 12, dur, sr, rng),
                               int((t0 + h * beat) * sr), 0.22)
            elif inst == "bass":
                steps = 4 if style.name == "jazz" else 2
                for s in range(steps):
                    d = chord_deg + (0, 2, 4, 5)[s] if style.name == "jazz" else chord_deg
                    dur = 4 * beat / steps
                    _place(tracks[inst], instrument_note("bass", degree(d, -1), dur, sr, rng),
                           int((t0 + s * dur) * sr), 0.5)
            else:
                # melody: eighth notes walking the scale around the chord tones
                pos = chord_deg + 7
                for s in range(8):
                    if rng.random() < 0.25:
                        continue
                    pos += int(rng.integers(-2, 3))
                    pos = int(np.clip(pos, chord_deg + 4, chord_deg + 14))
                    _place(tracks[inst], instrument_note(inst, degree(pos), beat / 2, sr, rng),
                           int((t0 + s * beat / 2) * sr), 0.3)
        for b in range(4):
            tb = t0 + b * beat
            for piece in style.drums:
                if piece == "kick" and (style.name == "electronic" or b in (0, 2)):
                    _place(tracks["drums"], drum_hit("kick", sr, rng), int(tb * sr), 0.8)
                elif piece in ("snare", "clap") and b in (1, 3):
                    _place(tracks["drums"], drum_hit(piece, sr, rng), int(tb * sr), 0.5)
                elif piece == "hihat":
                    for off in (0.0, 0.5):
                        _place(tracks["drums"], drum_hit("hihat", sr, rng), int((tb + off * beat) * sr), 0.5)
                elif piece == "ride":
                    swing = (0.0, 2 / 3) if b % 2 else (0.0,)
                    for off in swing:
                        _place(tracks["drums"], drum_hit("ride", sr, rng), int((tb + off * beat) * sr), 0.4)

    pans = np.linspace(-0.6, 0.6, len(tracks))
    left, right = np.zeros(n), np.zeros(n)
    for (_, tr), pan in zip(sorted(tracks.items()), pans, strict=True):
        left += tr * np.sqrt((1 - pan) / 2)
        right += tr * np.sqrt((1 + pan) / 2)
    stereo = np.stack([left, right])
    stereo *= 0.7 / max(1e-9, np.abs(stereo).max())
    stereo *= _envelope(n, sr, 0.01, 0.05)
    out = stereo if plan.channels == 2 else stereo.mean(axis=0, keepdims=True)
    return out.astype(np.float32)


def _ogg_crc_table() -> list[int]:
    table = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else (r << 1)
        table.append(r & 0xFFFFFFFF)
    return table


_OGG_CRC = _ogg_crc_table()


def set_ogg_serial(data: bytes, serial: int) -> bytes:
    """Give every page of a single-stream Ogg file the same fixed serial number, recomputing page CRCs.

    libsndfile draws the stream serial at random, so without this two generations of the same collection
    would differ in their OGG bytes (and in every checksum derived from them).
    """
    out = bytearray(data)
    pos = 0
    while pos + 27 <= len(out) and out[pos:pos + 4] == b"OggS":
        n_segments = out[pos + 26]
        size = 27 + n_segments + sum(out[pos + 27:pos + 27 + n_segments])
        out[pos + 14:pos + 18] = serial.to_bytes(4, "little")
        out[pos + 22:pos + 26] = b"\0\0\0\0"
        crc = 0
        for b in out[pos:pos + size]:
            crc = ((crc << 8) & 0xFFFFFFFF) ^ _OGG_CRC[((crc >> 24) ^ b) & 0xFF]
        out[pos + 22:pos + 26] = crc.to_bytes(4, "little")
        pos += size
    return bytes(out)


def _write_audio(path: Path, audio: np.ndarray, sr: int, container: str, subtype: str, serial: int) -> None:
    buf = io.BytesIO()
    sf.write(buf, audio.T, sr, format=container, subtype=subtype)
    data = buf.getvalue()
    path.write_bytes(set_ogg_serial(data, serial) if container == "OGG" else data)


def _clip_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, *stable_words(f"demo/{index}")])))


def plan_collection(seed: int, n_clips: int, min_seconds: float, max_seconds: float) -> list[ClipPlan]:
    plans = []
    for i in range(n_clips):
        rng = _clip_rng(seed, i)
        style = STYLES[i % len(STYLES)]
        instruments = list(style.instruments)
        extra = {"classical": "piano", "jazz": "synth", "rock": "piano", "electronic": "strings"}[style.name]
        if rng.random() < 0.35:
            instruments.insert(0, extra)
        plans.append(ClipPlan(
            index=i, style=style, tonic=int(rng.integers(0, 12)), mode=("major", "minor")[int(rng.integers(0, 2))],
            bpm=int(rng.integers(style.tempo[0], style.tempo[1] + 1)),
            seconds=round(float(rng.uniform(min_seconds, max_seconds)), 2),
            sample_rate=RATES[int(rng.integers(0, len(RATES)))], channels=1 + int(rng.integers(0, 2)),
            fmt=FORMATS[i % len(FORMATS)], instruments=tuple(instruments),
            uploader=UPLOADERS[int(rng.integers(0, len(UPLOADERS)))], has_ab=bool(rng.random() < 0.6),
        ))
    return plans


def _mbid(seed: int, index: int) -> str:
    return str(uuid.UUID(bytes=_clip_rng(seed, 10_000 + index).bytes(16), version=4))


def _ab_documents(plan: ClipPlan, mbid: str, file_name: str) -> tuple[dict, dict]:
    key = TONICS[plan.tonic]
    low = {
        "lowlevel": {"average_loudness": 0.9},
        "rhythm": {"bpm": float(plan.bpm), "beats_count": int(plan.seconds * plan.bpm / 60)},
        "tonal": {"key_key": key, "key_scale": plan.mode, "key_strength": 0.8},
        "metadata": {
            "audio_properties": {"length": plan.seconds, "sample_rate": plan.sample_rate,
                                 "codec": plan.fmt[0], "bit_rate": 0},
            "tags": {"file_name": file_name, "musicbrainz_recordingid": [mbid]},
            "version": {"essentia": "demo", "extractor": "music 1.0"},
        },
    }
    codes = [s.genre_code for s in STYLES]
    all_probs = {c: (0.7 if c == plan.style.genre_code else 0.1) for c in codes}
    high = {"highlevel": {"genre_rosamerica": {"value": plan.style.genre_code, "probability": 0.7,
                                               "all": all_probs}},
            "metadata": {"version": {"highlevel": {"models_essentia_git_sha": "demo"}}}}
    return low, high


def _sound_id(plan: ClipPlan) -> int:
    return 400_000 + plan.index * 37


def _write_clip(job: tuple[ClipPlan, int, Path]) -> None:
    plan, seed, folder = job
    sid = _sound_id(plan)
    ext, container, subtype = plan.fmt
    audio = compose(plan, _clip_rng(seed, 1_000 + plan.index))
    _write_audio(folder / f"{sid}.{ext}", audio, plan.sample_rate, container, subtype, serial=sid)


def generate(out: str | Path, seed: int = 7, n_clips: int = 60, min_seconds: float = 5.0,
             max_seconds: float = 15.0, bad_clips: bool = True, workers: int = 1) -> dict[str, Any]:
    """Write the collection under ``out``: ``freesound/`` (dump) and ``acousticbrainz/`` (documents).
    Each clip depends only on the seed and its index, so ``workers`` processes write the same bytes."""
    out = Path(out)
    dump, ab = out / "freesound", out / "acousticbrainz"
    for d in (dump / "audio", ab / "lowlevel", ab / "highlevel"):
        d.mkdir(parents=True, exist_ok=True)
    records = []
    plans = plan_collection(seed, n_clips, min_seconds, max_seconds)
    jobs = [(plan, seed, dump / "audio") for plan in plans]
    if workers > 1:
        import multiprocessing

        with multiprocessing.get_context("fork").Pool(workers) as pool:
            pool.map(_write_clip, jobs, chunksize=4)
    else:
        for job in jobs:
            _write_clip(job)
    for plan in plans:
        sid = _sound_id(plan)
        ext = plan.fmt[0]
        name = f"{sid}.{ext}"
        tags = sorted({plan.style.name, *plan.instruments, *(["drums"] if plan.style.drums else []),
                       "music", "loop" if plan.index % 3 else "melody"})
        pack_no = UPLOADERS.index(plan.uploader) * 2 + plan.index % 2
        rec: dict[str, Any] = {
            "id": sid,
            "name": f"{plan.style.name} {' '.join(plan.instruments)} in {TONICS[plan.tonic]} {plan.mode} "
                    f"{plan.bpm}bpm.{ext}",
            "tags": [t.upper() if (plan.index + j) % 5 == 0 else t for j, t in enumerate(tags)],
            "username": plan.uploader,
            "license": LICENCES[plan.index % len(LICENCES)],
            "duration": plan.seconds,
            "samplerate": plan.sample_rate,
            "channels": plan.channels,
            "type": ext,
            "pack": f"https://freesound.org/apiv2/packs/{9000 + pack_no}/",
            "url": f"https://freesound.org/people/{plan.uploader}/sounds/{sid}/",
            "previews": {"preview-hq-ogg": f"https://cdn.freesound.org/previews/{sid // 1000}/{sid}_hq.ogg"},
            "geotag": None,
            # Freesound's AudioCommons descriptors; like the real service, some clips get no confident
            # estimate (tempo 0 at confidence 0), so those clips carry key / tempo only via AcousticBrainz
            "ac_analysis": ({"ac_tonality": f"{TONICS[plan.tonic]} {plan.mode}", "ac_tonality_confidence": 0.9,
                             "ac_tempo": plan.bpm, "ac_tempo_confidence": 0.9, "ac_loop": bool(plan.index % 3)}
                            if plan.index % 6 else
                            {"ac_tonality": f"{TONICS[plan.tonic]} {plan.mode}", "ac_tonality_confidence": 0.3,
                             "ac_tempo": 0, "ac_tempo_confidence": 0.0, "ac_loop": False}),
        }
        if plan.has_ab:
            mbid = _mbid(seed, plan.index)
            rec["mbid"] = mbid
            low, high = _ab_documents(plan, mbid, name)
            (ab / "lowlevel" / f"{mbid}.json").write_text(json.dumps(low, indent=1) + "\n")
            (ab / "highlevel" / f"{mbid}_highlevel.json").write_text(json.dumps(high, indent=1) + "\n")
        records.append(rec)

    broken: list[str] = []
    if bad_clips:
        extra, broken = write_broken_clips(dump)
        records += extra

    with open(dump / "metadata.jsonl", "w", encoding="utf-8") as f:
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return {"clips": len(records), "broken": broken, "with_acousticbrainz": sum(p.has_ab for p in plans),
            "path": str(out)}


def write_broken_clips(dump: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Two deliberately broken files in a dump (a truncated WAV, a silent FLAC), so the rejects path runs in
    every demo build: their metadata records and clip ids."""
    sr = 44100
    # a truncated WAV: the header promises 8 s but the download stopped a third of the way in
    t = np.arange(8 * sr) / sr
    tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    full = dump / "audio" / "399001.wav"
    sf.write(full, tone, sr, subtype="PCM_16")
    data = full.read_bytes()
    full.write_bytes(data[: len(data) // 3])
    # a silent FLAC: digital silence for 6 s
    sf.write(dump / "audio" / "399002.flac", np.zeros(6 * sr, dtype=np.float32), sr, subtype="PCM_16")
    records, broken = [], []
    for sid, name, ext in ((399001, "interrupted upload", "wav"), (399002, "room tone (silent)", "flac")):
        records.append({"id": sid, "name": f"{name}.{ext}", "tags": ["test"], "username": "quietroom",
                        "license": LICENCES[0], "duration": 8.0 if ext == "wav" else 6.0, "samplerate": sr,
                        "channels": 1, "type": ext, "pack": None,
                        "url": f"https://freesound.org/people/quietroom/sounds/{sid}/", "geotag": None})
        broken.append(f"freesound:{sid}")
    return records, broken

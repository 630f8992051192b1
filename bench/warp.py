"""The warp (time stretch + pitch shift, the bulk of render CPU): engines and presets, cost against quality.

    .venv/bin/python bench/warp.py [--windows 48] [--seconds 3] [--music DIR]

Music windows (``--music``: a folder of recordings; default ``../shared/realdata/audio/librosa`` when it is
there, else pieces of the demo collection rendered from its scores) at 16 kHz mono are warped with
(rate, semitones) drawn as ``bench/build.py``'s spec draws them (0.8-1.25, -2..+2), by:

  - ``signalsmith``: Signalsmith Stretch's default preset (what mixtape renders with);
  - ``signalsmith-cheaper``: its cheaper preset; ``signalsmith-short``: the default's block and interval
    halved by hand;
  - ``rubberband`` / ``rubberband-fast``: Rubber Band through pedalboard (high_quality on / off), when
    pedalboard is installed;
  - ``librosa``: phase vocoder then resampling pitch shift (what audiomentations does by default).

For each: CPU ms per second of output (one thread), the log-mel distance to the default preset's output
(mean absolute dB over 64 mel bands, frames aligned within ±50 ms), and two reference-free checks: chroma
agreement with the input rolled by the shift (1.0: the pitch moved exactly), and onset-envelope correlation
with the input's envelope stretched by the rate (1.0: the timing moved exactly). Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SR = 16000
REALDATA = ROOT.parent / "shared" / "realdata" / "audio" / "librosa"
Engine = Callable[[np.ndarray, float, float], np.ndarray]


def _music(folder: Path | None, windows: int, seconds: float) -> list[np.ndarray]:
    """``windows`` loud windows of music, spread over the recordings (speech and animal sounds left out)."""
    import soundfile as sf

    from mixtape.audio import convert

    if folder is None:
        folder = REALDATA if REALDATA.is_dir() else _rendered_demo()
    skip = ("198-", "3436-", "5703-", "glacier", "pibble", "bird")
    files = sorted(p for p in folder.rglob("*") if p.suffix in (".ogg", ".flac", ".wav", ".mp3")
                   and ".hq." not in p.name and not p.name.startswith(skip))
    tracks = []
    for path in files:
        try:
            audio, sr = sf.read(path, dtype="float32", always_2d=True)
        except sf.LibsndfileError as e:  # shared/realdata lists its quirks; an unreadable file is left out
            print(f"skipped {path.name}: {e}")
            continue
        tracks.append(convert(np.ascontiguousarray(audio.T), sr, SR, 1)[0])
    n = round(seconds * SR * 1.3)  # room for the slowest rate
    out, k = [], 0
    while len(out) < windows and tracks:
        track = tracks[k % len(tracks)]
        starts = range(0, max(1, len(track) - n), n)
        start = starts[(k // len(tracks)) % len(starts)] if len(starts) else 0
        window = track[start:start + n]
        if len(window) == n and np.sqrt(np.mean(window ** 2)) > 0.01:
            out.append(window[None, :])
        k += 1
        if k > 50 * windows:
            break
    return out


def _rendered_demo() -> Path:
    from mixtape.demo.collection import generate

    folder = Path(tempfile.mkdtemp(prefix="mixtape-bench-warp-"))
    generate(folder, seed=3, n_clips=12, bad_clips=False)
    return folder


def _signalsmith(cheaper: bool = False, halve: bool = False) -> Engine:
    import python_stretch.Signalsmith as signalsmith

    def run(audio: np.ndarray, rate: float, semitones: float) -> np.ndarray:
        st = signalsmith.Stretch()
        st.preset(1, float(SR), cheaper)
        if halve:
            st.configure(1, st.blockSamples() // 2, st.intervalSamples() // 2)
        st.setTimeFactor(rate)
        st.setTransposeSemitones(semitones)
        out = np.asarray(st.process(np.require(audio, np.float32, ["C", "W"])))
        return out.reshape(1, -1)
    return run


def _rubberband(high_quality: bool) -> Engine:
    import pedalboard

    def run(audio: np.ndarray, rate: float, semitones: float) -> np.ndarray:
        return pedalboard.time_stretch(audio, SR, stretch_factor=rate, pitch_shift_in_semitones=semitones,
                                       high_quality=high_quality)
    return run


def _librosa(audio: np.ndarray, rate: float, semitones: float) -> np.ndarray:
    import librosa

    y = librosa.effects.time_stretch(audio[0], rate=rate)
    return librosa.effects.pitch_shift(y, sr=SR, n_steps=semitones)[None, :]


def _logmel_db(audio: np.ndarray) -> np.ndarray:
    import librosa

    mel = librosa.feature.melspectrogram(y=audio[0], sr=SR, n_fft=1024, hop_length=160, n_mels=64)
    return np.maximum(librosa.power_to_db(mel, ref=1.0), -80.0)


def _distance(a: np.ndarray, b: np.ndarray, max_lag: int = 5) -> float:
    """Mean |dB| between two log-mel spectrograms at the best alignment within ±max_lag frames."""
    best = np.inf
    for lag in range(-max_lag, max_lag + 1):
        x, y = (a[:, lag:], b) if lag >= 0 else (a, b[:, -lag:])
        n = min(x.shape[1], y.shape[1])
        best = min(best, float(np.mean(np.abs(x[:, :n] - y[:, :n]))))
    return best


def _chroma(audio: np.ndarray) -> np.ndarray:
    import librosa

    c = librosa.feature.chroma_cqt(y=audio[0], sr=SR, hop_length=512).mean(axis=1)
    return c / (np.linalg.norm(c) + 1e-9)


def _envelope(audio: np.ndarray) -> np.ndarray:
    import librosa

    return librosa.onset.onset_strength(y=audio[0], sr=SR, hop_length=160)


def _timing(source: np.ndarray, out: np.ndarray, rate: float) -> float:
    """Correlation of the output's onset envelope with the source's, resampled by the rate."""
    src, got = _envelope(source), _envelope(out)
    t = np.arange(len(got)) * rate
    expected = np.interp(t, np.arange(len(src)), src, right=0.0)
    n = min(len(expected), len(got))
    a, b = expected[:n] - expected[:n].mean(), got[:n] - got[:n].mean()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--windows", type=int, default=48)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--music", type=Path, default=None)
    args = ap.parse_args()
    from mixtape.hashing import rng_for

    windows = _music(args.music, args.windows, args.seconds)
    n_out = round(args.seconds * SR)
    draws = []
    for i in range(len(windows)):
        rng = rng_for(0, f"warp-bench/{i}")
        draws.append((round(float(rng.uniform(0.8, 1.25)), 4), int(rng.integers(-2, 3))))
    engines: dict[str, Engine] = {"signalsmith": _signalsmith(), "signalsmith-cheaper": _signalsmith(cheaper=True),
                                  "signalsmith-short": _signalsmith(halve=True), "librosa": _librosa}
    try:
        import pedalboard  # noqa: F401
        engines |= {"rubberband": _rubberband(True), "rubberband-fast": _rubberband(False)}
    except ImportError:
        print("pedalboard is not installed: Rubber Band is not measured")
    reference: list[np.ndarray] = []
    results = {}
    for name, engine in engines.items():
        outs, cpu = [], 0.0
        for (rate, semitones), window in zip(draws, windows, strict=True):
            source = window[:, :round(n_out * rate)]
            t0 = time.process_time()
            out = engine(source, rate, float(semitones))
            cpu += time.process_time() - t0
            out = out[:, :n_out] if out.shape[1] >= n_out else np.pad(out, ((0, 0), (0, n_out - out.shape[1])))
            outs.append(out.astype(np.float32))
        if name == "signalsmith":
            reference = outs
        dist = np.mean([_distance(_logmel_db(o), _logmel_db(r)) for o, r in zip(outs, reference, strict=True)])
        pitch = np.mean([float(_chroma(o) @ np.roll(_chroma(w[:, :round(n_out * rate)]), s))
                         for o, w, (rate, s) in zip(outs, windows, draws, strict=True)])
        timing = np.mean([_timing(w[:, :round(n_out * rate)], o, rate)
                          for o, w, (rate, _) in zip(outs, windows, draws, strict=True)])
        results[name] = {"cpu_ms_per_s": round(1000 * cpu / (len(outs) * args.seconds), 2),
                         "logmel_db_to_default": round(float(dist), 2), "chroma_agreement": round(float(pitch), 3),
                         "onset_correlation": round(float(timing), 3)}
        r = results[name]
        print(f"{name:<20} {r['cpu_ms_per_s']:7.2f} CPU-ms per output second, {r['logmel_db_to_default']:5.2f} dB "
              f"log-mel from the default preset, chroma {r['chroma_agreement']:.3f}, "
              f"onsets {r['onset_correlation']:.3f}", flush=True)
    print(json.dumps({"bench": "warp", "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                      "windows": len(windows), "seconds": args.seconds, "results": results}))


if __name__ == "__main__":
    main()

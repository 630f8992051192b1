"""How fast scores become audio: parsing per format, and synthesis in audio-seconds per CPU-second.

    .venv/bin/python bench/synth.py [--pieces 10] [--rates 16000 44100]

Pieces come from the corpus music21 ships (Bach chorales as MusicXML, Palestrina as Humdrum, O'Neill tunes
as ABC) and one generated 16-part MIDI file; every figure is CPU time of this process (``time.process_time``),
the best of three runs per piece.
"""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path

import pretty_midi

from mixtape.sources.score.formats import abc_tunes, read_performance, score_format
from mixtape.sources.score.synth import open_soundfont, synthesise
from mixtape.spec import corpus_root


def _best(fn, repeats: int = 3) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.process_time()
        out = fn()
        best = min(best, time.process_time() - t)
    return best, out


def _midi(parts: int = 16, seconds: float = 60.0) -> bytes:
    pm = pretty_midi.PrettyMIDI(initial_tempo=120)
    for p in range(parts):
        inst = pretty_midi.Instrument(program=(p * 8) % 128, is_drum=(p == parts - 1))
        step = 0.25 + 0.05 * (p % 4)
        inst.notes = [pretty_midi.Note(90, 36 + (p * 5 + i * 7) % 48, i * step, i * step + step * 0.9)
                      for i in range(int(seconds / step))]
        pm.instruments.append(inst)
    buf = io.BytesIO()
    pm.write(buf)
    return buf.getvalue()


def pieces(n: int) -> list[tuple[str, str, bytes, int]]:
    root = Path(corpus_root())
    out = [(f"bach/{p.name}", "mxl", p.read_bytes(), 0) for p in sorted((root / "bach").glob("*.mxl"))[:n]]
    out += [(f"palestrina/{p.name}", "humdrum", p.read_bytes(), 0)
            for p in sorted((root / "palestrina").glob("*.krn"))[:n]]
    abc = sorted((root / "oneills1850").glob("*.abc"))[0]
    data = abc.read_bytes()
    out += [(f"oneills1850/{abc.name}#{t + 1}", "abc", data, t) for t in range(min(n, len(abc_tunes(data))))]
    out.append(("generated 16-part MIDI (60 s)", "midi", _midi(), 0))
    assert all(score_format(name.split("#")[0]) or fmt == "midi" for name, fmt, _, _ in out)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pieces", type=int, default=10)
    ap.add_argument("--rates", type=int, nargs="+", default=[16000, 44100])
    args = ap.parse_args()
    font = open_soundfont(None)
    rows: dict[str, dict[str, float]] = {}
    for name, fmt, data, tune in pieces(args.pieces):
        parse_s, perf = _best(lambda d=data, f=fmt, t=tune: read_performance(d, f, t))
        group = name.split("/")[0] if "/" in name else name
        r = rows.setdefault(group, {"pieces": 0, "parse_s": 0.0, "audio_s": 0.0,
                                    **{f"synth_s@{rate}": 0.0 for rate in args.rates}})
        r["pieces"] += 1
        r["parse_s"] += parse_s
        r["audio_s"] += perf.duration
        for rate in args.rates:
            programs = [part.program or 0 for part in perf.parts]
            synth_s, _ = _best(lambda p=perf, sr=rate, g=programs: synthesise(p, g, sr, font, None, 1))
            r[f"synth_s@{rate}"] += synth_s
    print(f"{'pieces':<32}{'n':>4}{'audio s':>9}{'parse ms/piece':>16}" +
          "".join(f"{f'synth x RT @{rate}':>18}" for rate in args.rates))
    for group, r in rows.items():
        speeds = "".join(f"{r['audio_s'] / max(r[f'synth_s@{rate}'], 1e-9):>18.0f}" for rate in args.rates)
        print(f"{group:<32}{r['pieces']:>4}{r['audio_s']:>9.1f}{1000 * r['parse_s'] / r['pieces']:>16.1f}{speeds}")
    print(json.dumps({"bench": "synth", "soundfont": font.name, "rows": rows}))


if __name__ == "__main__":
    main()

"""SoundFont synthesis of a performance: a pure function of (notes, programs, SoundFont, rate).

The synthesiser is TinySoundFont (the ``tinysoundfont`` wheel): a single-threaded C sample player with
sf2 and sf3 support, pip-installable, with no clock, no randomness and no threads, so the same inputs give
the same samples every time; driven here note by note at exact sample positions (its own MIDI sequencer
is not used), ~750x real time per CPU-second on a chorale at 22.05 kHz. FluidSynth (better reverb and
modulators) needs a system library and is not pip-installable; symusic's synthesiser was measured
off-pitch for several General MIDI presets (a cello A4 at 394 Hz). The wheel declares PyAudio, which only
its live playback uses and which does not build without PortAudio headers, so the Makefile installs it
with ``--no-deps``.

The default SoundFont is TimGM6mb (a 6 MB General MIDI set by Tim Brechbill, GPL-2.0), shipped in the
``pretty_midi`` wheel; any sf2 / sf3 file works.
"""

from __future__ import annotations

import functools
import hashlib
import struct
import threading
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mixtape.sources.score.performance import Performance
from mixtape.untrusted import show

SYNTHESISER = "tinysoundfont"
#: what the default SoundFont is called in specs, cards and messages
BUILTIN_SOUNDFONT = "TimGM6mb"
BUILTIN_LICENCE = "TimGM6mb by Tim Brechbill, GPL-2.0 (as shipped in the pretty_midi wheel)"
#: silence rendered after the last note-off, so release tails are not cut
TAIL_SECONDS = 1.0
#: a render whose peak would pass this is scaled down to it (never up): no clipping, quiet pieces stay quiet
PEAK_LIMIT = 0.89
#: the MIDI drum channel; every other channel takes one pitched part
DRUM_CHANNEL = 9
PITCHED_CHANNELS = tuple(c for c in range(16) if c != DRUM_CHANNEL)
MAX_SOUNDFONT_BYTES = 2 << 30


class SynthError(RuntimeError):
    """A SoundFont that cannot be used; the message names it."""


@dataclass(frozen=True)
class SoundFont:
    path: str
    sha256: str
    #: BUILTIN_SOUNDFONT or the file's name
    name: str


def builtin_soundfont_path() -> str:
    import pretty_midi

    return str(Path(pretty_midi.__file__).with_name(f"{BUILTIN_SOUNDFONT}.sf2"))


def synthesiser_version() -> str:
    try:
        return f"{SYNTHESISER} {metadata.version(SYNTHESISER)}"
    except metadata.PackageNotFoundError:
        return f"{SYNTHESISER} absent"


def check_synthesiser() -> str | None:
    """Why scores cannot be rendered on this machine (the synthesiser is missing), or None."""
    try:
        import tinysoundfont  # noqa: F401
    except ImportError:
        return ("the score source needs the `tinysoundfont` synthesiser: pip install --no-deps tinysoundfont "
                "(its PyAudio requirement is for live playback only; `make setup` does this)")
    return None


def open_soundfont(path: str | None) -> SoundFont:
    """A SoundFont by path (None: the built-in one), checked to be a RIFF sfbk file and hashed; hashed once
    per process while the file keeps its size and modification time (a build asks for it several times)."""
    where = path or builtin_soundfont_path()
    try:
        st = Path(where).stat()
    except OSError as e:
        raise SynthError(f"soundfont {show(where)} cannot be read: {e.strerror or e}") from None
    return _opened(where, path is None, st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=32)
def _opened(where: str, builtin: bool, size: int, mtime_ns: int) -> SoundFont:
    try:
        if size > MAX_SOUNDFONT_BYTES:
            raise SynthError(f"soundfont {show(where)} is {size >> 20} MB, more than a SoundFont can be")
        with open(where, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"sfbk":
                raise SynthError(f"soundfont {show(where)} is not a SoundFont (sf2 / sf3 files start with "
                                 "RIFF....sfbk)")
            digest = hashlib.sha256(head)
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as e:
        raise SynthError(f"soundfont {show(where)} cannot be read: {e.strerror or e}") from None
    name = BUILTIN_SOUNDFONT if builtin else Path(where).name
    return SoundFont(path=where, sha256=digest.hexdigest(), name=name)


class _Fonts:
    """SoundFont bytes per sha256, read once per process. Every render pass loads them into a new
    TinySoundFont instance (10 ms for TimGM6mb), so nothing of one render (a ringing voice, a controller)
    can reach the next, and threads can render at once."""

    _data: ClassVar[dict[str, bytes]] = {}
    _guard = threading.Lock()

    @classmethod
    def synth(cls, font: SoundFont, rate: int) -> tuple[Any, int]:
        import tinysoundfont

        with cls._guard:
            if font.sha256 not in cls._data:
                with open(font.path, "rb") as f:
                    data = f.read(MAX_SOUNDFONT_BYTES + 1)
                if hashlib.sha256(data).hexdigest() != font.sha256:
                    raise SynthError(f"soundfont {show(font.path)} changed since it was opened")
                cls._data[font.sha256] = data
            data = cls._data[font.sha256]
        synth = tinysoundfont.Synth(samplerate=rate)
        try:
            return synth, synth.sfload(data)
        except Exception as e:  # the wheel raises its own exception types for malformed files
            raise SynthError(f"soundfont {show(font.path)} cannot be loaded: {type(e).__name__}: {show(e)}") from None


def _select(synth: Any, sfid: int, channel: int, program: int, drum: bool) -> None:
    try:
        synth.program_select(channel, sfid, 128 if drum else 0, program, is_drums=drum)
    except RuntimeError:
        # a SoundFont without this preset: its first bank's piano (or standard kit) stands in
        synth.program_select(channel, sfid, 128 if drum else 0, 0, is_drums=drum)


def channel_plan(perf: Performance, parts: list[int]) -> list[list[tuple[int, int]]]:
    """Passes of (part, channel): each pitched part gets its own channel (so unisons of two parts are two
    voices), drum parts share the drum channel; more than 15 pitched parts take further passes."""
    passes: list[list[tuple[int, int]]] = []
    pitched = [p for p in parts if not perf.parts[p].is_drum]
    drums = [p for p in parts if perf.parts[p].is_drum]
    for i in range(0, max(len(pitched), 1), len(PITCHED_CHANNELS)):
        chunk = pitched[i:i + len(PITCHED_CHANNELS)]
        passes.append(list(zip(chunk, PITCHED_CHANNELS, strict=False)))
    passes[0] += [(p, DRUM_CHANNEL) for p in drums]
    return [p for p in passes if p]


def synthesise(perf: Performance, programs: list[int], rate: int, font: SoundFont,
               parts: list[int] | None = None, channels: int = 2) -> np.ndarray:
    """Float32 ``(channels, frames)`` of the performance (or of some of its parts), ``programs[i]`` playing
    part ``i``; ``TAIL_SECONDS`` past the last note. Mono is the mean of the synthesiser's two channels."""
    parts = list(range(len(perf.parts))) if parts is None else parts
    total = round((perf.duration + TAIL_SECONDS) * rate)
    out = np.zeros((total, 2), dtype=np.float32)
    for assignment in channel_plan(perf, parts):
        channel_of = dict(assignment)
        synth, sfid = _Fonts.synth(font, rate)
        for part, channel in assignment:
            _select(synth, sfid, channel, programs[part], perf.parts[part].is_drum)
        events = []
        for n in perf.notes:
            if n.part in channel_of:
                events.append((round(n.start * rate), 1, channel_of[n.part], n.pitch, n.velocity))
                events.append((round(n.end * rate), 0, channel_of[n.part], n.pitch, 0))
        events.sort()  # by time, note-offs before note-ons at the same frame, then channel and pitch
        pos = 0
        for frame, on, channel, pitch, velocity in events:
            frame = min(frame, total)
            if frame > pos:
                out[pos:frame] += np.frombuffer(synth.generate(frame - pos), dtype=np.float32).reshape(-1, 2)
                pos = frame
            if on:
                synth.noteon(channel, pitch, max(1, min(127, velocity)))
            else:
                synth.noteoff(channel, pitch)
        if total > pos:
            out[pos:total] += np.frombuffer(synth.generate(total - pos), dtype=np.float32).reshape(-1, 2)
    if channels == 1:
        out = out.mean(axis=1, keepdims=True, dtype=np.float32)
    peak = float(np.abs(out).max()) if out.size else 0.0
    if peak > PEAK_LIMIT:
        out *= np.float32(PEAK_LIMIT / peak)
    return np.ascontiguousarray(out.T)


def encode_render(audio: np.ndarray, rate: int) -> bytes:
    """A render as the bytes the rest of a build reads like any source file: 32-bit float WAV, so nothing
    is lost before the build's own conversion. Written here, not by libsndfile, whose float WAVs carry a
    PEAK chunk stamped with the time of writing (the same audio would hash differently every run)."""
    frames = np.ascontiguousarray(audio.T, dtype="<f4")
    channels = frames.shape[1]
    data = frames.tobytes()
    fmt = struct.pack("<HHIIHH", 3, channels, rate, rate * 4 * channels, 4 * channels, 32)  # IEEE float
    fact = struct.pack("<I", frames.shape[0])
    body = (b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"fact" + struct.pack("<I", 4) + fact
            + b"data" + struct.pack("<I", len(data)) + data)
    return b"RIFF" + struct.pack("<I", len(body)) + body

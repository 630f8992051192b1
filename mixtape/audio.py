"""Decode, probe, convert and encode audio, from bytes in memory.

Pure functions over bytes and numpy arrays (no Beam, no torch): the pipelines read bytes through whatever
filesystem they run on and hand them here. Audio arrays are float32 shaped (channels, frames).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import soxr

from mixtape.untrusted import clean_detail

#: Length of the blocks whose loudness the probe records; snippet windows are judged from these.
LOUDNESS_BLOCK_MS = 100
#: dBFS floor written for digital silence (log of zero).
SILENCE_DB = -200.0
#: Sample rates mixtape accepts from a source (and from a shard): outside them a file is rejected
#: (``unsupported_rate``): 1 Hz misaligns every loudness block, 10 MHz is not audio a model hears.
SOURCE_RATES = (1000, 768000)


class AudioError(Exception):
    """Audio that cannot be used; ``reason`` is a short stable code for the rejects table."""

    def __init__(self, reason: str, detail: str):
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


BIT_DEPTHS = {"PCM_S8": 8, "PCM_U8": 8, "PCM_16": 16, "PCM_24": 24, "PCM_32": 32, "FLOAT": 32, "DOUBLE": 64}


@dataclass(frozen=True)
class Probe:
    """What one decode of a clip tells the planner; the audio itself is not kept.

    With a window, ``offset_frames`` is where it starts in the file and every other figure describes the
    window only.
    """

    sample_rate: int
    channels: int
    frames: int
    container: str
    subtype: str
    block_rms_db: tuple[float, ...]
    offset_frames: int = 0
    peak_db: float = SILENCE_DB

    @property
    def bit_depth(self) -> int:
        """Bits per sample of PCM/float files; 0 for lossy codecs, which have none."""
        return BIT_DEPTHS.get(self.subtype, 0)

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate


def decode(data: bytes, name: str = "<bytes>") -> tuple[np.ndarray, int]:
    """Decode a whole file from memory; raise AudioError with a reason code on anything unusable."""
    audio, sr, _, _ = _decode_checked(data, name)
    return audio, sr


def _decode_checked(data: bytes, name: str) -> tuple[np.ndarray, int, str, str]:
    with _open_checked(data, name) as f:
        declared, sr, container, subtype = f.frames, f.samplerate, f.format, f.subtype
        frames = _read_checked(f, data, name, -1)
    _check_complete(data, name, declared, frames.shape[0], container)
    return np.ascontiguousarray(frames.T), sr, container, subtype


def _open_checked(data: bytes, name: str) -> sf.SoundFile:
    """The decoder for a file, or the reason it cannot have one (empty, a container mixtape does not read,
    unparseable, a header with no rate or channels)."""
    if not data:
        raise AudioError("empty_file", f"{name} has zero bytes")
    unsupported = unsupported_container(data)
    if unsupported:
        raise AudioError("unsupported_format", f"{name} is {unsupported}, which mixtape cannot decode; convert "
                         "it to FLAC, WAV, OGG or MP3")
    try:
        f = sf.SoundFile(io.BytesIO(data))
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as e:
        raise AudioError("undecodable", f"{name}: {_decoder_message(e)}") from e
    if f.samplerate <= 0 or f.channels <= 0:
        f.close()
        raise AudioError("undecodable", f"{name}: header says {f.samplerate} Hz, {f.channels} channels")
    lo, hi = SOURCE_RATES
    if not lo <= f.samplerate <= hi:
        f.close()
        raise AudioError("unsupported_rate", f"{name}: {f.samplerate} Hz is outside the {lo}-{hi} Hz mixtape reads")
    return f


def _decoder_message(e: Exception) -> str:
    """What the decoder said, without the repr of the in-memory file it was handed (which carries a memory
    address, so a reject's detail would differ between two builds of the same input)."""
    text = getattr(e, "error_string", None) or str(e)
    return clean_detail(text.replace("Error opening <_io.BytesIO object>: ", ""))


def _read_checked(f: sf.SoundFile, data: bytes, name: str, frames: int) -> np.ndarray:
    """The next ``frames`` frames (-1: all), (frames, channels) float32; a decoder error becomes
    ``truncated`` (some frames decode) or ``undecodable``, NaN or Inf becomes ``non_finite``."""
    try:
        chunk = f.read(frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as e:
        got = _frames_before_error(data)  # how far it really decodes, in small blocks
        raise AudioError("truncated" if got else "undecodable",
                         f"{name}: decoding fails after {got} of {f.frames} declared frames "
                         f"({_decoder_message(e)})") from e
    if not np.isfinite(chunk).all():
        raise AudioError("non_finite", f"{name} holds NaN or infinite samples")
    return chunk


def _check_complete(data: bytes, name: str, declared: int, got: int, container: str) -> None:
    """Fewer frames than the header (or the RIFF data chunk) promises, an Ogg stream without its end, or
    nothing at all: libsndfile reports none of these as errors."""
    riff_declared = _riff_declared_frames(data)
    if riff_declared is not None and riff_declared > declared:
        declared = riff_declared
    if declared > 0 and got < declared:
        raise AudioError("truncated", f"{name}: header declares {declared} frames but only {got} decode")
    if container == "OGG" and ogg_truncated(data):
        raise AudioError("truncated", f"{name}: the Ogg stream ends without its end-of-stream page "
                         f"({got} frames decode)")
    if got == 0:
        raise AudioError("no_audio", f"{name} decodes to zero frames")


def _frames_before_error(data: bytes, block: int = 4096) -> int:
    """How many frames decode, block by block, before the decoder gives up."""
    got = 0
    try:
        with sf.SoundFile(io.BytesIO(data)) as f:
            while True:
                chunk = f.read(block, dtype="float32", always_2d=True)
                if not len(chunk):
                    break
                got += len(chunk)
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError):
        pass
    return got


#: Containers people name .mp3 / .wav by mistake or download from services that mixtape cannot decode.
_UNSUPPORTED_MAGIC: tuple[tuple[int, bytes, str], ...] = (
                      (4, b"ftyp", "an MP4/M4A (AAC or ALAC) file"),
                      (0, b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", "an ASF/WMA file"),
                      (0, b"\x1a\x45\xdf\xa3", "a Matroska/WebM file"),
                      (0, b"MAC ", "a Monkey's Audio (APE) file"),
                      (0, b"wvpk", "a WavPack file"))


def unsupported_container(data: bytes) -> str | None:
    for offset, magic, what in _UNSUPPORTED_MAGIC:
        if data[offset:offset + len(magic)] == magic:
            return what
    return None


def ogg_truncated(data: bytes) -> bool:
    """True when an Ogg stream's pages run past the end of the data or its last page lacks the end-of-stream
    flag: libsndfile decodes such files to fewer (often zero) frames without an error."""
    pos, eos = 0, False
    while pos < len(data):
        if data[pos:pos + 4] != b"OggS" or pos + 27 > len(data):
            return True
        segments = data[pos + 26]
        if pos + 27 + segments > len(data):
            return True
        size = 27 + segments + sum(data[pos + 27:pos + 27 + segments])
        if pos + size > len(data):
            return True
        eos = bool(data[pos + 5] & 0x04)
        pos += size
    return not eos


def _riff_declared_frames(data: bytes) -> int | None:
    """Frames a RIFF/WAVE header promises in its data chunk (libsndfile silently clamps to what is there).

    None when the file is not RIFF/WAVE or the size is the streaming placeholder.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    pos, block_align = 12, 0
    while pos + 8 <= len(data):
        chunk, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        if chunk == b"fmt " and pos + 22 <= len(data):
            block_align = int.from_bytes(data[pos + 20 : pos + 22], "little")
        elif chunk == b"data":
            if size in (0, 0xFFFFFFFF) or block_align <= 0:
                return None
            return size // block_align
        pos += 8 + size + (size & 1)
    return None


def window_frames(start: float, end: float, unit: str, sr: int) -> tuple[int, int]:
    """A window given in seconds or samples as (first frame, end frame); end 0 means the end of the file."""
    if unit == "samples":
        return int(start), int(end)
    return round(start * sr), round(end * sr)


def probe(data: bytes, name: str = "<bytes>", window: tuple[float, float, str] | None = None) -> Probe:
    """Decode once and measure everything the plan needs: exact length (decoded, not the header's), format,
    peak and per-block loudness, of the whole file or of a window of it.

    The file is decoded in chunks and only running figures are kept, so an hour-long recording needs a
    few megabytes beyond its encoded bytes; the figures equal those of a whole-file decode."""
    with _open_checked(data, name) as f:
        declared, sr, channels = f.frames, f.samplerate, f.channels
        container, subtype = f.format, f.subtype
        offset, end = window_frames(*window, sr) if window is not None else (0, 0)
        stats = _RunningLoudness(max(1, sr * LOUDNESS_BLOCK_MS // 1000))
        got = 0
        while len(chunk := _read_checked(f, data, name, stats.block * PROBE_CHUNK_BLOCKS)):
            lo, hi = max(offset - got, 0), len(chunk) if not end else min(end - got, len(chunk))
            if lo < hi:
                stats.add(chunk[lo:hi])
            got += len(chunk)
    _check_complete(data, name, declared, got, container)
    if window is not None:
        end = end or got
        if not 0 <= offset < end <= got:
            raise AudioError("window_outside_file", f"{name}: window {window[0]:g}-{window[1]:g} {window[2]} is "
                             f"outside the file's {got} frames at {sr} Hz")
    return Probe(
        sample_rate=sr,
        channels=channels,
        frames=(end - offset) if window is not None else got,
        container=container,
        subtype=subtype,
        block_rms_db=tuple(stats.levels()),
        offset_frames=offset,
        peak_db=round(20 * math.log10(stats.peak), 2) if stats.peak > 0 else SILENCE_DB,
    )


#: Loudness blocks decoded per probe chunk (256 x 100 ms = 25.6 s of audio at a time).
PROBE_CHUNK_BLOCKS = 256


class _RunningLoudness:
    """Peak and per-block mean square of the channel mean, fed chunk by chunk (frames, channels); the
    figures equal :func:`block_rms_db` over the whole signal."""

    def __init__(self, block: int):
        self.block = block
        self.peak = 0.0
        self._pending = np.zeros(0, dtype=np.float64)
        self._ms: list[np.ndarray] = []

    def add(self, chunk: np.ndarray) -> None:
        self.peak = max(self.peak, float(chunk.max()), -float(chunk.min()))
        mono = _channel_mean64(chunk)
        if len(self._pending):
            mono = np.concatenate([self._pending, mono])
        whole = len(mono) // self.block * self.block
        if whole:
            sq = mono[:whole] * mono[:whole]
            self._ms.append(sq.reshape(-1, self.block).sum(axis=1) / self.block)
        self._pending = mono[whole:]

    def levels(self) -> list[float]:
        ms = list(self._ms)
        if len(self._pending):
            padded = np.zeros(self.block, dtype=np.float64)
            padded[: len(self._pending)] = self._pending * self._pending
            ms.append(np.array([padded.reshape(1, self.block).sum(axis=1)[0] / len(self._pending)]))
        values = np.concatenate(ms) if ms else np.zeros(0)
        with np.errstate(divide="ignore"):
            db = 10.0 * np.log10(values)
        db = np.where(np.isfinite(db), db, SILENCE_DB)
        return [round(float(x), 2) for x in np.maximum(db, SILENCE_DB)]


def _channel_mean64(chunk: np.ndarray) -> np.ndarray:
    """``chunk.T.mean(axis=0, dtype=float64)`` of interleaved (frames, channels) audio, bit for bit, about 8x
    faster: numpy reduces a short strided axis with a slow inner loop; this adds whole channels instead,
    in the same order."""
    acc = chunk[:, 0].astype(np.float64)
    for c in range(1, chunk.shape[1]):
        acc += chunk[:, c]
    if chunk.shape[1] > 1:
        acc /= chunk.shape[1]
    return acc


def block_rms_db(audio: np.ndarray, sr: int, block_ms: int = LOUDNESS_BLOCK_MS) -> list[float]:
    """RMS level in dBFS of consecutive blocks of the channel mean (the last partial block included)."""
    mono = audio.mean(axis=0, dtype=np.float64)
    block = max(1, sr * block_ms // 1000)
    n = math.ceil(mono.shape[0] / block)
    padded_sq = np.zeros(n * block, dtype=np.float64)
    padded_sq[: mono.shape[0]] = mono * mono
    counts = np.full(n, block, dtype=np.float64)
    counts[-1] = mono.shape[0] - (n - 1) * block
    ms = padded_sq.reshape(n, block).sum(axis=1) / counts
    with np.errstate(divide="ignore"):
        db = 10.0 * np.log10(ms)
    db = np.where(np.isfinite(db), db, SILENCE_DB)
    return [round(float(x), 2) for x in np.maximum(db, SILENCE_DB)]


def window_rms_db(block_db: tuple[float, ...] | list[float], start_ms: int, duration_ms: int,
                  block_ms: int = LOUDNESS_BLOCK_MS) -> float:
    """Loudness of a window from the probe's block levels (energy mean of the blocks it covers)."""
    first = start_ms // block_ms
    last = max(first + 1, -(-(start_ms + duration_ms) // block_ms))
    levels = np.asarray(block_db[first:last], dtype=np.float64)
    if levels.size == 0:
        return SILENCE_DB
    energy = np.mean(10.0 ** (levels / 10.0))
    return SILENCE_DB if energy <= 0 else max(SILENCE_DB, 10.0 * math.log10(energy))


def convert(audio: np.ndarray, sr: int, target_sr: int, channels: int) -> np.ndarray:
    """Channel policy then resampling; cheap work first (downmix before resampling).

    Channel policy: to mono, average all channels; to stereo, duplicate a mono source and keep the first
    two channels of a multichannel one.
    """
    if channels == 1 and audio.shape[0] != 1:
        audio = audio.mean(axis=0, keepdims=True, dtype=np.float32)
    elif channels == 2 and audio.shape[0] == 1:
        audio = np.repeat(audio, 2, axis=0)
    elif channels == 2 and audio.shape[0] > 2:
        audio = audio[:2]
    if sr != target_sr:
        audio = soxr.resample(np.ascontiguousarray(audio.T), sr, target_sr, quality="HQ").T
    return np.ascontiguousarray(audio, dtype=np.float32)


def to_pcm16(audio: np.ndarray) -> np.ndarray:
    """Quantise explicitly (round, clip) so encoding never depends on a library's conversion rules."""
    if audio.dtype == np.float32:  # x * 2^15 is exact in float32 and rounds the same: no float64 copy needed
        scaled = np.round(audio * np.float32(32768.0))
    else:
        scaled = np.round(audio.astype(np.float64) * 32768.0)
    return np.clip(scaled, -32768, 32767).astype(np.int16).T.copy()


def encode(audio: np.ndarray, sr: int, fmt: str) -> bytes:
    """Encode float audio (channels, frames) as 16-bit FLAC or WAV bytes."""
    return encode_pcm16(to_pcm16(audio), sr, fmt)


def encode_pcm16(pcm: np.ndarray, sr: int, fmt: str) -> bytes:
    """Encode already quantised samples (frames, channels) of ``to_pcm16``."""
    buf = io.BytesIO()
    sf.write(buf, pcm, sr, format={"flac": "FLAC", "wav": "WAV"}[fmt], subtype="PCM_16")
    return buf.getvalue()

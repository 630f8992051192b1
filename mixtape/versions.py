"""What can change a dataset's bytes, by version: the card records it, an incremental build and ``verify``
compare it with this machine's."""

from __future__ import annotations

import platform
import re
import shlex
from importlib import metadata

import mixtape
from mixtape.dataset.index import INDEX_VERSION
from mixtape.planning import PLAN_VERSION
from mixtape.rendering import RENDER_VERSION
from mixtape.spec import DatasetSpec

#: Packages whose versions can change the bytes of a dataset (DSP, codecs, container writers).
VERSIONED_PACKAGES = ("apache-beam", "numpy", "soundfile", "soxr", "librosa", "audiomentations", "pyarrow",
                      "python-stretch")


def package_versions(spec: DatasetSpec | None = None) -> dict[str, str]:
    """Versions of everything that can change output bytes; with a spec that renders scores,
    also its synthesiser, parsers and SoundFonts."""
    import soundfile

    from mixtape.sources.score.recipe import score_versions

    out = {"mixtape": mixtape.__version__, "mixtape-render": str(RENDER_VERSION), "mixtape-plan": str(PLAN_VERSION),
           "mixtape-index": str(INDEX_VERSION),
           "python": platform.python_version(),
           "libsndfile": soundfile.__libsndfile_version__}
    for name in VERSIONED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    if spec is not None:
        out.update(score_versions(spec))
    return dict(sorted(out.items()))


#: what a recorded version may look like before it is printed into a command (cards are untrusted)
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+!-]{0,63}")
#: card keys that are pip packages at the version recorded (the score tools when a spec renders scores)
_PIP_KEYS = (*VERSIONED_PACKAGES, "music21", "pretty_midi", "mixtape")


def install_commands(versions: dict[str, str]) -> list[str]:
    """The commands that recreate a card's recorded versions, for a person to run (printed, never run):
    pip requirements at the exact versions, the synthesiser with ``--no-deps`` as the Makefile installs it,
    and, as comments, what pip cannot set (Python, libsndfile, SoundFonts). A value that does not look like a
    version is named, not printed into the command."""
    pins, notes, synth = [], [], None
    for key in _PIP_KEYS:
        value = versions.get(key)
        if value in (None, "absent"):
            continue
        if not isinstance(value, str) or not _VERSION.fullmatch(value):
            notes.append(f"# {key}: the card's value is not a version; left out")
            continue
        pins.append(shlex.quote(f"{key}=={value}"))
    tool = versions.get("synthesiser")
    if isinstance(tool, str):
        name, _, version = tool.partition(" ")
        if name == "tinysoundfont" and _VERSION.fullmatch(version):
            synth = f"pip install --no-deps {shlex.quote(f'tinysoundfont=={version}')}"
    python = versions.get("python")
    if isinstance(python, str) and _VERSION.fullmatch(python):
        notes.insert(0, f"# Python {python} (pip cannot change it: use that interpreter, e.g. `uv venv -p {python}`)")
    libsndfile = versions.get("libsndfile")
    if isinstance(libsndfile, str) and _VERSION.fullmatch(libsndfile):
        notes.append(f"# libsndfile {libsndfile}: the one the soundfile wheel above bundles")
    for key, value in sorted(versions.items()):
        if key.startswith("soundfont:") and isinstance(value, str) and re.fullmatch(r"[0-9a-f]{64}", value):
            notes.append(f"# SoundFont {shlex.quote(key[len('soundfont:'):])}: sha256 {value}")
    commands = [f"pip install {' '.join(pins)}"] if pins else []
    return [*notes[:1], *commands, *([synth] if synth else []), *notes[1:]]

"""What can change a dataset's bytes, by version: the card records it, an incremental build and ``verify``
compare it with this machine's."""

from __future__ import annotations

import platform
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

"""The one error a build raises for anything a user can fix: a bad option, a missing folder, a failed run."""

from __future__ import annotations

from mixtape.errors import MixtapeError


class BuildError(MixtapeError, RuntimeError):
    pass

"""The dataset report: an HTML page with plots, spectrograms and audio players (see ``page``)."""

from mixtape.errors import MixtapeError


class ReportError(MixtapeError, RuntimeError):
    """A report that cannot be written; the message says what to pass instead."""

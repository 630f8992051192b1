"""The one base of every error a user can act on: the CLI prints such an error as one line, without a
traceback, and needs nothing heavy imported to recognise it (so ``mixtape --help`` stays fast)."""


class MixtapeError(Exception):
    """A problem with the user's input, data or environment, named with its fix in the message."""

"""The ``mixtape`` command line: one module per command family, each a thin layer over library functions
(``build``, ``train``, ``dataset``, ``demo``, ``sources``). Defaults come from the library's dataclasses."""

from __future__ import annotations

import argparse
import logging
import sys

from mixtape import __version__
from mixtape.cli import build, dataset, demo, sources, train
from mixtape.cli.common import COMMANDS, UsageError, build_summary, empty_splits
from mixtape.cli.train import MODEL_PRESETS, cli_frontend
from mixtape.errors import MixtapeError

__all__ = ["COMMANDS", "MODEL_PRESETS", "UsageError", "build_summary", "cli_frontend", "empty_splits", "main",
           "make_parser", "quiet_logging"]


def _split_beam_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """Everything after a bare ``--`` is passed to Beam untouched (e.g. ``-- --job_endpoint=...``)."""
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1:]
    return argv, []


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mixtape", description="Reproducible, augmented music-ML datasets: "
                                "Beam builds WebDataset shards from open collections; PyTorch trains on them.")
    p.add_argument("--version", action="version", version=f"mixtape {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for family in (build, train, dataset, demo, sources):  # the order --help lists them in
        family.add_parsers(sub)
    return p


def quiet_logging() -> None:
    """Warnings only; Beam's import-time notice about optional GCP client libraries is not the user's concern."""
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    import apache_beam  # noqa: F401

    logging.getLogger().setLevel(logging.WARNING)
    # Beam logs a failing DoFn's traceback itself before raising it; mixtape reports the failure once (as a
    # one-line message for known causes, with the traceback otherwise), so that log line is a duplicate.
    logging.getLogger("apache_beam.runners.common").setLevel(logging.CRITICAL)


#: commands that run Beam (and so import it: its import-time notices are silenced first)
BEAM_COMMANDS = ("build", "demo", "verify")


#: what ``pip install 'mixtape[train]'`` adds; builds, verify, report and inspect run without it
TRAINING_STACK = frozenset({"torch", "webdataset", "sklearn", "tqdm", "braceexpand"})


def main(argv: list[str] | None = None) -> int:
    own, beam_args = _split_beam_args(list(sys.argv[1:] if argv is None else argv))
    args = make_parser().parse_args(own)
    if args.command in BEAM_COMMANDS:
        quiet_logging()
    else:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if beam_args and args.command != "build":
        print(f"mixtape {args.command}: arguments after `--` are Beam options and only `build` takes them",
              file=sys.stderr)
        return 2
    try:
        return args.func(args, beam_args)
    except ModuleNotFoundError as e:
        if e.name not in TRAINING_STACK:
            raise
        print(f"mixtape {args.command}: needs the training stack ({e.name} is not installed): "
              "pip install 'mixtape[train]' (torch, webdataset, scikit-learn, tqdm, braceexpand)", file=sys.stderr)
        return 2
    except (MixtapeError, FileExistsError, FileNotFoundError) as e:  # every error a user can act on
        print(f"mixtape {args.command}: {e}", file=sys.stderr)
        return 2

"""What every command family shares: the one-line descriptions, usage errors, option helpers and the
build summary that ``build`` and ``demo`` both print."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from mixtape.errors import MixtapeError

COMMANDS = {
    "build": "build a dataset (WebDataset shards + index + card) from a spec with Apache Beam",
    "train": "train a model on shards given by URL (local path, file://, http(s)://, gs://, s3://)",
    "evaluate": "score a trained run on shards: per-clip ROC/PR-AUC, accuracy + confusion, MIREX key, tempo Acc1/2",
    "embed": "write per-clip embeddings (penultimate features of a trained run) to Parquet",
    "probe": "cross-validate a kNN or logistic-regression probe on an embeddings table",
    "baseline": "the non-learned key (chroma + key profiles) and tempo (onset autocorrelation) baseline",
    "report": "write an HTML report of a dataset: plots, spectrograms, audio players, attribution",
    "inspect": "summarise a built dataset from its card (counts, splits, rejects, vocabularies)",
    "export": "write a dataset as Lhotse Shar (cuts + recording shards per split) for Lhotse's samplers",
    "env": "print the install commands that recreate the package versions a dataset's card recorded",
    "verify": "check a dataset against its card (shards, samples, index); optionally re-render a sample of shards",
    "demo": "generate the embedded demo collection, build it, train briefly and print what happened",
    "freesound": "search Freesound (API v2) or download a search's sounds into a local dump (resumable)",
    "fsd50k": "unpack the FSD50K release (split zips) into the layout `kind: fsd50k` reads",
}


class UsageError(MixtapeError, ValueError):
    """A command-line value that cannot work; the message names the option and the fix."""


def build_summary(card: dict[str, Any]) -> list[str]:
    acc = card["accounting"]
    lines = [f"clips in {acc['clips_in']} = used {acc['clips_used']} + rejected {acc['clips_rejected']}"]
    for reason, n in acc["rejects_by_reason"].items():
        lines.append(f"  rejected {n} x {reason}")
    for split, s in card["splits"].items():
        lines.append(f"{split:>6}: {s['samples']:5d} samples in {len(s['shards']):3d} shards from "
                     f"{s['clips']:4d} clips ({s['sample_seconds'] / 60:.1f} min of samples)")
    aug = card.get("augmentation", {})
    if aug.get("augmented_samples"):
        lines.append(f"augmented: {aug['augmented_samples']} samples ("
                     + ", ".join(f"{op} {n}" for op, n in aug["ops"].items()) + ")")
    vocab = card["vocabularies"]
    lines.append(f"vocabularies: {len(vocab['tags'])} tags; classes "
                 + (", ".join(f"{k} ({len(v)})" for k, v in vocab["classes"].items()) or "none"))
    lines += [f"WARNING: {w}" for w in empty_splits(card)]
    lines += [f"WARNING: {w}" for w in card.get("_build", {}).get("warnings", [])]
    return lines


def empty_splits(card: dict[str, Any]) -> list[str]:
    """A warning per split without samples (and one for a dataset without any)."""
    out = [f"split {name} has no samples" for name, s in card["splits"].items() if not s["samples"]]
    if card["splits"] and all(not s["samples"] for s in card["splits"].values()):
        out.append("the build wrote no samples at all: see the rejects above (`mixtape inspect` lists them)")
    return out


def add_evaluation_shards(p: argparse.ArgumentParser) -> None:
    """The shards that evaluate, embed and baseline read: URLs, or a dataset and one of its splits."""
    p.add_argument("--shards", required=True, help="shard URLs (brace-expanded) or a dataset folder/URL")
    from mixtape.train.config import EVAL_SPLIT

    p.add_argument("--split", default=EVAL_SPLIT, help=f"which split of a dataset folder (default {EVAL_SPLIT})")


class Deprecated(argparse.Action):
    """An old option spelling that still works and says what replaced it."""

    def __init__(self, option_strings: list[str], dest: str, new: str, **kw: Any):
        super().__init__(option_strings, dest, **kw)
        self.new = new

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        print(f"mixtape: {option_string} is deprecated; use {self.new}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def loader_workers(group: Any, default: int) -> None:
    """``--loader-workers``: DataLoader processes (``--workers`` means Beam worker processes in build and
    demo; here it still works, with a deprecation message)."""
    group.add_argument("--loader-workers", dest="workers", type=int, default=default,
                       help="DataLoader worker processes per rank")
    group.add_argument("--workers", dest="workers", type=int, help=argparse.SUPPRESS, action=Deprecated,
                       new="--loader-workers", default=argparse.SUPPRESS)

"""A built dataset as one object: ``open_dataset(DIR or URL)`` reads and checks its card once and answers
what every command asks of a dataset (its splits, a split's shard URLs, the index, a verification), so no
caller rebuilds card paths or shard URLs by hand, and an empty or missing split is one clear error
wherever it is met.

It sits above the card, index and verify modules it composes (a job-level layer, see
``tests/test_layers.py``); those stay usable on their own."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mixtape import storage
from mixtape.dataset.card import CardError, read_card, shard_names
from mixtape.dataset.index import read_index
from mixtape.dataset.names import CARD_NAME, INDEX_NAME
from mixtape.errors import MixtapeError
from mixtape.untrusted import show

if TYPE_CHECKING:
    from mixtape.dataset.verify import VerifyReport


class DatasetError(MixtapeError, ValueError):
    pass


def dataset_location(where: str) -> str:
    """The dataset folder (or URL) named by ``where``: the folder itself, or its card's path."""
    where = where.strip().rstrip("/")
    return where[: -len(CARD_NAME)].rstrip("/") if where.endswith(f"/{CARD_NAME}") or where == CARD_NAME else where


@dataclass(frozen=True)
class Dataset:
    """An opened dataset: where it is and its validated card (names in it are checked, never trusted)."""

    location: str
    card: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.card["name"])

    @property
    def spec_hash(self) -> str:
        return str(self.card["spec_hash"])

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(self.card["splits"])

    def samples(self, split: str) -> int:
        return int(self._split(split)["samples"])

    def shard_names(self, split: str | None = None) -> list[str]:
        """Shard file names in card order, of one split or of all."""
        if split is not None:
            self._split(split)
        return shard_names(self.card, split)

    def shards(self, split: str) -> list[str]:
        """The split's shard URLs; a split the build left empty is an error naming the cause."""
        if not self.samples(split):
            raise DatasetError(f"split {show(split)} has no samples in {self.location} (its build rejected or "
                               "left out every clip of it: `mixtape inspect` lists the rejects)")
        return [f"{self.location}/{name}" for name in self.shard_names(split)]

    def index(self, columns: list[str] | None = None) -> list[dict[str, Any]]:
        """The index rows (only ``columns``, when given)."""
        uri = storage.join(self.location, INDEX_NAME)
        if not storage.exists(uri):
            raise DatasetError(f"{self.location} has no {INDEX_NAME}: rebuild it, or copy the whole folder")
        return read_index(uri, columns)

    def verify(self, rerender_fraction: float = 0.0, seed: int = 0, spec_path: str | None = None) -> VerifyReport:
        """``mixtape verify``: every shard against the card, and a seeded share of them rendered again."""
        from mixtape.dataset.verify import verify

        return verify(self.location, rerender_fraction, seed, spec_path)

    def _split(self, split: str) -> dict[str, Any]:
        if split not in self.card["splits"]:
            raise DatasetError(f"the dataset has no {show(split)} split; it has: {', '.join(self.splits)}")
        return self.card["splits"][split]


def open_dataset(where: str) -> Dataset:
    """The dataset in folder or URL ``where`` (or named by its card's path), its card read and checked."""
    location = dataset_location(where)
    card_url = f"{location}/{CARD_NAME}"
    if not storage.is_remote(location) and not storage.exists(card_url):
        raise DatasetError(f"{show(where)} has no {CARD_NAME}: pass the folder `mixtape build --out` wrote")
    try:
        return Dataset(location, read_card(card_url))
    except CardError as e:
        raise DatasetError(str(e)) from None

"""A dataset as Hugging Face ``datasets`` loads it: ``load_dataset("webdataset", ...)`` over the shards,
with the card's features, so every row arrives typed without a look at the data.

::

    from datasets import load_dataset
    from mixtape.dataset.api import open_dataset
    from mixtape.dataset.hf import hf_data_files, hf_features

    ds = open_dataset("DIR")
    train = load_dataset("webdataset", data_files=hf_data_files(ds), features=hf_features(ds.card),
                         split="train")
    row = train[0]   # row["flac"]: the encoded audio; row["json"]["labels"]["classes"]["genre"], ...

The audio column is the encoded bytes (``soundfile.read(io.BytesIO(row["flac"]))`` decodes it): ``datasets``'
own ``Audio`` feature needs ``torchcodec`` and FFmpeg's shared libraries, which a mixtape environment does
not otherwise need. The JSON column is a struct of the fields every sample has, its class fields those the
card's vocabularies list; the rest of the sample JSON (window, augmentation steps, extra labels) stays in the
shards and ``index.parquet``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mixtape.dataset.api import Dataset


def hf_data_files(dataset: Dataset) -> dict[str, list[str]]:
    """Every split that has samples -> its shard URLs (what ``data_files`` takes)."""
    return {split: dataset.shards(split) for split in dataset.splits if dataset.samples(split)}


def hf_features(card: dict[str, Any]) -> Any:
    """The ``datasets.Features`` of a mixtape sample as the webdataset loader reads it."""
    from datasets import Features, Value

    text = Value("string")
    labels = {"tags": [text], "classes": {field: text for field in card["vocabularies"]["classes"]},
              "key": {"tonic": text, "mode": text}, "tempo": Value("float64")}
    sample = {"key": text, "clip_id": text, "split": text, "variant": Value("int64"), "licence": text,
              "attribution": text, "labels": labels}
    return Features({"__key__": text, "__url__": text, card["audio"]["format"]: Value("binary"), "json": sample})

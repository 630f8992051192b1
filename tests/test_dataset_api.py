"""``open_dataset``: one object for a built dataset, answering what every command asks of it."""

from __future__ import annotations

import pytest

from mixtape.dataset.api import Dataset, DatasetError, dataset_location, open_dataset


def test_a_dataset_opens_by_folder_or_card_path_and_lists_its_shards(tiny_build, http_server):
    out, built = tiny_build
    card = {k: v for k, v in built.items() if k != "_build"}  # build() adds what went to build.json
    for where in (str(out), f"{out}/", str(out / "dataset.json")):
        ds = open_dataset(where)
        assert ds.location == str(out) and ds.card == card and ds.spec_hash == card["spec_hash"]
    assert ds.splits == tuple(card["splits"])
    for split, info in card["splits"].items():
        names = [s["name"] for s in info["shards"]]
        assert ds.shard_names(split) == names and ds.samples(split) == info["samples"]
        if info["samples"]:
            assert ds.shards(split) == [f"{out}/{n}" for n in names]
            assert all((out / n).is_file() for n in names)
    rows = ds.index(["split", "shard"])
    assert len(rows) == sum(i["samples"] for i in card["splits"].values())
    assert {r["shard"] for r in rows} <= set(ds.shard_names())
    assert ds.verify().ok
    remote = open_dataset(http_server(out))  # over real HTTP: the card read from the server
    assert remote.card == card and remote.shards("train")[0].startswith("http://127.0.0.1:")


def test_a_missing_folder_an_unknown_split_and_an_empty_split_are_one_clear_error(tiny_build, tmp_path):
    out, built = tiny_build
    card = {k: v for k, v in built.items() if k != "_build"}
    with pytest.raises(DatasetError, match=r"has no dataset\.json"):
        open_dataset(str(tmp_path / "nothing"))
    ds = open_dataset(str(out))
    with pytest.raises(DatasetError, match="no holdout split; it has: test, train, valid"):
        ds.shards("holdout")
    emptied = {**card, "splits": {**card["splits"], "test": {**card["splits"]["test"], "samples": 0}}}
    with pytest.raises(DatasetError, match="split test has no samples"):
        Dataset(str(out), emptied).shards("test")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "dataset.json").write_text('{"name": 1}')
    with pytest.raises(DatasetError, match=r"dataset\.json"):
        open_dataset(str(tmp_path / "bad"))


def test_the_location_is_the_folder_whatever_names_it():
    assert dataset_location("s3://b/ds/dataset.json") == "s3://b/ds"
    assert dataset_location("  /data/ds/ ") == "/data/ds"
    assert dataset_location("http://h:8000/ds") == "http://h:8000/ds"

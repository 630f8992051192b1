"""The parsed-score cache: a hit is the performance a parse gives, and anything else in its folder is a miss."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from music21 import corpus

from mixtape.sources.score import parsed
from mixtape.sources.score.formats import ScoreError, read_performance
from mixtape.sources.score.parsed import cache_dir, from_json, parsed_performance, performance_key, to_json

ABC = b"X:1\nT:Tune\nM:3/4\nL:1/8\nQ:1/4=96\nK:D\nDEF GAB|c2 d2 e2|]\n"


def corpus_bytes(name: str) -> bytes:
    return Path(corpus.getWork(name)).read_bytes()


@pytest.fixture
def own_cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("MIXTAPE_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(parsed, "_memory", type(parsed._memory)())  # this test's process memory starts empty
    return tmp_path / "performances"


@pytest.mark.parametrize("name, fmt", [("bach/bwv66.6", "mxl"), ("palestrina/Agnus_01", "humdrum"), (None, "abc")])
def test_a_cached_performance_is_the_parsed_one(own_cache, name, fmt):
    data = ABC if name is None else corpus_bytes(name)
    fresh = read_performance(data, fmt)
    first = parsed_performance(data, fmt)
    assert first == fresh
    stored = own_cache / f"{performance_key(data, fmt, 0)}.json"
    assert stored.is_file()
    parsed._memory.clear()
    assert parsed_performance(data, fmt) == fresh  # now read back from disk
    assert from_json(json.loads(stored.read_text())) == fresh


def test_a_hit_is_read_from_the_folder_not_parsed_again(own_cache):
    data = ABC
    perf = parsed_performance(data, "abc")
    stored = own_cache / f"{performance_key(data, 'abc', 0)}.json"
    doc = json.loads(stored.read_text())
    doc["title"] = "written by the cache"
    stored.write_text(json.dumps(doc))
    parsed._memory.clear()
    assert parsed_performance(data, "abc").title == "written by the cache"
    assert perf.title == "Tune"


@pytest.mark.parametrize("junk", [b"", b"not json", b"[]", json.dumps({"parts": [["v", None, False]], "notes":
                                  [[0, 1, 60, 80, 3]]}).encode(), b'{"parts": "__import__"}'])
def test_anything_else_in_the_folder_is_a_miss_and_replaced(own_cache, junk):
    key = performance_key(ABC, "abc", 0)
    own_cache.mkdir(parents=True)
    (own_cache / f"{key}.json").write_bytes(junk)
    assert parsed_performance(ABC, "abc") == read_performance(ABC, "abc")
    assert from_json(json.loads((own_cache / f"{key}.json").read_text())) == read_performance(ABC, "abc")


def test_the_key_holds_bytes_format_tune_and_versions(monkeypatch):
    base = performance_key(ABC, "abc", 0)
    assert performance_key(ABC + b" ", "abc", 0) != base
    assert performance_key(ABC, "abc", 1) != base
    assert performance_key(ABC, "musicxml", 0) != base
    monkeypatch.setattr(parsed, "PARSE_VERSION", parsed.PARSE_VERSION + 1)
    assert performance_key(ABC, "abc", 0) != base


def test_errors_are_not_cached_and_off_writes_nothing(own_cache, monkeypatch):
    with pytest.raises(ScoreError):
        parsed_performance(b"X:1\nK:C\n", "abc", tune=4)
    assert not own_cache.exists() or not list(own_cache.iterdir())
    monkeypatch.setenv("MIXTAPE_CACHE_DIR", "off")
    assert cache_dir() is None
    assert parsed_performance(ABC, "abc") == read_performance(ABC, "abc")
    assert not own_cache.exists()


def test_an_unwritable_folder_only_costs_a_parse(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder would go")
    monkeypatch.setenv("MIXTAPE_CACHE_DIR", str(blocker))
    monkeypatch.setattr(parsed, "_memory", type(parsed._memory)())
    assert parsed_performance(ABC, "abc") == read_performance(ABC, "abc")
    assert blocker.read_text().startswith("a file")


def test_the_json_shape_round_trips_every_field():
    perf = read_performance(corpus_bytes("bach/bwv66.6"), "mxl")
    again = from_json(json.loads(json.dumps(to_json(perf))))
    assert again == perf and again.notes == perf.notes and again.key_signature == perf.key_signature

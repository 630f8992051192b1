from pathlib import Path

import pytest
import yaml

from mixtape.spec import SpecError, load_spec, parse_spec, spec_from_dict

MINIMAL = {"name": "x", "seed": 1, "sources": [{"kind": "folder", "path": "audio"}]}


def problems(raw) -> list[str]:
    with pytest.raises(SpecError) as e:
        parse_spec(raw)
    return e.value.problems


def test_minimal_spec_gets_defaults():
    spec = parse_spec(MINIMAL)
    assert spec.audio.sample_rate == 16000 and spec.audio.format == "flac"
    assert spec.split_names == ["train", "valid", "test"]
    assert spec.snippets.hop == spec.snippets.duration


@pytest.mark.parametrize("patch, field, hint", [
    ({"seed": "abc"}, "spec.seed", "whole number"),
    ({"name": "has space"}, "name", "letters"),
    ({"sources": []}, "sources", "list of sources"),
    ({"sources": [{"kind": "ftp", "path": "x"}]}, "sources[0].kind", "freesound_dump"),
    ({"sources": [{"kind": "folder"}]}, "sources[0].path", "required"),
    ({"audio": {"format": "mp3"}}, "audio.format", "flac"),
    ({"audio": {"sample_rate": 100}}, "audio.sample_rate", ">= 4000"),
    ({"audio": {"channels": 5}}, "audio.channels", "one of 1, 2"),
    ({"snippets": {"duration": 0}}, "snippets.duration", ">= 0.05"),
    ({"splits": {"fractions": {"train": 0.5, "valid": 0.2}}}, "splits.fractions", "add up to 1"),
    ({"splits": {"fractions": {"valid": 1.0}}}, "splits.fractions", "needs a `train` split"),
    ({"splits": {"group_by": "colour"}}, "splits.group_by", "pack"),
    ({"augment": {"variants": 2}}, "augment.variants", "chain is empty"),
    ({"augment": {"chain": [{"op": "reverse"}]}}, "augment.chain[0].op", "available: add_noise, clip"),
    ({"augment": {"chain": [{"op": "gain", "db": [6, -6]}]}}, "augment.chain[0].db", "low <= high"),
    ({"augment": {"chain": [{"op": "gain", "db": [-100, 0]}]}}, "augment.chain[0].db", "within"),
    ({"augment": {"chain": [{"op": "gain", "p": 2}]}}, "augment.chain[0].p", "<= 1"),
    ({"augment": {"chain": [{"op": "gain", "semitones": 2}]}}, "augment.chain[0].semitones", "unknown field"),
    ({"shards": {"max_samples": 0}}, "shards.max_samples", ">= 1"),
    ({"colour": "red"}, "spec.colour", "unknown field"),
])
def test_errors_name_the_field_and_the_fix(patch, field, hint):
    found = problems({**MINIMAL, **patch})
    assert any(p.startswith(field + ":") and hint in p for p in found), found


def test_all_problems_reported_at_once():
    found = problems({"name": "x", "sources": [{"kind": "folder", "path": "a"}], "audio": {"format": "ogg"},
                      "shards": {"max_samples": -1}})
    assert len(found) == 3  # missing seed, format, max_samples


def test_bad_yaml_names_the_file(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(f)


def test_yaml_is_loaded_safely(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("name: !!python/object/apply:os.system ['echo pwned']\nseed: 1\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(f)


def test_paths_resolve_against_the_spec_file_and_hash_ignores_location(tmp_path):
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "spec.yaml").write_text(yaml.safe_dump(MINIMAL))
    a, b = load_spec(tmp_path / "a" / "spec.yaml"), load_spec(tmp_path / "b" / "spec.yaml")
    assert a.sources[0].root == str(tmp_path / "a" / "audio")
    assert b.sources[0].root == str(tmp_path / "b" / "audio")
    assert a.spec_hash == b.spec_hash


def test_equivalent_specs_hash_equal_and_changes_change_the_hash():
    a = parse_spec(MINIMAL)
    b = parse_spec({**MINIMAL, "audio": {"sample_rate": 16000}})  # the default, spelled out
    c = parse_spec({**MINIMAL, "seed": 2})
    assert a.spec_hash == b.spec_hash != c.spec_hash


def test_normalised_spec_round_trips(tiny_spec):
    again = spec_from_dict(tiny_spec.to_dict(), Path(tiny_spec.sources[0].root).parents[1])
    assert again == tiny_spec and again.spec_hash == tiny_spec.spec_hash


def test_max_per_clip_is_validated_and_leaves_old_hashes_alone(tmp_path):
    base = {"name": "x", "seed": 1, "sources": [{"kind": "folder", "path": "a"}]}
    plain = parse_spec(base, tmp_path)
    capped = parse_spec({**base, "snippets": {"max_per_clip": 12}}, tmp_path)
    assert capped.snippets.max_per_clip == 12 and plain.snippets.max_per_clip == 0
    assert "max_per_clip" not in plain.to_dict()["snippets"] and capped.spec_hash != plain.spec_hash
    with pytest.raises(SpecError, match=r"snippets\.max_per_clip"):
        parse_spec({**base, "snippets": {"max_per_clip": -1}}, tmp_path)


def test_a_yaml_alias_bomb_is_refused_quickly_with_a_short_message(tmp_path):
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]  # 10^9 values
    f = tmp_path / "bomb.yaml"
    f.write_text("name: x\nseed: 1\nsources: [{kind: folder, path: a}]\n" + "\n".join(levels) + "\n")
    assert f.stat().st_size < 1000
    with pytest.raises(SpecError) as e:
        load_spec(f)
    message = str(e.value)
    assert "alias" in message and len(message) < 400, message


def test_values_in_messages_are_bounded(tmp_path):
    found = problems({**MINIMAL, "name": "x" * 100_000})
    assert all(len(p) < 400 for p in found) and any(p.startswith("name:") for p in found), found


def test_tiny_stable_shards_are_refused_and_balanced_ones_allowed():
    found = problems({**MINIMAL, "shards": {"max_samples": 1}})
    assert any(p.startswith("shards.max_samples:") and "scheme: balanced" in p for p in found), found
    assert parse_spec({**MINIMAL, "shards": {"max_samples": 1, "scheme": "balanced"}}).shards.max_samples == 1
    assert parse_spec({**MINIMAL, "shards": {"max_samples": 4}}).shards.max_samples == 4

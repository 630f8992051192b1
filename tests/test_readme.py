"""The documentation's spec examples are copy-paste material: each must be a valid spec (or source list)."""

import re

import yaml

from mixtape.spec import parse_spec
from mixtape.spec.model import SOURCE_KINDS
from tests import documentation


def test_every_yaml_example_in_the_docs_is_a_valid_spec():
    blocks = re.findall(r"```yaml\n(.*?)```", documentation.text(), flags=re.S)
    assert len(blocks) >= 7
    kinds = set()
    for block in blocks:
        raw = yaml.safe_load(block)
        if isinstance(raw, list):  # a list of sources
            raw = {"name": "readme", "seed": 1, "sources": raw}
        spec = parse_spec(raw)
        kinds |= {s.kind for s in spec.sources}
    assert kinds == set(SOURCE_KINDS)  # every kind of source has a tested example

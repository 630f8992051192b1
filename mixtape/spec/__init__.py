"""The dataset spec: ``model`` holds what a spec is (dataclasses, defaults, vocabularies), ``parse`` reads
one from YAML with errors that name the field and the fix."""

from mixtape.spec.model import AudioSpec, DatasetSpec, OpSpec, SourceSpec, SpecError
from mixtape.spec.parse import corpus_root, load_spec, parse_spec, spec_from_dict

__all__ = ["AudioSpec", "DatasetSpec", "OpSpec", "SourceSpec", "SpecError", "corpus_root", "load_spec",
           "parse_spec", "spec_from_dict"]

"""Beam pipelines: ingest -> plan -> render -> manifest. Pure planning logic lives in ``mixtape.planning``."""

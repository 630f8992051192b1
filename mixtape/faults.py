"""Fault injection, for proving that builds recover: off unless MIXTAPE_FAULTS is set.

``MIXTAPE_FAULTS`` holds comma-separated rules ``<point>:<key>=<action>``; ``key`` may be ``*``. Actions:
``fail*N`` raises :class:`InjectedFault` on the first N attempts (attempts are counted with marker files in
``MIXTAPE_FAULTS_DIR``, so the count survives retries in other processes), ``kill`` ends the process with
SIGKILL on the spot, as a preempted machine would. Points: ``render`` (key: shard name, hit after the
shard's first sample is written, so a killed build leaves a partial temporary file behind).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path


class InjectedFault(RuntimeError):
    pass


def inject(point: str, key: str) -> None:
    rules = os.environ.get("MIXTAPE_FAULTS", "")
    if not rules:
        return
    for rule in rules.split(","):
        where, _, action = rule.partition("=")
        rule_point, _, rule_key = where.partition(":")
        if rule_point != point or rule_key not in (key, "*"):
            continue
        if action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if action.startswith("fail*"):
            limit = int(action[len("fail*"):])
            counter = Path(os.environ.get("MIXTAPE_FAULTS_DIR", ".")) / f"{point}--{key.replace('/', '_')}"
            attempts = int(counter.read_text()) if counter.exists() else 0
            if attempts < limit:
                counter.write_text(str(attempts + 1))
                raise InjectedFault(f"injected failure {attempts + 1} of {limit} at {point} {key}")

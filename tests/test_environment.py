"""The project's environment is locked: requirements.lock pins every package with its sha256, it covers
everything pyproject.toml asks for, and the environment the tests run in is exactly the locked one."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import tomllib
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def _lock() -> dict[str, tuple[str, list[str]]]:
    """name (normalised) -> (version, hashes)."""
    text = (ROOT / "requirements.lock").read_text()
    entries: dict[str, tuple[str, list[str]]] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", "\n".join(x for x in text.splitlines() if not x.startswith("#"))):
        if not block.strip():
            continue
        head = block.split()[0]
        name, version = head.split("==")
        entries[re.sub(r"[-_.]+", "-", name).lower()] = (version, re.findall(r"--hash=sha256:([0-9a-f]{64})", block))
    return entries


def test_every_locked_package_has_an_exact_version_and_a_hash():
    lock = _lock()
    assert len(lock) > 50
    assert all(hashes for _, hashes in lock.values())
    assert lock["torch"][0].startswith("2.13.0") and lock["apache-beam"][0] == "2.77.0"
    assert "pyaudio" not in lock  # tinysoundfont's playback dependency stays out


def test_the_lock_satisfies_pyproject_and_covers_every_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in ("train", "dev", "s3", "gcs", "dataflow"):
        wanted += project["optional-dependencies"][extra]
    lock = _lock()
    for spec in wanted:
        req = Requirement(spec)
        name = re.sub(r"[-_.]+", "-", req.name).lower()
        assert name in lock, f"{req.name} is in pyproject.toml but not in requirements.lock: run `make lock`"
        assert req.specifier.contains(Version(lock[name][0]), prereleases=True), (spec, lock[name][0])


def test_the_tests_run_in_the_locked_environment():
    differs = []
    for name, (version, _) in _lock().items():
        try:
            here = metadata.version(name)
        except metadata.PackageNotFoundError:
            here = "absent"
        if here != version:
            differs.append(f"{name}: {version} locked, {here} here")
    assert not differs, "the environment is not the locked one (make setup installs it): " + "; ".join(differs)

"""Write requirements.lock: resolve `.[train,dev]` in a fresh virtual environment the way `make setup` once
did (torch pinned first, tinysoundfont without its PyAudio), then record every installed distribution at its
exact version with the sha256 of the file pip fetched for this platform.

Run by `make lock` after pyproject.toml changes; the lock is what `make setup` installs with
`--require-hashes`, so CI and every developer run the same bytes of every package.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADER = """\
# The environment `make setup` installs (so `make demo`, `make test` and CI run on): every package of the
# build, the trainer and the tests at an exact version with its sha256, installed with
# `pip install --require-hashes --no-deps -r requirements.lock` (then mixtape itself, editable).
# Made for CPython 3.11 on Linux x86-64, the machine CI runs on: torch is the CPU wheel; tinysoundfont
# is listed without PyAudio (its wheel declares it for live playback, which mixtape never uses).
# Regenerate after changing pyproject.toml: `make lock` (it resolves `.[train,dev]` afresh).
"""


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _run(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="mixtape-lock-") as tmp:
        venv, wheels = Path(tmp) / "venv", Path(tmp) / "wheels"
        _run(sys.executable, "-m", "venv", str(venv))
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        _run(*pip, "--upgrade", "pip", "setuptools", "wheel")
        _run(*pip, "torch==2.13.0")
        _run(*pip, "--no-deps", "tinysoundfont==0.3.7")
        _run(*pip, f"{ROOT}[train,dev]")
        frozen = [line for line in _run(str(venv / "bin" / "python"), "-m", "pip", "freeze").splitlines()
                  if "==" in line and not line.lower().startswith("mixtape==")]
        _run(str(venv / "bin" / "python"), "-m", "pip", "download", "--quiet", "--no-deps", "-d", str(wheels),
             *frozen)
        files: dict[tuple[str, str], list[Path]] = {}
        for f in wheels.iterdir():
            base = f.name[: -len(".tar.gz")] if f.name.endswith(".tar.gz") else f.name
            dist, version = (base.split("-")[:2] if f.name.endswith(".whl") else base.rsplit("-", 1))
            files.setdefault((_norm(dist), version), []).append(f)
        lines = [HEADER]
        for req in sorted(frozen, key=lambda r: _norm(r.split("==")[0])):
            name, version = req.split("==")
            found = files.get((_norm(name), version)) or files.get((_norm(name), version.replace("-", "_")))
            if not found:
                raise SystemExit(f"no downloaded file for {req}")
            hashes = sorted(hashlib.sha256(f.read_bytes()).hexdigest() for f in found)
            lines.append(" \\\n    ".join([req, *(f"--hash=sha256:{h}" for h in hashes)]))
    (ROOT / "requirements.lock").write_text("\n".join(lines) + "\n")
    print(f"requirements.lock: {len(lines) - 1} packages")


if __name__ == "__main__":
    main()

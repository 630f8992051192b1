"""The project's prose as the tests read it: the README front page and every page of the docs site."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"


def pages() -> list[Path]:
    """The README first, then the site's pages in name order."""
    return [README, *sorted(DOCS.glob("*.md"))]


def text() -> str:
    """Every page's text, joined, for the tests that hold code blocks and tables in the docs to the code."""
    return "\n\n".join(p.read_text(encoding="utf-8") for p in pages())

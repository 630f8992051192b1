"""The documentation holds together: the site builds strictly, and every link the README makes lands.

MkDocs' strict build fails on a page missing from the nav, a link to a page that does not exist, or an
anchor no heading makes; the README is not part of the site, so its links are checked here against the
built pages' ids (the same slugs a browser would jump to).
"""

from __future__ import annotations

import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from tests import documentation

LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
                         cwd=documentation.ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    return out


class _Ids(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.ids |= {v for k, v in attrs if k == "id" and v}


def _ids(page: Path) -> set[str]:
    parser = _Ids()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser.ids


def test_the_site_builds_strictly_with_every_page_in_its_nav(site):
    nav = yaml.safe_load((documentation.ROOT / "mkdocs.yml").read_text())["nav"]
    listed = {next(iter(entry.values())) for entry in nav}
    assert listed == {p.name for p in documentation.DOCS.glob("*.md")}
    for name in listed:
        built = site / ("index.html" if name == "index.md" else f"{name.removesuffix('.md')}/index.html")
        assert built.is_file(), name
    assert (site / "scarcity.png").is_file() and (site / "report.png").is_file()


def test_every_relative_link_in_the_readme_lands_on_a_file_and_an_anchor(site):
    text = documentation.README.read_text(encoding="utf-8")
    checked = 0
    for target in LINK.findall(text):
        if re.match(r"[a-z]+://", target):
            continue
        path, _, anchor = target.partition("#")
        assert (documentation.ROOT / path).exists(), f"README links to {path}, which does not exist"
        if anchor:
            assert path.startswith("docs/") and path.endswith(".md"), target
            page = site / path.removeprefix("docs/").removesuffix(".md") / "index.html"
            assert anchor in _ids(page), f"README links to #{anchor}, which {path} has no heading for"
        checked += 1
    assert checked >= 10  # the documentation table alone links every page


def test_the_readme_links_every_page_of_the_site():
    text = documentation.README.read_text(encoding="utf-8")
    linked = {t.partition("#")[0] for t in LINK.findall(text)}
    missing = [f"docs/{p.name}" for p in documentation.DOCS.glob("*.md")
               if p.name != "index.md" and f"docs/{p.name}" not in linked]
    assert not missing, f"the README's documentation table lacks {missing}"

"""The HTML report: opened in a real headless Chromium, every image and audio element must load."""

import functools
import html.parser
import http.server
import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from mixtape.cli import main
from mixtape.report.page import write_report

pytestmark = pytest.mark.slow

HARNESS = """<!doctype html><html><body><pre id="out">pending</pre>
<iframe id="r" src="report/index.html" style="width:1200px;height:900px"></iframe>
<script>
const frame = document.getElementById('r');
function audioLoads(a) {
  return new Promise(resolve => {
    if (a.readyState >= 1) { resolve(true); return; }
    a.addEventListener('loadedmetadata', () => resolve(true));
    (a.querySelector('source') || a).addEventListener('error', () => resolve(false));
    a.load();
  });
}
frame.addEventListener('load', async () => {
  const d = frame.contentDocument;
  const images = [...d.images];
  await Promise.all(images.map(i => i.decode().catch(() => null)));
  const audios = [...d.querySelectorAll('audio')];
  const ok = await Promise.all(audios.map(audioLoads));
  const result = {
    images: images.length,
    broken_images: images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src')),
    audios: audios.length,
    broken_audio: audios.filter((a, k) => !ok[k] || !(a.duration > 0))
                        .map(a => a.querySelector('source').getAttribute('src')),
    durations: audios.map(a => a.duration),
    links: [...d.querySelectorAll('a')].map(a => a.getAttribute('href')),
  };
  await fetch('/result', {method: 'POST', body: JSON.stringify(result)});
});
</script></body></html>
"""


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium, installed by the test setup when the machine lacks it."""
    path = shutil.which("chromium")
    if path is None:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
        if subprocess.run(install, env=env, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update"], env=env, check=True, capture_output=True)
            subprocess.run(install, env=env, check=True, capture_output=True)
        path = shutil.which("chromium")
    assert path, "chromium could not be installed"
    return path


class _Elements(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.counts = {"img": 0, "audio": 0, "script": 0}

    def handle_starttag(self, tag, attrs):
        if tag in self.counts:
            self.counts[tag] += 1


def _serve(folder: Path):
    got = threading.Event()
    box: dict = {}

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):  # the harness reports its findings here
            box["result"] = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(204)
            self.end_headers()
            got.set()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}", got, box


BROWSER = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]


def test_the_demo_report_loads_every_image_and_audio_in_headless_chromium(demo_dataset, chromium, tmp_path):
    site = tmp_path / "site"
    page = write_report(str(demo_dataset), str(site / "report"), examples=2)
    text = page.read_text()
    parser = _Elements()
    parser.feed(text)
    assert parser.counts["script"] == 0 and parser.counts["img"] >= 10 and parser.counts["audio"] >= 6
    for section in ("summary", "labels", "audio", "augmentation", "licences", "examples", "attribution"):
        assert f'id="{section}"' in text
    (site / "check.html").write_text(HARNESS)
    server, base, got, box = _serve(site)
    try:
        browser = subprocess.Popen([chromium, *BROWSER, "--remote-debugging-port=0",
                                    f"--user-data-dir={tmp_path / 'profile'}", f"{base}/check.html"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            assert got.wait(120), "the harness never reported"
        finally:
            browser.kill()
            browser.wait()
        shot = tmp_path / "report.png"
        subprocess.run([chromium, *BROWSER, f"--user-data-dir={tmp_path / 'profile2'}", f"--screenshot={shot}",
                        "--window-size=1200,1800", f"{base}/report/index.html"], capture_output=True, timeout=120,
                       check=True)
    finally:
        server.shutdown()
    result = box["result"]
    assert result["images"] == parser.counts["img"] and result["broken_images"] == []
    assert result["audios"] == parser.counts["audio"] and result["broken_audio"] == []
    assert all(abs(d - 3.0) < 0.01 for d in result["durations"])  # 3 s demo snippets, decoded by the browser
    assert all(h.startswith(("http://", "https://")) for h in result["links"])  # no network needed to view
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    if os.environ.get("MIXTAPE_REPORT_SCREENSHOT"):  # how docs/report.png is made
        shutil.copyfile(shot, os.environ["MIXTAPE_REPORT_SCREENSHOT"])


def test_collection_text_is_escaped_and_only_web_links_become_anchors(tiny_build, tmp_path):
    out, _ = tiny_build
    copy = tmp_path / "data"
    shutil.copytree(out, copy)
    card = json.loads((copy / "dataset.json").read_text())
    card["attribution"][0].update(title='<script>alert("x")</script>', url="javascript:alert(1)")
    (copy / "dataset.json").write_text(json.dumps(card))
    text = write_report(str(copy)).read_text()
    assert "<script>alert" not in text and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in text
    assert 'href="javascript:' not in text and "javascript:alert(1)" in text


def test_only_the_example_shards_are_opened(tiny_build, tmp_path, monkeypatch):
    from mixtape import storage

    out, card = tiny_build
    opened: list[str] = []
    real = storage.open_url

    def counting(url):
        opened.append(url)
        return real(url)

    monkeypatch.setattr(storage, "open_url", counting)
    write_report(str(out), str(tmp_path / "r"), examples=1)
    all_shards = sum(len(s["shards"]) for s in card["splits"].values())
    assert 0 < len(opened) <= 2 * len(card["splits"]) < all_shards  # examples (and originals) only


def test_report_command(tiny_build, tmp_path, capsys):
    out, _ = tiny_build
    assert main(["report", str(out), "--out", str(tmp_path / "r")]) == 0
    assert "report:" in capsys.readouterr().out and (tmp_path / "r" / "index.html").exists()
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "has no dataset.json" in capsys.readouterr().err


def test_the_report_is_the_same_bytes_each_time(tiny_build, tmp_path):
    out, _ = tiny_build
    a = write_report(str(out), str(tmp_path / "a")).parent
    b = write_report(str(out), str(tmp_path / "b")).parent
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)


@pytest.fixture()
def report_copy(tiny_build, tmp_path):
    out, _ = tiny_build
    copy = tmp_path / "data"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("report"))
    return copy


def test_numbers_from_the_card_and_build_json_never_reach_the_page_as_markup(report_copy, capsys):
    build_info = json.loads((report_copy / "build.json").read_text())
    build_info.update(wall_seconds="<script>alert(1)</script>", workers="<img src=x onerror=alert(2)>")
    (report_copy / "build.json").write_text(json.dumps(build_info))
    text = write_report(str(report_copy)).read_text()
    assert "<script>alert(1)" not in text and "<img src=x" not in text
    card = json.loads((report_copy / "dataset.json").read_text())
    card["splits"]["train"]["samples"] = "<script>alert(3)</script>"
    (report_copy / "dataset.json").write_text(json.dumps(card))
    assert main(["report", str(report_copy)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "splits.train.samples" in err and "Traceback" not in err, err
    assert "<script>alert(3)" not in (report_copy / "report" / "index.html").read_text()


@pytest.mark.parametrize("damage", [b"", b"{not json", b"[" * 100_000, b"\xff\xfe"])
def test_a_damaged_card_is_one_line_not_a_traceback(report_copy, capsys, damage):
    (report_copy / "dataset.json").write_bytes(damage)
    assert main(["report", str(report_copy)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mixtape report: ") and "dataset.json" in err, err


def test_report_out_keeps_every_file_it_did_not_write(report_copy, tmp_path, capsys):
    folder = tmp_path / "mine"
    (folder / "assets").mkdir(parents=True)
    (folder / "notes.txt").write_text("keep me")
    (folder / "assets" / "logo.png").write_bytes(b"my logo")
    write_report(str(report_copy), str(folder))
    write_report(str(report_copy), str(folder))  # a second report replaces only the first one's files
    assert (folder / "notes.txt").read_text() == "keep me"
    assert (folder / "assets" / "logo.png").read_bytes() == b"my logo"
    own = json.loads((folder / "assets" / ".mixtape-assets").read_text())
    assert sorted(p.name for p in (folder / "assets").iterdir()) == sorted([*own, ".mixtape-assets", "logo.png"])

    other = tmp_path / "other"
    (other / "assets").mkdir(parents=True)
    (other / "assets" / "0001.png").write_bytes(b"a file named like a report's")
    assert main(["report", str(report_copy), "--out", str(other)]) == 2
    assert "does not overwrite files it did not write" in capsys.readouterr().err
    assert (other / "assets" / "0001.png").read_bytes() == b"a file named like a report's"

    page = tmp_path / "site"
    page.mkdir()
    (page / "index.html").write_text("<html>my homepage</html>")
    assert main(["report", str(report_copy), "--out", str(page)]) == 2
    assert "is not a mixtape report" in capsys.readouterr().err
    assert (page / "index.html").read_text() == "<html>my homepage</html>"


def test_a_rebuild_says_the_report_inside_the_dataset_is_stale(tiny_root, tiny_spec, tmp_path):
    from mixtape.pipelines.build import RunnerConfig, build

    out = tmp_path / "ds"
    first = build(tiny_spec, str(out), RunnerConfig(workers=1))
    assert first["_build"]["warnings"] == []
    write_report(str(out))
    again = build(tiny_spec, str(out), RunnerConfig(workers=1), overwrite=True)
    (warning,) = again["_build"]["warnings"]
    assert "report/index.html describes the previous build and is now stale" in warning
    assert (out / "report" / "index.html").exists()  # the user's to rewrite, never deleted by a build


def test_report_says_each_section_as_it_writes_it(report_copy, capsys):
    assert main(["report", str(report_copy)]) == 0
    lines = capsys.readouterr().out.splitlines()
    steps = [x for x in lines if x.startswith("report [")]
    assert len(steps) == 7 and steps[0] == "report [1/7] summary ..." and "examples" in steps[5]
    assert lines[-1].startswith("report: ")

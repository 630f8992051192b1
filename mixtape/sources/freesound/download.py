"""``mixtape freesound download``: a search's sounds into a local Freesound dump, resumably.

The dump is the layout ``kind: freesound_dump`` reads: ``metadata.jsonl`` (one API sound object per line,
appended only once its audio is complete) and ``audio/<id>.<ext>``. State for resuming lives in
``.freesound/``: the query, and every search page as fetched. A rerun after an interruption fetches no page
twice, skips every finished sound, and continues a half-downloaded file with an HTTP Range request.
"""

from __future__ import annotations

import functools
import json
import os
import posixpath
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mixtape.sources.freesound.client import FreesoundClient, FreesoundError, next_link
from mixtape.untrusted import brief, show

STATE_DIR = ".freesound"
#: Fields requested from the API: what the dump reader and the dataset card need.
FIELDS = ["id", "name", "tags", "username", "license", "duration", "samplerate", "channels", "bitdepth", "pack",
          "type", "url", "previews", "filesize", "md5", "geotag", "created", "description"]
PREVIEWS = ("hq-ogg", "hq-mp3", "lq-ogg", "lq-mp3")


@dataclass
class DownloadReport:
    pages_fetched: int = 0
    sounds_listed: int = 0
    downloaded: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    failed: list[tuple[int, str]] = field(default_factory=list)


def preview_url(sound: dict[str, Any], which: str) -> str | None:
    """The preview URL of one quality; ``previews`` may be an object (with hyphen or underscore keys) or a
    single URL string, as different captures of the API show."""
    previews = sound.get("previews")
    if isinstance(previews, str):
        return previews or None
    if not isinstance(previews, dict):
        return None
    for name in (which, *[p for p in PREVIEWS if p != which]):
        for key in (f"preview-{name}", f"preview_{name.replace('-', '_')}"):
            if previews.get(key):
                return previews[key]
    return None


def _extension(value: str, fallback: str) -> str:
    """A file extension for a downloaded sound, from a URL path or a server's ``type`` field. Both are the
    server's words, and they name a file here: anything but a short alphanumeric extension is refused."""
    ext = posixpath.splitext(urllib.parse.urlsplit(value).path)[1].lstrip(".").lower() if "/" in value or \
        "." in value else value.lower()
    return ext if re.fullmatch(r"[a-z0-9]{1,8}", ext or "") else fallback


class _State:
    def __init__(self, out: str):
        self.dir = os.path.join(out, STATE_DIR)
        self.query_file = os.path.join(self.dir, "query.json")
        self.pages_file = os.path.join(self.dir, "pages.jsonl")
        self.metadata_file = os.path.join(out, "metadata.jsonl")
        self.failures_file = os.path.join(out, "failures.jsonl")

    def check_query(self, query: dict[str, Any], restart: bool) -> None:
        os.makedirs(self.dir, exist_ok=True)
        if os.path.exists(self.query_file) and not restart:
            with open(self.query_file) as f:
                previous = json.load(f)
            same = {k: v for k, v in previous.items() if k != "max_sounds"} == \
                {k: v for k, v in query.items() if k != "max_sounds"}
            if not same:  # the same query with another --max continues (or extends) the download
                raise FreesoundError(f"{os.path.dirname(self.dir)} holds a download of another query "
                                     f"({previous}); use another --out, or --restart to replace it")
        elif restart:
            for name in (self.pages_file, self.failures_file):
                if os.path.exists(name):
                    os.remove(name)  # ok: the download's own state, on --restart
        _write_atomic(self.query_file, json.dumps(query, sort_keys=True))

    def pages(self) -> list[dict[str, Any]]:
        if not os.path.exists(self.pages_file):
            return []
        out = []
        with open(self.pages_file, encoding="utf-8") as f:
            for line in f:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    break  # a page line cut short by a kill: fetch that page again
        return out

    def done_ids(self) -> set[int]:
        if not os.path.exists(self.metadata_file):
            return set()
        ids = set()
        with open(self.metadata_file, encoding="utf-8") as f:
            for line in f:
                try:
                    ids.add(int(json.loads(line)["id"]))
                except (ValueError, KeyError, TypeError):
                    continue
        return ids


def _write_atomic(path: str, text: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)  # ok: our temporary file onto our own state file


def _append_line(path: str, obj: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(obj, ensure_ascii=False, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _fetch_from(client: FreesoundClient, sound: dict[str, Any], sid: int, originals: bool, preview: str
                ) -> tuple[str, str, bool] | None:
    """(URL, file extension, whether it needs OAuth) of what to download for a sound, or None when a
    preview was asked for and the search result offers none."""
    if originals:
        return f"{client.api_base}/sounds/{sid}/download/", _extension(str(sound.get("type") or ""), "wav"), True
    url = preview_url(sound, preview)
    return None if url is None else (url, _extension(url, "ogg"), False)


def _log_progress(log: Callable[[str], None], sid: int, n: int) -> None:
    log(f"{sid}: {n} bytes")


def download_dump(client: FreesoundClient, out: str, query: str, filter: str | None = None,
                  sort: str | None = None, max_sounds: int = 100, originals: bool = False, preview: str = "hq-ogg",
                  page_size: int = 150, restart: bool = False, log: Callable[[str], None] = print,
                  verbose: bool = False) -> DownloadReport:
    if originals and not client.can_download_originals:
        raise FreesoundError("original files need an OAuth2 token: set FREESOUND_OAUTH_TOKEN (or drop --originals "
                             "to download previews)")
    if preview not in PREVIEWS:
        raise FreesoundError(f"--preview must be one of {', '.join(PREVIEWS)}")
    os.makedirs(os.path.join(out, "audio"), exist_ok=True)
    state = _State(out)
    state.check_query({"query": query, "filter": filter, "sort": sort, "max_sounds": max_sounds,
                       "originals": originals, "preview": preview}, restart)
    report = DownloadReport()

    # 1. the search, page by page; every fetched page is recorded before it is used
    pages = state.pages()
    sounds = [s for p in pages for s in p["results"]]
    # no page larger than the sounds asked for (Freesound's own cap is 150)
    next_url = next_link(pages[-1]) if pages else client.search_url(query, filter, sort, FIELDS,
                                                                     max(1, min(page_size, max_sounds)))
    while next_url and len(sounds) < max_sounds:
        url, page = next(client.pages(next_url))
        _append_line(state.pages_file, {"url": url, "next": next_link(page), "results": page["results"]})
        report.pages_fetched += 1
        sounds.extend(page["results"])
        next_url = next_link(page)
    sounds = sounds[:max_sounds]
    report.sounds_listed = len(sounds)
    log(f"{len(sounds)} sounds listed ({report.pages_fetched} pages fetched now, {len(pages)} from before)")

    # 2. the audio, one sound at a time; a sound's metadata line is written only after its file is complete
    done = state.done_ids()
    for sound in sounds:
        raw_id = str(sound.get("id")) if isinstance(sound, dict) else ""
        if not re.fullmatch(r"[0-9]{1,18}", raw_id):  # ASCII digits: the id names a file in the dump
            report.failed.append((-1, f"result without a numeric id: {show(brief(sound), 80)}"))
            continue
        sid = int(raw_id)
        if sid in done:
            report.skipped.append(sid)
            continue
        source = _fetch_from(client, sound, sid, originals, preview)
        if source is None:
            report.failed.append((sid, "no preview URL in the search result"))
            _append_line(state.failures_file, {"id": sid, "reason": "no preview URL"})
            continue
        url, ext, oauth = source
        dest = os.path.join(out, "audio", f"{sid}.{ext}")
        expected = int(sound["filesize"]) if originals and sound.get("filesize") else None
        try:
            size = client.download(url, dest, oauth=oauth, expected_size=expected,
                                   progress=functools.partial(_log_progress, log, sid) if verbose else None)
        except FreesoundError as e:
            report.failed.append((sid, str(e)))
            _append_line(state.failures_file, {"id": sid, "reason": str(e)})
            log(f"failed {sid}: {e}")
            continue
        fetched = "original" if originals else f"preview-{preview}"
        record = {**sound, "type": ext, "mixtape_download": {"source": fetched, "url": url, "bytes": size}}
        if not originals and sound.get("type"):
            record["original_type"] = sound["type"]
        _append_line(state.metadata_file, record)
        done.add(sid)
        report.downloaded.append(sid)
        log(f"downloaded {sid}.{ext} ({size} bytes)")
    return report

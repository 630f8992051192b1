"""A local stand-in for Freesound: the API v2 search (paged with absolute ``next`` links, token auth),
original downloads (OAuth2 bearer) and a separate preview CDN host, with scripted faults (429 with
Retry-After, 500, a truncated body, a body that stops half-way and waits) and a request log.

The sound objects follow the shapes captured from the real API in shared/realdata: hyphenated
``previews`` keys, ``previews`` as a single URL string (freesound-datasets), underscore keys (mirdata),
``geotag`` null vs "lat lon", case-duplicated tags, non-ASCII names, ``created`` with microseconds.
"""

from __future__ import annotations

import io
import json
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import soundfile as sf

API_KEY = "test-key-0123456789"
OAUTH = "test-oauth-abcdef"


def ogg_bytes(seconds: float, freq: float) -> bytes:
    t = np.arange(int(seconds * 22050)) / 22050
    buf = io.BytesIO()
    sf.write(buf, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), 22050, format="OGG", subtype="VORBIS")
    return buf.getvalue()


def wav_bytes(seconds: float, freq: float) -> bytes:
    t = np.arange(int(seconds * 44100)) / 44100
    buf = io.BytesIO()
    sf.write(buf, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), 44100, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def make_sounds(cdn: str, n: int) -> list[dict[str, Any]]:
    sounds = []
    for i in range(n):
        sid = 1000 + i
        preview = f"{cdn}/previews/{sid // 1000}/{sid}_hq.ogg"
        if i % 4 == 1:
            previews: Any = preview  # single URL string, as in the freesound-datasets capture
        elif i % 4 == 2:
            previews = {"preview_hq_ogg": preview, "preview_lq_ogg": preview}  # underscore keys (mirdata)
        else:
            previews = {"preview-hq-ogg": preview, "preview-hq-mp3": preview.replace(".ogg", ".mp3"),
                        "preview-lq-ogg": preview, "preview-lq-mp3": preview.replace(".ogg", ".mp3")}
        sounds.append({
            "id": sid,
            "name": ["Sons mecànics “loop”.wav", "rain", "kick.flac", "piano C4"][i % 4] + f" {i}",
            "tags": ["Worst", "worst", "field-recording"] if i % 3 == 0 else ["piano"],
            "username": ["alice", "bob"][i % 2],
            "license": "http://creativecommons.org/licenses/by/4.0/" if i % 2 else
                       "http://creativecommons.org/publicdomain/zero/1.0/",
            "duration": 0.5, "samplerate": 44100.0, "channels": 1, "type": "wav", "filesize": 0,
            "pack": f"https://freesound.org/apiv2/packs/{77 + i % 2}/" if i % 3 else None,
            "geotag": None if i % 2 else "41.3851 2.1734",
            "created": "2014-04-14T18:20:31.723455",
            "description": "recorded\r\nat home",
            "url": f"https://freesound.org/people/x/sounds/{sid}/",
            "previews": previews,
        })
    return sounds


@dataclass
class LogEntry:
    host: str
    path: str
    range: str | None
    authorization: str | None
    status: int


@dataclass
class FakeFreesound:
    n_sounds: int = 7
    page_size: int = 3
    log: list[LogEntry] = field(default_factory=list)
    #: path (without query) or "search:<page>" -> actions consumed one per request: ("status", code, headers),
    #: ("truncate",), ("hang",), ("trickle",), ("redirect", code, location), ("huge", bytes)
    faults: dict[str, list[tuple]] = field(default_factory=dict)
    hang_started: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._servers = []
        self.cdn = self._start("cdn")
        self.api = self._start("api")
        self.elsewhere = self._start("elsewhere")  # a third host a redirect may point at
        self.api_base = f"{self.api}/apiv2"
        self.sounds = make_sounds(self.cdn, self.n_sounds)
        self.previews = {s["id"]: ogg_bytes(0.5 + 0.1 * i, 220 + 40 * i) for i, s in enumerate(self.sounds)}
        self.originals = {s["id"]: wav_bytes(0.3, 330 + 20 * i) for i, s in enumerate(self.sounds)}
        for s in self.sounds:
            s["filesize"] = len(self.originals[s["id"]])

    def _start(self, host: str) -> str:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                fake._handle(self, host)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    def close(self) -> None:
        self.release.set()
        for s in self._servers:
            s.shutdown()
            s.server_close()

    # ------------------------------------------------------------------------------------------------ routing
    def _handle(self, h: BaseHTTPRequestHandler, host: str) -> None:
        url = urllib.parse.urlsplit(h.path)
        query = urllib.parse.parse_qs(url.query)
        auth = h.headers.get("Authorization")
        key = url.path
        if host == "api" and url.path == "/apiv2/search/text/":
            key = f"search:{query.get('page', ['1'])[0]}"
        entry = LogEntry(host, h.path, h.headers.get("Range"), auth, 0)
        self.log.append(entry)  # on arrival, so the log keeps request order even when a response hangs
        h.log_entry = entry  # its status is set before the response goes out (see _respond)
        self._serve(h, host, url.path, query, auth, key)

    @staticmethod
    def _respond(h, code: int) -> None:
        """Record the status, then start the response: a client that has read the response must never
        see the request logged without its status."""
        h.log_entry.status = code
        h.send_response(code)

    def _fault(self, key: str) -> tuple | None:
        queue = self.faults.get(key)
        return queue.pop(0) if queue else None

    def _json(self, h, code: int, body: Any, headers: dict[str, str] | None = None) -> int:
        data = json.dumps(body).encode()
        self._respond(h, code)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)
        return code

    def _serve(self, h, host: str, path: str, query: dict, auth: str | None, key: str) -> int:
        fault = self._fault(key)
        if fault and fault[0] == "redirect":  # ("redirect", code, location)
            self._respond(h, fault[1])
            h.send_header("Location", fault[2])
            h.send_header("Content-Length", "0")
            h.end_headers()
            return fault[1]
        if fault and fault[0] == "huge":  # a JSON body larger than any page
            return self._json(h, 200, {"results": [], "next": None, "padding": "x" * fault[1]})
        if host == "elsewhere":
            return self._json(h, 404, {"detail": "Not found."})
        if fault and fault[0] == "status":
            return self._json(h, fault[1], {"detail": "Request was throttled." if fault[1] == 429 else "error"},
                              fault[2] if len(fault) > 2 else None)
        if host == "api" and path == "/apiv2/search/text/":
            if auth != f"Token {API_KEY}":
                return self._json(h, 401, {"detail": "Invalid token."})
            page = int(query.get("page", ["1"])[0])
            size = int(query.get("page_size", [str(self.page_size)])[0])
            size = min(size, self.page_size)
            start = (page - 1) * size
            results = self.sounds[start:start + size]
            base = f"{self.api_base}/search/text/?" + urllib.parse.urlencode(
                {"query": query.get("query", [""])[0], "page_size": size})
            nxt = f"{base}&page={page + 1}" if start + size < len(self.sounds) else None
            prev = f"{base}&page={page - 1}" if page > 1 else None
            return self._json(h, 200, {"count": len(self.sounds), "next": nxt, "previous": prev,
                                       "results": results})
        if host == "api" and path.startswith("/apiv2/sounds/") and path.endswith("/download/"):
            if auth != f"Bearer {OAUTH}":
                return self._json(h, 401, {"detail": "Authentication credentials were not provided."})
            sid = int(path.split("/")[3])
            return self._bytes(h, self.originals[sid], fault)
        if host == "cdn" and path.startswith("/previews/"):
            sid = int(path.rsplit("/", 1)[1].split("_")[0])
            return self._bytes(h, self.previews[sid], fault)
        return self._json(h, 404, {"detail": "Not found."})

    def _bytes(self, h, data: bytes, fault: tuple | None) -> int:
        start = 0
        rng = h.headers.get("Range")
        if rng and rng.startswith("bytes="):
            start = int(rng[6:].split("-")[0])
        body = data[start:]
        code = 206 if start else 200
        self._respond(h, code)
        h.send_header("Content-Type", "audio/ogg")
        h.send_header("Content-Length", str(len(body)))
        if start:
            h.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        h.end_headers()
        if fault and fault[0] == "trickle":  # one byte at a time, a little apart, until released
            for i in range(len(body)):
                if self.release.wait(timeout=0.02):
                    break
                try:
                    h.wfile.write(body[i:i + 1])
                    h.wfile.flush()
                except OSError:  # the client gave up
                    break
            h.close_connection = True
            return code
        if fault and fault[0] in ("truncate", "hang"):
            h.wfile.write(body[: len(body) // 2])
            h.wfile.flush()
            if fault[0] == "hang":
                self.hang_started.set()
                self.release.wait(timeout=120)
            h.close_connection = True
            return code
        h.wfile.write(body)
        return code

"""A Freesound API v2 client: authentication from the environment, a request budget, retries with
backoff, ``Retry-After`` on HTTP 429, and resumable downloads.

Secrets: the API key (``FREESOUND_API_KEY``, sent as ``Authorization: Token …``) and the OAuth2 token
(``FREESOUND_OAUTH_TOKEN``, ``Authorization: Bearer …``, needed for original files) are read from the
environment only, sent only to the API host (never to the preview CDN), and never logged or written: URLs
carry no token, and error messages quote URLs only.
"""

from __future__ import annotations

import email.utils
import http.client
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from mixtape.errors import MixtapeError
from mixtape.untrusted import UntrustedInputError, load_json

DEFAULT_API_BASE = "https://freesound.org/apiv2"
RETRY_STATUSES = (429, 500, 502, 503, 504)
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
MAX_REDIRECTS = 5
CHUNK = 1 << 16
#: The most an API response may send: a page of 150 sounds with every field is well under a megabyte.
MAX_PAGE_BYTES = 32 << 20
#: The most one download may send (an original file is rarely over a few hundred megabytes).
MAX_DOWNLOAD_BYTES = 4 << 30
#: How long one file's download may take in all, retries included: the socket timeout alone bounds only
#: each read, so a server trickling a byte a minute would hold a worker forever.
DOWNLOAD_DEADLINE = 900.0


def unreachable(e: BaseException) -> str | None:
    """Why a connection failure is final (refused: nothing listens; DNS: no such host), or None for
    failures worth retrying (a reset, a timeout, a dropped connection)."""
    reason = getattr(e, "reason", e)
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, socket.gaierror):
        return f"the host name does not resolve ({reason.strerror or reason})"
    return None


class FreesoundError(MixtapeError, RuntimeError):
    pass


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Redirects come back as responses: the client follows them itself, deciding per hop which headers go."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def next_link(page: dict[str, Any]) -> str | None:
    """A search page's ``next`` link, if it is one (a server may send anything there)."""
    link = page.get("next")
    return link if isinstance(link, str) and link else None


def check_scheme(url: str) -> None:
    """Only http(s) is ever fetched: a ``file://`` preview URL from a server would copy a local file."""
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise FreesoundError(f"refusing to fetch a {scheme or 'relative'} URL ({url.split('?')[0][:120]}): only "
                             "http(s) URLs are fetched")


@dataclass
class Budget:
    """At most ``per_minute`` requests per minute, spaced evenly (Freesound's standard limit is 60)."""

    per_minute: float
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _next_at: float = field(default=0.0, init=False)

    def wait(self) -> None:
        if self.per_minute <= 0:
            return
        now = self.clock()
        if now < self._next_at:
            self.sleep(self._next_at - now)
            now = self._next_at
        self._next_at = now + 60.0 / self.per_minute


def retry_after_seconds(value: str | None, default: float) -> float:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return default
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    return max(0.0, when.timestamp() - time.time())  # ok: a wait, never part of an output


class FreesoundClient:
    def __init__(self, api_base: str = DEFAULT_API_BASE, api_key: str | None = None, oauth_token: str | None = None,
                 requests_per_minute: float = 60, max_retries: int = 5, backoff: float = 2.0, timeout: float = 60,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                 log: Callable[[str], None] = lambda _m: None, deadline: float = DOWNLOAD_DEADLINE,
                 max_page_bytes: int = MAX_PAGE_BYTES, max_download_bytes: int = MAX_DOWNLOAD_BYTES):
        check_scheme(api_base)
        self.api_base = api_base.rstrip("/")
        self.deadline = deadline
        self.max_page_bytes = max_page_bytes
        self.max_download_bytes = max_download_bytes
        self.clock = clock
        self._api_key = api_key
        self._oauth_token = oauth_token
        self.budget = Budget(requests_per_minute, clock=clock, sleep=sleep)
        self.max_retries = max_retries
        self.backoff = backoff
        self.timeout = timeout
        self.sleep = sleep
        self.log = log

    @classmethod
    def from_env(cls, **kwargs: Any) -> FreesoundClient:
        return cls(api_base=os.environ.get("FREESOUND_API_BASE", DEFAULT_API_BASE),
                   api_key=os.environ.get("FREESOUND_API_KEY") or None,
                   oauth_token=os.environ.get("FREESOUND_OAUTH_TOKEN") or None, **kwargs)

    @property
    def can_download_originals(self) -> bool:
        return bool(self._oauth_token)

    def _headers(self, url: str, oauth: bool) -> dict[str, str]:
        headers = {"User-Agent": "mixtape (+https://github.com/mixtape)"}
        api = urllib.parse.urlsplit(self.api_base)
        target = urllib.parse.urlsplit(url)
        if (target.scheme, target.netloc) == (api.scheme, api.netloc):  # credentials go to the API host only
            if oauth and self._oauth_token:
                headers["Authorization"] = f"Bearer {self._oauth_token}"
            elif self._api_key:
                headers["Authorization"] = f"Token {self._api_key}"
        return headers

    def _open(self, url: str, extra: dict[str, str] | None = None, oauth: bool = False, until: float | None = None
              ) -> Any:
        """Open a URL with retries; returns the response (caller reads and closes it). Redirects are followed
        here, at most ``MAX_REDIRECTS``, to http(s) only, and credentials go only to the API host: a hop to any
        other host gets none. ``until`` (a clock reading) bounds the whole attempt, retries included."""
        attempt = hops = 0
        while True:
            check_scheme(url)
            self.budget.wait()
            timeout = self.timeout if until is None else max(0.001, min(self.timeout, until - self.clock()))
            req = urllib.request.Request(url, headers={**self._headers(url, oauth), **(extra or {})})
            try:
                return _OPENER.open(req, timeout=timeout)
            except urllib.error.HTTPError as e:
                status = e.code
                location = e.headers.get("Location") if e.headers else None
                retry_after = e.headers.get("Retry-After") if e.headers else None
                e.close()
                if status in REDIRECT_STATUSES and location:
                    hops += 1
                    if hops > MAX_REDIRECTS:
                        raise FreesoundError(f"more than {MAX_REDIRECTS} redirects from {url}") from None
                    url = urllib.parse.urljoin(url, location)
                    continue
                if status in RETRY_STATUSES and attempt < self.max_retries and not self._late(until):
                    wait = retry_after_seconds(retry_after, self.backoff * 2 ** attempt) if status == 429 else \
                        self.backoff * 2 ** attempt
                    self.log(f"HTTP {status} for {url}; retrying in {wait:g} s")
                    self.sleep(wait)
                    attempt += 1
                    continue
                hint = {401: " (check FREESOUND_API_KEY)", 403: " (original files need FREESOUND_OAUTH_TOKEN)",
                        429: " (rate limited; lower --rpm)"}.get(status, "")
                raise FreesoundError(f"HTTP {status} for {url}{hint}") from None
            except (urllib.error.URLError, ConnectionError, TimeoutError, http.client.HTTPException) as e:
                if unreachable(e):  # no server there, or no such host: retrying cannot help
                    raise FreesoundError(f"cannot reach {url}: {unreachable(e)}; check the network (and "
                                         "FREESOUND_API_BASE)") from None
                if attempt < self.max_retries and not self._late(until):
                    wait = self.backoff * 2 ** attempt
                    self.log(f"{type(e).__name__} for {url}; retrying in {wait:g} s")
                    self.sleep(wait)
                    attempt += 1
                    continue
                raise FreesoundError(f"cannot reach {url}: {e}") from None

    def _late(self, until: float | None) -> bool:
        return until is not None and self.clock() >= until

    def get_json(self, url: str, oauth: bool = False) -> Any:
        """A JSON response, at most ``max_page_bytes`` of it."""
        with self._open(url, oauth=oauth) as resp:
            data = resp.read(self.max_page_bytes + 1)
        if len(data) > self.max_page_bytes:
            raise FreesoundError(f"{url} sent more than {self.max_page_bytes >> 20} MB: not an API page")
        try:
            return load_json(data, url)
        except UntrustedInputError as e:
            raise FreesoundError(f"{url} did not return JSON: {e}") from None

    def search_url(self, query: str, filter: str | None = None, sort: str | None = None,
                   fields: list[str] | None = None, page_size: int = 150) -> str:
        params = {"query": query, "page_size": str(page_size)}
        if filter:
            params["filter"] = filter
        if sort:
            params["sort"] = sort
        if fields:
            params["fields"] = ",".join(fields)
        return f"{self.api_base}/search/text/?{urllib.parse.urlencode(params)}"

    def pages(self, first_url: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """(url, page) for each page, following ``next`` links until there are none."""
        url: str | None = first_url
        while url:
            page = self.get_json(url)
            if not isinstance(page, dict) or not isinstance(page.get("results"), list):
                raise FreesoundError(f"{url} is not a search page (no `results` list)")
            yield url, page
            url = next_link(page)

    def download(self, url: str, dest: str, oauth: bool = False, expected_size: int | None = None,
                 progress: Callable[[int], None] | None = None) -> int:
        """Download to ``dest`` through ``dest + '.part'``, resuming a partial file with an HTTP Range
        request (also after an interrupted run); returns the size. A short read is retried from where it
        stopped. ``progress`` hears the bytes on disk after each chunk. The whole download, retries
        included, must finish within ``deadline`` seconds and ``max_download_bytes``."""
        part = dest + ".part"
        until = self.clock() + self.deadline
        attempt = 0
        while True:
            have = os.path.getsize(part) if os.path.exists(part) else 0
            headers = {"Range": f"bytes={have}-"} if have else {}
            resp = self._open(url, headers, oauth=oauth, until=until)
            total = None
            try:
                if have and resp.status != 206:  # the server ignored the range: start again
                    have = 0
                length = resp.headers.get("Content-Length")
                total = have + int(length) if length and length.isdigit() else None
                if total is not None and total > self.max_download_bytes:
                    raise FreesoundError(f"{url} is {total} bytes, over the {self.max_download_bytes}-byte limit")
                self._receive(resp, part, have, until, progress)
            except (http.client.IncompleteRead, ConnectionError, TimeoutError, OSError) as e:
                self.log(f"download of {url} interrupted ({type(e).__name__})")
            finally:
                resp.close()
            size = os.path.getsize(part)
            complete = (total is None or size >= total) and (expected_size is None or size == expected_size)
            if complete and size > 0:
                os.replace(part, dest)  # ok: our own partial download, renamed to its final name
                return size
            if attempt >= self.max_retries or self._late(until):
                why = f"the {self.deadline:g} s deadline passed" if self._late(until) else "retries ran out"
                raise FreesoundError(f"download of {url} stopped at {size} of {total or expected_size} bytes ({why})")
            attempt += 1
            self.sleep(self.backoff * 2 ** (attempt - 1))

    def _receive(self, resp: Any, part: str, have: int, until: float, progress: Callable[[int], None] | None
                 ) -> None:
        """Append what the response sends to ``part`` until it ends, the deadline passes or the size limit is
        reached (the last two raise)."""
        with open(part, "ab" if have else "wb") as f:
            while True:
                chunk = resp.read1(CHUNK)  # what has arrived, so progress survives a kill
                if not chunk:
                    return
                f.write(chunk)
                f.flush()
                if progress is not None:
                    progress(f.tell())
                if f.tell() > self.max_download_bytes:
                    raise FreesoundError(f"download passed the {self.max_download_bytes}-byte limit")
                if self._late(until):
                    raise TimeoutError(f"the {self.deadline:g} s download deadline passed")

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
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

DEFAULT_API_BASE = "https://freesound.org/apiv2"
RETRY_STATUSES = (429, 500, 502, 503, 504)
CHUNK = 1 << 16


class FreesoundError(RuntimeError):
    pass


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
                 log: Callable[[str], None] = lambda _m: None):
        self.api_base = api_base.rstrip("/")
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

    def _open(self, url: str, extra: dict[str, str] | None = None, oauth: bool = False):
        """Open a URL with retries; returns the response (caller reads and closes it)."""
        attempt = 0
        while True:
            self.budget.wait()
            req = urllib.request.Request(url, headers={**self._headers(url, oauth), **(extra or {})})
            try:
                return urllib.request.urlopen(req, timeout=self.timeout)
            except urllib.error.HTTPError as e:
                status = e.code
                retry_after = e.headers.get("Retry-After") if e.headers else None
                e.close()
                if status in RETRY_STATUSES and attempt < self.max_retries:
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
                if attempt < self.max_retries:
                    wait = self.backoff * 2 ** attempt
                    self.log(f"{type(e).__name__} for {url}; retrying in {wait:g} s")
                    self.sleep(wait)
                    attempt += 1
                    continue
                raise FreesoundError(f"cannot reach {url}: {e}") from None

    def get_json(self, url: str, oauth: bool = False) -> Any:
        with self._open(url, oauth=oauth) as resp:
            try:
                return json.loads(resp.read().decode("utf-8"))
            except ValueError as e:
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
            url = page.get("next")

    def download(self, url: str, dest: str, oauth: bool = False, expected_size: int | None = None,
                 progress: Callable[[int], None] | None = None) -> int:
        """Download to ``dest`` through ``dest + '.part'``, resuming a partial file with an HTTP Range
        request (also after an interrupted run); returns the size. A short read is retried from where it
        stopped. ``progress`` hears the bytes on disk after each chunk."""
        part = dest + ".part"
        attempt = 0
        while True:
            have = os.path.getsize(part) if os.path.exists(part) else 0
            headers = {"Range": f"bytes={have}-"} if have else {}
            resp = self._open(url, headers, oauth=oauth)
            total = None
            try:
                if have and resp.status != 206:  # the server ignored the range: start again
                    have = 0
                length = resp.headers.get("Content-Length")
                total = have + int(length) if length and length.isdigit() else None
                with open(part, "ab" if have else "wb") as f:
                    while True:
                        chunk = resp.read1(CHUNK)  # what has arrived, so progress survives a kill
                        if not chunk:
                            break
                        f.write(chunk)
                        f.flush()
                        if progress is not None:
                            progress(f.tell())
            except (http.client.IncompleteRead, ConnectionError, TimeoutError, OSError) as e:
                self.log(f"download of {url} interrupted ({type(e).__name__})")
            finally:
                resp.close()
            size = os.path.getsize(part)
            complete = (total is None or size >= total) and (expected_size is None or size == expected_size)
            if complete and size > 0:
                os.replace(part, dest)
                return size
            if attempt >= self.max_retries:
                raise FreesoundError(f"download of {url} stopped at {size} of {total or expected_size} bytes")
            attempt += 1
            self.sleep(self.backoff * 2 ** (attempt - 1))

"""The Freesound client and downloader against a local server that speaks the real API v2 shapes."""

import json
import os
import signal
import subprocess
import sys

import pytest

from mixtape.records import Clip
from mixtape.sources.freesound.client import Budget, FreesoundClient, FreesoundError, retry_after_seconds
from mixtape.sources.freesound.download import download_dump, preview_url
from mixtape.sources.registry import list_source
from mixtape.spec import parse_spec
from tests.conftest import REALDATA
from tests.freesound_server import API_KEY, OAUTH, FakeFreesound


@pytest.fixture()
def fake():
    server = FakeFreesound()
    yield server
    server.close()


def client(fake, sleeps=None, **kw):
    return FreesoundClient(api_base=fake.api_base, api_key=API_KEY, requests_per_minute=0,
                           sleep=(sleeps.append if sleeps is not None else lambda s: None), **kw)


def test_search_follows_next_links_and_sends_the_key_only_to_the_api(fake):
    c = client(fake)
    pages = list(c.pages(c.search_url("piano", filter="duration:[0 TO 5]", sort="score", page_size=3)))
    assert [len(p["results"]) for _, p in pages] == [3, 3, 1]
    assert [s["id"] for _, p in pages for s in p["results"]] == [s["id"] for s in fake.sounds]
    assert all(e.authorization == f"Token {API_KEY}" for e in fake.log)
    assert not any(API_KEY in e.path for e in fake.log)  # never in a URL


def test_bad_key_is_a_clear_error(fake):
    c = FreesoundClient(api_base=fake.api_base, api_key="wrong", requests_per_minute=0, sleep=lambda s: None)
    with pytest.raises(FreesoundError, match=r"401.*FREESOUND_API_KEY") as e:
        list(c.pages(c.search_url("x")))
    assert "wrong" not in str(e.value)


def test_429_honours_retry_after_and_500_is_retried_with_backoff(fake):
    fake.faults["search:2"] = [("status", 429, {"Retry-After": "7"}), ("status", 500)]
    sleeps = []
    c = client(fake, sleeps, backoff=0.5)
    results = [s for _, p in c.pages(c.search_url("x", page_size=3)) for s in p["results"]]
    assert len(results) == len(fake.sounds)
    assert sleeps == [7.0, 1.0]  # Retry-After as given, then backoff 0.5 * 2^1
    statuses = [e.status for e in fake.log if "page=2" in e.path]
    assert statuses == [429, 500, 200]


def test_retries_run_out_with_a_clear_error(fake):
    fake.faults["search:1"] = [("status", 500)] * 10
    with pytest.raises(FreesoundError, match="HTTP 500"):
        list(client(fake, max_retries=2).pages(client(fake).search_url("x")))


def test_retry_after_forms():
    assert retry_after_seconds("12", 1.0) == 12.0
    assert retry_after_seconds(None, 3.0) == 3.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", 5.0) == 0.0  # a date in the past: go now
    assert retry_after_seconds("soon", 2.0) == 2.0


def test_request_budget_spaces_requests():
    now = [0.0]
    sleeps = []

    def sleep(s):
        sleeps.append(s)
        now[0] += s

    budget = Budget(per_minute=30, clock=lambda: now[0], sleep=sleep)
    for _ in range(4):
        budget.wait()
    assert sleeps == [2.0, 2.0, 2.0]


def test_truncated_download_is_resumed_with_a_range_request(fake, tmp_path):
    sid = fake.sounds[0]["id"]
    path = f"/previews/1/{sid}_hq.ogg"
    fake.faults[path] = [("truncate",)]
    dest = str(tmp_path / "a.ogg")
    size = client(fake).download(f"{fake.cdn}{path}", dest)
    assert open(dest, "rb").read() == fake.previews[sid] and size == len(fake.previews[sid])
    requests = [e for e in fake.log if e.path == path]
    assert [r.range for r in requests] == [None, f"bytes={len(fake.previews[sid]) // 2}-"]
    assert [r.status for r in requests] == [200, 206]
    assert all(r.authorization is None for r in requests)  # no credentials to the CDN
    assert not os.path.exists(dest + ".part")


def test_download_writes_a_dump_that_the_reader_reads(fake, tmp_path):
    out = tmp_path / "dump"
    report = download_dump(client(fake), str(out), "piano", max_sounds=6, page_size=3, log=lambda m: None)
    assert len(report.downloaded) == 6 and not report.failed and report.pages_fetched == 2
    lines = [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]
    assert [r["id"] for r in lines] == [s["id"] for s in fake.sounds[:6]]
    assert {r["geotag"] for r in lines} == {None, "41.3851 2.1734"}
    assert all(r["type"] == "ogg" and r["original_type"] == "wav" for r in lines)
    for r in lines:
        assert (out / "audio" / f"{r['id']}.ogg").read_bytes() == fake.previews[r["id"]]
    # no secret anywhere in what was written
    for p in out.rglob("*"):
        if p.is_file():
            assert API_KEY.encode() not in p.read_bytes()
    spec = parse_spec({"name": "d", "seed": 1, "sources": [{"kind": "freesound_dump", "path": str(out)}]})
    clips = [c for c in list_source(spec.sources[0]) if isinstance(c, Clip)]
    assert len(clips) == 6
    by_id = {c.clip_id: c for c in clips}
    first = by_id[f"freesound:{fake.sounds[0]['id']}"]
    assert first.labels["tags"] == ["field-recording", "worst"] and first.pack == ""
    assert by_id[f"freesound:{fake.sounds[1]['id']}"].pack == "78"

    again = download_dump(client(fake), str(out), "piano", max_sounds=6, page_size=3, log=lambda m: None)
    assert again.pages_fetched == 0 and again.downloaded == [] and len(again.skipped) == 6


def test_another_query_in_the_same_folder_is_refused(fake, tmp_path):
    download_dump(client(fake), str(tmp_path), "piano", max_sounds=1, log=lambda m: None)
    with pytest.raises(FreesoundError, match="another query"):
        download_dump(client(fake), str(tmp_path), "drums", max_sounds=1, log=lambda m: None)


def test_originals_need_oauth_and_send_a_bearer_token(fake, tmp_path):
    with pytest.raises(FreesoundError, match="FREESOUND_OAUTH_TOKEN"):
        download_dump(client(fake), str(tmp_path / "a"), "x", max_sounds=2, originals=True, log=lambda m: None)
    c = FreesoundClient(api_base=fake.api_base, api_key=API_KEY, oauth_token=OAUTH, requests_per_minute=0,
                        sleep=lambda s: None)
    report = download_dump(c, str(tmp_path / "b"), "x", max_sounds=2, originals=True, log=lambda m: None)
    assert len(report.downloaded) == 2
    downloads = [e for e in fake.log if e.path.endswith("/download/")]
    assert downloads and all(e.authorization == f"Bearer {OAUTH}" for e in downloads)
    sid = fake.sounds[0]["id"]
    assert (tmp_path / "b" / "audio" / f"{sid}.wav").read_bytes() == fake.originals[sid]


def test_preview_url_shapes():
    assert preview_url({"previews": "http://x/1.ogg"}, "hq-ogg") == "http://x/1.ogg"
    assert preview_url({"previews": {"preview_hq_ogg": "u"}}, "hq-ogg") == "u"
    assert preview_url({"previews": {"preview-lq-mp3": "m"}}, "hq-ogg") == "m"  # best available
    assert preview_url({"previews": None}, "hq-ogg") is None
    for name in ("futurice_sound_search_result.json", "wandrer_geofilter_search_barcelona.json"):
        real = REALDATA / "freesound_style" / "api_responses" / name
        if real.exists():  # the captured real pages, when shared/realdata is present
            page = json.loads(real.read_text())
            assert all(preview_url(s, "hq-ogg") for s in page["results"])


@pytest.mark.slow
def test_killed_download_resumes_without_fetching_anything_twice(fake, tmp_path):
    out = tmp_path / "dump"
    victim = fake.sounds[4]["id"]
    victim_path = f"/previews/1/{victim}_hq.ogg"
    fake.faults[victim_path] = [("hang",)]
    env = {**os.environ, "FREESOUND_API_BASE": fake.api_base, "FREESOUND_API_KEY": API_KEY}
    cmd = [sys.executable, "-m", "mixtape", "freesound", "download", "piano", "--out", str(out), "--max", "7",
           "--page-size", "3", "--rpm", "0", "--verbose"]
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    for line in proc.stderr:  # block until the victim's first half is on disk, then kill the process
        if line.startswith(f"{victim}: "):
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    proc.stderr.close()
    fake.release.set()
    assert (out / "audio" / f"{victim}.ogg.part").stat().st_size == len(fake.previews[victim]) // 2
    done_before = [json.loads(x)["id"] for x in (out / "metadata.jsonl").read_text().splitlines()]
    assert done_before == [s["id"] for s in fake.sounds[:4]]

    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in (out / "metadata.jsonl").read_text().splitlines()]
    assert [x["id"] for x in lines] == [s["id"] for s in fake.sounds]
    for s in fake.sounds:
        assert (out / "audio" / f"{s['id']}.ogg").read_bytes() == fake.previews[s["id"]]
    # the server's request log: every page once, every finished file once, the victim resumed by range
    search = [e.path for e in fake.log if e.host == "api"]
    assert len(search) == len(set(search)) == 3
    for s in fake.sounds:
        requests = [e for e in fake.log if e.path == f"/previews/1/{s['id']}_hq.ogg"]
        if s["id"] == victim:
            assert [e.range for e in requests] == [None, f"bytes={len(fake.previews[victim]) // 2}-"]
        else:
            assert len(requests) == 1 and requests[0].status == 200


# ------------------------------------------------------------------------------------------- hostile servers


def test_a_redirect_to_another_host_carries_no_credentials(fake):
    """urllib copies Authorization to a redirect target; the client follows redirects itself and sends the
    API key and the OAuth token to the API host only."""
    c = FreesoundClient(api_base=fake.api_base, api_key=API_KEY, oauth_token=OAUTH, requests_per_minute=0,
                        sleep=lambda s: None, max_retries=0)
    fake.faults["search:1"] = [("redirect", 302, f"{fake.elsewhere}/collect")]
    with pytest.raises(FreesoundError, match="HTTP 404"):
        list(c.pages(c.search_url("piano")))
    sid = fake.sounds[0]["id"]
    fake.faults[f"/apiv2/sounds/{sid}/download/"] = [("redirect", 307, f"{fake.elsewhere}/steal")]
    with pytest.raises(FreesoundError):
        c.download(f"{fake.api_base}/sounds/{sid}/download/", "/dev/null", oauth=True)
    stolen = [e for e in fake.log if e.host == "elsewhere"]
    assert len(stolen) == 2 and all(e.authorization is None for e in stolen)


def test_a_redirect_within_the_api_host_keeps_the_credentials_and_is_followed(fake):
    c = client(fake)
    fake.faults["search:1"] = [("redirect", 301, "/apiv2/search/text/?query=piano&page_size=3")]
    pages = list(c.pages(c.search_url("piano")))
    assert sum(len(p["results"]) for _, p in pages) == len(fake.sounds)
    api = [e for e in fake.log if e.host == "api"]
    assert api[0].status == 301 and all(e.authorization == f"Token {API_KEY}" for e in api)


def test_non_http_preview_urls_are_never_fetched(fake, tmp_path):
    secret = tmp_path / "private.txt"
    secret.write_text("a file of the user's")
    fake.sounds[0]["previews"] = {"preview-hq-ogg": f"file://{secret}"}
    fake.sounds[1]["previews"] = "ftp://example.org/x.ogg"
    out = tmp_path / "dump"
    report = download_dump(client(fake), str(out), "piano", max_sounds=3, log=lambda m: None)
    failed = dict(report.failed)
    assert set(failed) == {fake.sounds[0]["id"], fake.sounds[1]["id"]}
    assert all("only http(s) URLs are fetched" in why for why in failed.values())
    assert report.downloaded == [fake.sounds[2]["id"]]
    assert all(b"a file of the user's" not in p.read_bytes() for p in out.rglob("*") if p.is_file())


def test_a_server_type_field_cannot_name_a_file_outside_the_dump(fake, tmp_path):
    fake.sounds[0]["type"] = "../../../escaped"
    c = FreesoundClient(api_base=fake.api_base, api_key=API_KEY, oauth_token=OAUTH, requests_per_minute=0,
                        sleep=lambda s: None)
    report = download_dump(c, str(tmp_path / "dump"), "x", max_sounds=1, originals=True, log=lambda m: None)
    sid = fake.sounds[0]["id"]
    assert report.downloaded == [sid] and (tmp_path / "dump" / "audio" / f"{sid}.wav").exists()
    assert not list(tmp_path.rglob("*escaped*"))


def test_an_api_page_over_the_size_cap_is_refused(fake):
    fake.faults["search:1"] = [("huge", 200_000)]
    c = FreesoundClient(api_base=fake.api_base, api_key=API_KEY, requests_per_minute=0, sleep=lambda s: None,
                        max_page_bytes=100_000)
    with pytest.raises(FreesoundError, match="sent more than"):
        list(c.pages(c.search_url("piano")))


def test_a_trickling_download_ends_at_its_deadline(fake, tmp_path):
    """A server sending a byte every 20 ms resets the socket timeout with each byte; the deadline bounds the
    whole download, retries included."""
    sid = fake.sounds[0]["id"]
    path = f"/previews/1/{sid}_hq.ogg"
    fake.faults[path] = [("trickle",)] * 10
    c = client(fake, deadline=0.5)
    with pytest.raises(FreesoundError, match="deadline passed"):
        c.download(f"{fake.cdn}{path}", str(tmp_path / "a.ogg"))
    got = (tmp_path / "a.ogg.part").stat().st_size
    assert 0 < got < len(fake.previews[sid]) // 4  # stopped long before the trickle could finish


def test_the_same_query_with_a_larger_max_extends_a_finished_download(fake, tmp_path):
    out = tmp_path / "dump"
    first = download_dump(client(fake), str(out), "piano", max_sounds=2, log=lambda m: None)
    assert first.sounds_listed == 2
    search = [e.path for e in fake.log if "/search/" in e.path]
    assert search and all("page_size=2" in p for p in search)  # no page larger than the sounds asked for
    fetched = {e.path for e in fake.log if e.host == "cdn"}
    fake.log.clear()
    more = download_dump(client(fake), str(out), "piano", max_sounds=5, log=lambda m: None)
    assert more.sounds_listed == 5
    assert len((out / "metadata.jsonl").read_text().splitlines()) == 5
    assert not fetched & {e.path for e in fake.log if e.host == "cdn"}  # the first two are not fetched again
    with pytest.raises(FreesoundError, match="another query"):
        download_dump(client(fake), str(out), "piano", max_sounds=5, sort="rating_desc", log=lambda m: None)


def test_a_host_nobody_listens_on_fails_at_once_without_retries(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nothing listens there
    sleeps: list[float] = []
    c = FreesoundClient(api_base=f"http://127.0.0.1:{port}/apiv2", api_key=API_KEY, requests_per_minute=0,
                        sleep=sleeps.append)
    with pytest.raises(FreesoundError, match="connection refused"):
        download_dump(c, str(tmp_path / "dump"), "piano", max_sounds=2, log=lambda m: None)
    assert sleeps == []


def test_a_missing_audio_reject_names_the_audio_folder_it_searched(tmp_path):
    dump = tmp_path / "dump"
    (dump / "audio").mkdir(parents=True)
    (dump / "metadata.jsonl").write_text(json.dumps({"id": 42, "name": "gone", "license": "cc0"}) + "\n")
    spec = parse_spec({"name": "d", "seed": 1, "sources": [{"kind": "freesound_dump", "path": str(dump)}]})
    (reject,) = list(list_source(spec.sources[0]))
    assert reject.reason == "missing_audio" and f"in {dump / 'audio'}" in reject.detail

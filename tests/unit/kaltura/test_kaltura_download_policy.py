"""Download URLs (from getUrlForReportAsCsv or a queued handle) are untrusted: SSRF cases are all refused."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler

import pytest
import requests
from kaltura_fakes import FakeKaltura, LoopbackRequest, LoopbackServer, Reply, send
from kauto.kaltura import KalturaClient, KalturaURLRefusedError

KS_SEGMENT = "djJ8RE9XTkxPQURfS1NfU0VDUkVUX0ZPUl9URVNUUw=="
SERVE_PATH = f"/api_v3/index.php/service/report/action/serve/ks/{KS_SEGMENT}/id/abc123/report.csv"
CSV = b"entry_id,plays\n1_a,3\n"


@pytest.fixture
def other_server() -> Iterator[LoopbackServer]:
    server = LoopbackServer()
    yield server
    server.close()


@pytest.mark.parametrize(
    "url",
    [
        f"http://kaltura.test{SERVE_PATH}",  # the service host, but plain http
        f"https://kaltura.test:8443{SERVE_PATH}",  # the service host on another port
        f"https://evil.example.com{SERVE_PATH}",
        f"https://cdnapisec.kaltura.com.evil.com{SERVE_PATH}",
        f"http://cdnapisec.kaltura.com{SERVE_PATH}",
        f"https://cdnapisec.kaltura.com:8443{SERVE_PATH}",
        f"https://169.254.169.254{SERVE_PATH}",
        f"https://127.0.0.1{SERVE_PATH}",
        f"https://[::1]{SERVE_PATH}",
        f"https://2130706433{SERVE_PATH}",
        f"https://0x7f000001{SERVE_PATH}",
        f"https://user:password@cdnapisec.kaltura.com{SERVE_PATH}",
        f"https://cdnapisec.kaltura.com@evil.example.com{SERVE_PATH}",
        f"https://cdnapisec.kaltura.com\\@evil.example.com{SERVE_PATH}",
        f"https://cdnapisec.kaltura.com{SERVE_PATH}\r\nHost: evil.example.com",
        f"ftp://cdnapisec.kaltura.com{SERVE_PATH}",
        "file:///etc/passwd",
        f"//cdnapisec.kaltura.com{SERVE_PATH}",
        f"https://cdnapisec.kaltura.com:99999{SERVE_PATH}",
    ],
)
def test_urls_outside_the_policy_are_refused_before_any_request(
    make_client: Callable[..., KalturaClient], fake_kaltura: FakeKaltura, url: str
) -> None:
    sink = io.BytesIO()
    with pytest.raises(KalturaURLRefusedError) as caught:
        make_client().download(url, sink)
    assert fake_kaltura.requests == []
    assert sink.getvalue() == b""
    assert KS_SEGMENT not in str(caught.value)


@pytest.mark.parametrize(
    ("mount", "url", "settings"),
    [
        ("https://cdnapisec.kaltura.com", f"https://cdnapisec.kaltura.com{SERVE_PATH}", {}),
        ("https://kaltura.test", f"https://kaltura.test{SERVE_PATH}", {}),
        (
            "https://cdn.partner.example",
            f"https://cdn.partner.example{SERVE_PATH}",
            {"download_hosts": ("cdn.partner.example",)},
        ),
        (
            "https://cdnapisec.kaltura.com:8443",
            f"https://cdnapisec.kaltura.com:8443{SERVE_PATH}",
            {"download_ports": (8443,)},
        ),
    ],
)
def test_allowed_hosts_and_configured_ports_are_fetched(
    make_client: Callable[..., KalturaClient],
    http_with_fake: requests.Session,
    mount: str,
    url: str,
    settings: dict[str, object],
) -> None:
    cdn = FakeKaltura()
    cdn.route_path(SERVE_PATH, Reply(CSV, headers={"Content-Type": "text/csv"}))
    http_with_fake.mount(mount, cdn)
    sink = io.BytesIO()
    make_client(**settings).download(url, sink)
    assert sink.getvalue() == CSV
    assert [r.method for r in cdn.requests] == ["GET"]


def redirect(location: str) -> Callable[[LoopbackRequest, BaseHTTPRequestHandler], None]:
    def handler(request: LoopbackRequest, writer: BaseHTTPRequestHandler) -> None:
        if request.path == SERVE_PATH:
            send(writer, 302, b"", "text/plain", Location=location)
        else:
            send(writer, 200, CSV, "text/csv")

    return handler


def test_redirect_to_another_loopback_port_is_refused(
    loopback: LoopbackServer, other_server: LoopbackServer, loopback_client: Callable[..., KalturaClient]
) -> None:
    loopback.handler = redirect(f"{other_server.url}/steal")
    with pytest.raises(KalturaURLRefusedError):
        loopback_client().download(loopback.url + SERVE_PATH, io.BytesIO())
    assert other_server.requests == []


@pytest.mark.parametrize(
    "location",
    ["https://evil.example.com/x", "http://169.254.169.254/latest/meta-data/", "https://user@cdnapisec.kaltura.com/x"],
)
def test_redirect_outside_the_policy_is_refused(
    loopback: LoopbackServer, loopback_client: Callable[..., KalturaClient], location: str
) -> None:
    loopback.handler = redirect(location)
    with pytest.raises(KalturaURLRefusedError):
        loopback_client().download(loopback.url + SERVE_PATH, io.BytesIO())
    assert len(loopback.requests) == 1


def test_redirect_within_the_origin_or_to_an_allowed_cdn_is_followed(
    loopback: LoopbackServer, loopback_client: Callable[..., KalturaClient]
) -> None:
    client = loopback_client()
    cdn = FakeKaltura()
    cdn.route_path("/file.csv", Reply(CSV, headers={"Content-Type": "text/csv"}))
    client.transport.http.mount("https://cdnapisec.kaltura.com", cdn)

    loopback.handler = redirect("/elsewhere/report.csv")
    sink = io.BytesIO()
    client.download(loopback.url + SERVE_PATH, sink)
    assert sink.getvalue() == CSV
    assert [r.path for r in loopback.requests] == [SERVE_PATH, "/elsewhere/report.csv"]

    loopback.handler = redirect("https://cdnapisec.kaltura.com/file.csv")
    sink = io.BytesIO()
    client.download(loopback.url + SERVE_PATH, sink)
    assert sink.getvalue() == CSV
    assert len(cdn.requests) == 1


def test_redirect_chains_are_bounded(loopback: LoopbackServer, loopback_client: Callable[..., KalturaClient]) -> None:
    loopback.handler = lambda _r, w: send(w, 302, b"", "text/plain", Location=SERVE_PATH)
    with pytest.raises(KalturaURLRefusedError, match="redirects"):
        loopback_client(max_redirects=2).download(loopback.url + SERVE_PATH, io.BytesIO())
    assert len(loopback.requests) == 3

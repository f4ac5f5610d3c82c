"""Fakes shared by the Kaltura client tests: an in-process Kaltura stand-in (a requests adapter), a real loopback
HTTP server and a fake clock. Fixtures wrapping them live in conftest.py.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from kauto.kaltura.transport import Clock
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

SECRET = "0123456789abcdef0123456789abcdef"  # the fake admin secret of docs/kaltura.md#ks-v2
PARTNER_ID = 1234567
SERVICE_URL = "https://kaltura.test"


def decode_ks_v2(ks: str, secret: str) -> tuple[int, bytes, list[tuple[str, str]]]:
    """Decoder written from docs/kaltura.md#ks-v2 step 6, independent of the encoder under test."""
    raw = base64.b64decode(ks.replace("-", "+").replace("_", "/"))
    version, partner, cipher = raw.split(b"|", 2)
    assert version == b"v2"
    # SHA1 is what the KS format specifies.
    key = hashlib.sha1(secret.encode()).digest()[:16]  # noqa: S324
    decryptor = Cipher(algorithms.AES(key), modes.CBC(b"\0" * 16)).decryptor()
    plain = (decryptor.update(cipher) + decryptor.finalize()).rstrip(b"\0")
    signature, rest = plain[:20], plain[20:]
    assert hashlib.sha1(rest).digest() == signature, "integrity hash mismatch"  # noqa: S324
    return int(partner), rest[:16], parse_qsl(rest[16:].decode(), keep_blank_values=True)


class FakeClock:
    """Wall clock that only moves when slept on; records sleeps and jitter draws."""

    def __init__(self, now: float = 1_800_000_000.0, *, jitter: Callable[[float, float], float] | None = None):
        self.now = now
        self.sleeps: list[float] = []
        self.jitter_ranges: list[tuple[float, float]] = []
        self._jitter = jitter or (lambda low, high: high)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def uniform(self, low: float, high: float) -> float:
        self.jitter_ranges.append((low, high))
        return self._jitter(low, high)

    def clock(self) -> Clock:
        return Clock(now=lambda: self.now, sleep=self.sleep, uniform=self.uniform)

    def remaining_until(self, deadline: float) -> Callable[[], float]:
        return lambda: deadline - self.now


@dataclass
class Reply:
    """A canned HTTP answer; ``body`` may be bytes or any JSON-able value."""

    body: Any = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})


@dataclass
class Recorded:
    method: str
    url: str
    service: str
    action: str
    form: dict[str, str]
    timeout: Any
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


Handler = Callable[[Recorded], Any]


class FakeKaltura(BaseAdapter):
    """Answers API v3 calls in-process by (service, action); records every request with its form and timeouts."""

    def __init__(self) -> None:
        super().__init__()
        self.routes: dict[tuple[str, str], Handler] = {}
        self.paths: dict[str, Handler] = {}
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()

    def route(self, service: str, action: str, handler: Handler | Any) -> None:
        """Answer ``/api_v3/service/<service>/action/<action>``."""
        self.routes[(service, action)] = handler if callable(handler) else (lambda _req: handler)

    def route_path(self, path: str, handler: Handler | Any) -> None:
        """Answer any request to ``path`` (other services, download URLs)."""
        self.paths[path] = handler if callable(handler) else (lambda _req: handler)

    def calls(self, service: str, action: str) -> list[Recorded]:
        return [r for r in self.requests if (r.service, r.action) == (service, action)]

    def send(self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None, **_: Any) -> Any:
        url = request.url or ""
        path = urlsplit(url).path
        parts = path.split("/")
        service = parts[3] if len(parts) > 3 else ""
        action = parts[5] if len(parts) > 5 else ""
        raw = request.body or b""
        body = raw.encode() if isinstance(raw, str) else bytes(raw)
        content_type = request.headers.get("Content-Type", "")
        form = dict(parse_qsl(body.decode(), keep_blank_values=True)) if "form" in content_type else {}
        recorded = Recorded(request.method or "", url, service, action, form, timeout, dict(request.headers), body)
        with self._lock:
            self.requests.append(recorded)
        handler = self.paths.get(path) or self.routes.get((service, action))
        if handler is None:
            raise AssertionError(f"no fake route for {path}")
        reply = handler(recorded)
        if not isinstance(reply, Reply):
            reply = Reply(reply)
        payload = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
        response = requests.Response()
        response.status_code = reply.status
        response.headers = CaseInsensitiveDict(reply.headers)
        response.raw = io.BytesIO(payload)
        response.url = url
        response.request = request
        return response

    def close(self) -> None:
        pass


@dataclass
class LoopbackRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode(), keep_blank_values=True))


class LoopbackServer:
    """A real HTTP server on 127.0.0.1. ``handler(request, writer)`` answers; ``writer`` is the raw handler."""

    def __init__(self) -> None:
        self.handler: Callable[[LoopbackRequest, BaseHTTPRequestHandler], None] = self._not_found
        self.requests: list[LoopbackRequest] = []
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _dispatch(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = LoopbackRequest(self.command, self.path, dict(self.headers.items()), body)
                server.requests.append(request)
                server.handler(request, self)

            do_GET = _dispatch
            do_POST = _dispatch

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class _Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                # A client that stops reading (size cap, refused redirect) is expected; anything else is kept.
                error = sys.exc_info()[1]
                if not isinstance(error, (BrokenPipeError, ConnectionResetError)):
                    server.errors.append(error)

        self.errors: list[BaseException | None] = []
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.01,), daemon=True)
        self._thread.start()

    @staticmethod
    def _not_found(_request: LoopbackRequest, writer: BaseHTTPRequestHandler) -> None:
        send(writer, 404, b"not found", "text/plain")

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def send(writer: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str, **headers: str) -> None:
    """Write a complete response with a Content-Length."""
    writer.send_response(status)
    writer.send_header("Content-Type", content_type)
    writer.send_header("Content-Length", str(len(body)))
    for name, value in headers.items():
        writer.send_header(name.replace("_", "-"), value)
    writer.end_headers()
    writer.wfile.write(body)

"""Helpers for the client-against-simulator contract tests: constants, a fake clock on simulator time, a byte sink
and a loopback "other host" that must never be reached.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from kauto.kaltura import Clock

PARTNER_ID = 1234567
# The fake admin secret and app token of docs/kaltura.md#ks-v2 / #app-tokens.
ADMIN_SECRET = "0123456789abcdef0123456789abcdef"
APP_TOKEN = "a3f1c2e4b5d6978812345678abcdef0012345678abcdef0012345678abcdef00"
MONDAY = 1767571200  # 2026-01-05 00:00 UTC, after the simulator's default start time
DAY = 86400
WEEK = 7 * DAY


@dataclass
class FakeTime:
    """The client's clock: reads ``now`` from a source (the simulator's clock by default) and never really sleeps;
    jitter draws take the top of their range so backoff delays are exact."""

    now: Callable[[], float]
    sleeps: list[float] = field(default_factory=list)

    @property
    def clock(self) -> Clock:
        # `now` is looked up on every read, so a test can swap the source mid-way (e.g. freeze it).
        return Clock(now=lambda: self.now(), sleep=self.sleeps.append, uniform=lambda low, high: high)


class BytesSink(io.BytesIO):
    """A byte sink that keeps everything (small bodies only)."""


@dataclass
class OtherHost:
    """A loopback HTTP server standing for a host the client must never contact; it records every request."""

    server: ThreadingHTTPServer
    thread: threading.Thread
    requests: list[str] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start_other_host() -> OtherHost:
    """Serve 200 "not for you" to anything, recording the request lines."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            seen.append(self.requestline)
            body = b"not for you"
            self.send_response(200)
            self.send_header("Content-Type", "text/csv")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return OtherHost(server, thread, seen)

"""Fixtures for the Kaltura simulator's own tests (helpers live in ``sim_support``)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from kauto_local.simulator import KalturaSimulator
from sim_support import ADMIN_SECRET, PARTNER_ID, Api, Received, Receiver


@pytest.fixture
def sim() -> Iterator[KalturaSimulator]:
    with KalturaSimulator(seed=7) as simulator:
        simulator.add_partner(PARTNER_ID, ADMIN_SECRET)
        yield simulator


@pytest.fixture
def api(sim: KalturaSimulator) -> Iterator[Api]:
    caller = Api(sim)
    yield caller
    caller.http.close()


@pytest.fixture
def admin_ks(sim: KalturaSimulator) -> str:
    return sim.ks(PARTNER_ID, user_id="tester")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            hook = state["receiver"]
            hook.requests.append(Received(self.path, dict(self.headers.items()), body))
            status = hook.next_status()
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state["receiver"] = Receiver(f"http://127.0.0.1:{server.server_address[1]}/kaltura/notifications/{PARTNER_ID}")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state["receiver"]
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)

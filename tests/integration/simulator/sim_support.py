"""Helpers shared by the simulator's own tests: constants, a raw API caller, a webhook receiver.

These tests talk HTTP with ``requests`` directly (never the product client) so the simulator is checked against
the wire protocol on its own.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import requests
from kauto_local.simulator import KalturaSimulator

PARTNER_ID = 1234567
# The fake admin secret of the test vectors (docs/kaltura.md#ks-v2, #signature).
ADMIN_SECRET = "0123456789abcdef0123456789abcdef"
TIMEOUT = 10


class Api:
    """Minimal raw API v3 caller: form-encoded POST with format=1 by default."""

    def __init__(self, sim: KalturaSimulator) -> None:
        self.sim = sim
        self.http = requests.Session()

    def url(self, service: str, action: str) -> str:
        return f"{self.sim.url}/api_v3/service/{service}/action/{action}"

    def post(self, service: str, action: str, **params: Any) -> requests.Response:
        params.setdefault("format", 1)
        return self.http.post(self.url(service, action), data=params, timeout=TIMEOUT)

    def call(self, service: str, action: str, **params: Any) -> Any:
        response = self.post(service, action, **params)
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/json"
        return response.json()


@dataclass
class Received:
    """One request a receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A loopback webhook endpoint answering with queued statuses (200 once the queue is empty)."""

    url: str
    statuses: list[int] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_status(self) -> int:
        with self.lock:
            return self.statuses.pop(0) if self.statuses else 200

"""Test-wide setup: safe AWS environment, cache clearing, loopback-only network, and a moto server.

Fixtures for everyone:
- ``clear_kauto_caches`` (autouse): every module-level ``functools.cache`` in ``kauto.*`` is cleared before and after
  each test, so clients, settings and secrets are rebuilt from the test's environment.
- ``moto_server`` (session): a moto server-mode endpoint on 127.0.0.1 (real HTTP); ``AWS_ENDPOINT_URL`` points
  boto3 at it for the rest of the session.
- ``moto_aws``: ``moto_server`` with all moto state reset and caches cleared; use it in each integration test.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import clear_all_kauto_caches
from hypothesis import HealthCheck, settings

# Property tests judge behaviour, never speed: on shared CI cores a slow example is not a failure.
settings.register_profile("kauto", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("kauto")

# The ``chromium`` fixture (headless browser for page tests) lives with its helper.
pytest_plugins = ["browser"]

# Set before any test module imports boto3: fake credentials, fixed region, nothing that reaches a real endpoint.
for _name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_ROLE_ARN"):
    os.environ.pop(_name, None)
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "POWERTOOLS_SERVICE_NAME": "kaltura-automations-test",
        "POWERTOOLS_METRICS_NAMESPACE": "KalturaAutomations",
        "POWERTOOLS_DEV": "false",
        "LOG_LEVEL": "INFO",
    }
)


@pytest.fixture(autouse=True)
def clear_kauto_caches() -> Iterator[None]:
    """Start and finish every test without cached clients, settings or secrets."""
    clear_all_kauto_caches()
    yield
    clear_all_kauto_caches()


def _is_loopback(address: Any) -> bool:
    if not isinstance(address, tuple):
        return True  # AF_UNIX paths and socketpairs stay on this machine
    host = address[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(str(host).split("%", 1)[0]).is_loopback
    except ValueError:
        return False  # a host name that was not resolved to loopback first


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any connection to a non-loopback address: tests never touch real networks or AWS."""
    original_connect = socket.socket.connect
    original_connect_ex = socket.socket.connect_ex

    def guarded_connect(self: socket.socket, address: Any) -> None:
        if not _is_loopback(address):
            raise ConnectionRefusedError(f"tests may only connect to loopback, not {address!r}")
        original_connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: Any) -> int:
        if not _is_loopback(address):
            raise ConnectionRefusedError(f"tests may only connect to loopback, not {address!r}")
        return original_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """Start moto in server mode on a free loopback port; yield its URL and point ``AWS_ENDPOINT_URL`` at it."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ENDPOINT_URL", url)
        try:
            yield url
        finally:
            server.stop()


@pytest.fixture
def moto_aws(moto_server: str) -> str:
    """A moto server with no resources left over from earlier tests; returns its URL."""
    request = urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")  # noqa: S310 - loopback URL
    with urllib.request.urlopen(request, timeout=10):  # noqa: S310
        pass
    clear_all_kauto_caches()
    return moto_server


@pytest.fixture
def atomic_moto_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB evaluates a condition and writes atomically; moto (in-process or server threads) does not.

    Tests that race conditional writes from several threads serialize moto's writes, so they test our protocol
    rather than moto's missing atomicity.
    """
    import functools
    import threading

    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.Lock()
    for name in ("put_item", "update_item", "delete_item"):
        original = getattr(DynamoDBBackend, name)

        def locked(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return _original(*args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, functools.wraps(original)(locked))

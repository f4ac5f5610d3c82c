"""Fixtures for the Kaltura client tests (tests/conftest.py already limits the network to loopback and clears
the cached clients around every test)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from kaltura_fakes import PARTNER_ID, SECRET, SERVICE_URL, FakeClock, FakeKaltura, LoopbackServer
from kauto.kaltura import ClientSettings, KalturaClient, PartnerCredentials
from kauto.kaltura.transport import new_http_session


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake_kaltura() -> FakeKaltura:
    return FakeKaltura()


@pytest.fixture
def credentials() -> PartnerCredentials:
    return PartnerCredentials(
        partner_id=PARTNER_ID,
        service_url=SERVICE_URL,
        admin_secret=SECRET,
        session_user_id="lambda-webhook",
        session_privileges="disableentitlement",
    )


@pytest.fixture
def http_with_fake(fake_kaltura: FakeKaltura) -> requests.Session:
    session = new_http_session(4)
    session.mount(SERVICE_URL, fake_kaltura)
    return session


@pytest.fixture
def make_client(
    credentials: PartnerCredentials, http_with_fake: requests.Session, fake_clock: FakeClock
) -> Callable[..., KalturaClient]:
    """Build a client on the fake Kaltura; keyword arguments override settings fields or credentials."""

    def build(creds: PartnerCredentials | None = None, **settings: Any) -> KalturaClient:
        return KalturaClient(
            creds or credentials,
            ClientSettings(**settings),
            http=http_with_fake,
            clock=fake_clock.clock(),
        )

    return build


@pytest.fixture
def loopback() -> Iterator[LoopbackServer]:
    server = LoopbackServer()
    yield server
    server.close()
    assert server.errors == [], "the loopback handler failed"


@pytest.fixture
def loopback_client(loopback: LoopbackServer, fake_clock: FakeClock) -> Callable[..., KalturaClient]:
    """A client whose service URL is the loopback server (real HTTP), with settings overrides."""

    def build(**settings: Any) -> KalturaClient:
        creds = PartnerCredentials(partner_id=PARTNER_ID, service_url=loopback.url, admin_secret=SECRET)
        session = new_http_session(4)
        return KalturaClient(creds, ClientSettings(**settings), http=session, clock=fake_clock.clock())

    return build

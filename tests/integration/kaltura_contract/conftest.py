"""Fixtures: the simulator started in-process (https with its own CA) and the product client configured against it.

The client talks to ``sim.https_url`` and trusts the simulator's CA through ``ClientSettings.ca_bundle`` (a
session's own ``verify`` would lose to the ``REQUESTS_CA_BUNDLE`` this machine sets). Its clock reads simulator time
and records sleeps instead of sleeping.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from contract_support import ADMIN_SECRET, PARTNER_ID, FakeTime, OtherHost, start_other_host
from kauto.kaltura import ClientSettings, KalturaClient, PartnerCredentials, SessionMode
from kauto.kaltura.transport import new_http_session
from kauto_local.simulator import KalturaSimulator


@pytest.fixture
def sim() -> Iterator[KalturaSimulator]:
    with KalturaSimulator(seed=11) as simulator:
        simulator.add_partner(PARTNER_ID, ADMIN_SECRET)
        yield simulator


@pytest.fixture
def http() -> Iterator[requests.Session]:
    session = new_http_session(16)
    yield session
    session.close()


@pytest.fixture
def fake_time(sim: KalturaSimulator) -> FakeTime:
    return FakeTime(now=sim.clock.now)


@pytest.fixture
def make_client(sim: KalturaSimulator, http: requests.Session, fake_time: FakeTime) -> Callable[..., KalturaClient]:
    """Build a client for the simulator's partner: ``settings`` overrides ClientSettings fields, other keywords
    override PartnerCredentials fields (session_mode defaults to a locally built KS)."""

    def build(settings: dict[str, Any] | None = None, **credentials: Any) -> KalturaClient:
        fields: dict[str, Any] = {
            "partner_id": PARTNER_ID,
            "service_url": sim.https_url,
            "admin_secret": ADMIN_SECRET,
            "session_mode": SessionMode.LOCAL,
            "reports_service_url": sim.reports_url,
            **credentials,
        }
        options = {"ca_bundle": str(sim.ca_path), **(settings or {})}
        return KalturaClient(PartnerCredentials(**fields), ClientSettings(**options), http=http, clock=fake_time.clock)

    return build


@pytest.fixture
def other_host() -> Iterator[OtherHost]:
    host = start_other_host()
    yield host
    host.close()

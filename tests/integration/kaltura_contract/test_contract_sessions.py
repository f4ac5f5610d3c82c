"""Sessions over the wire (docs/kaltura.md#ks): the client's KS v2 against the simulator's decoder, refresh on
``INVALID_KS``, ``session.start`` and ``appToken.startSession`` with SHA1/SHA256 tokens."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from contract_support import ADMIN_SECRET, APP_TOKEN, PARTNER_ID, FakeTime
from kauto.kaltura import (
    AppToken,
    KalturaAppTokenError,
    KalturaClient,
    KalturaInvalidSessionError,
    SessionMode,
)
from kauto_local.simulator import KalturaSimulator

pytestmark = pytest.mark.integration

MakeClient = Callable[..., KalturaClient]


def _current_ks(client: KalturaClient) -> str:
    return client.with_session(lambda ks: ks)


def test_locally_built_ks_v2_is_accepted_by_the_simulator(sim: KalturaSimulator, make_client: MakeClient) -> None:
    entry = sim.add_entry(PARTNER_ID, name="Lecture")
    client = make_client(session_user_id="lambda-worker", session_privileges="disableentitlement,privacycontext:MS")

    fetched = client.entries.get(entry.id)
    info = sim.check_ks(_current_ks(client))

    assert fetched.id == entry.id and fetched.name == "Lecture"
    assert (info.partner_id, info.session_type, info.user_id) == (PARTNER_ID, 2, "lambda-worker")
    assert info.privileges == (("disableentitlement", ""), ("privacycontext", "MS"))
    assert info.expiry == sim.clock.now() + 6 * 3600
    assert [call.error_code for call in sim.calls] == [None]


def test_a_ks_rejected_as_expired_is_refreshed_once_transparently(
    sim: KalturaSimulator, make_client: MakeClient
) -> None:
    entry = sim.add_entry(PARTNER_ID)
    client = make_client()
    before = _current_ks(client)
    sim.faults.expired_ks("baseEntry/get", count=1)

    assert client.entries.get(entry.id).id == entry.id

    assert [call.error_code for call in sim.calls_to("baseEntry", "get")] == ["INVALID_KS", None]
    assert _current_ks(client) != before


def test_a_ks_rejected_again_after_the_refresh_is_an_error_not_a_loop(
    sim: KalturaSimulator, make_client: MakeClient
) -> None:
    entry = sim.add_entry(PARTNER_ID)
    client = make_client()
    sim.faults.expired_ks("baseEntry/get", count=5)

    with pytest.raises(KalturaInvalidSessionError) as caught:
        client.entries.get(entry.id)

    assert caught.value.api_args["KSID"] == "EXPIRED"
    assert len(sim.calls_to("baseEntry", "get")) == 2, "exactly one refresh"


def test_expiry_on_the_server_clock(sim: KalturaSimulator, make_client: MakeClient, fake_time: FakeTime) -> None:
    entry = sim.add_entry(PARTNER_ID)
    client = make_client()
    client.entries.get(entry.id)

    sim.clock.advance(7 * 3600)  # past the 6 h KS; the client reads the same clock and renews before calling
    client.entries.get(entry.id)
    frozen_at = sim.clock.now()
    fake_time.now = lambda: frozen_at  # a client whose clock lags: it still trusts its cached KS
    sim.clock.advance(7 * 3600)

    with pytest.raises(KalturaInvalidSessionError):
        client.entries.get(entry.id)

    assert [call.error_code for call in sim.calls_to("baseEntry", "get")] == [None, None, "INVALID_KS", "INVALID_KS"]


def test_session_start_mode(sim: KalturaSimulator, make_client: MakeClient) -> None:
    entry = sim.add_entry(PARTNER_ID)
    client = make_client(session_mode=SessionMode.SESSION_START, session_privileges="disableentitlement")

    client.entries.get(entry.id)
    client.entries.get(entry.id)
    info = sim.check_ks(_current_ks(client))

    starts = sim.calls_to("session", "start")
    assert len(starts) == 1, "the KS is cached"
    assert starts[0].error_code is None and "secret" not in starts[0].params
    assert (info.session_type, info.user_id, info.privileges) == (
        2,
        "kaltura-automations",
        (("disableentitlement", ""),),
    )


@pytest.mark.parametrize("hash_type", ["SHA1", "SHA256"])
def test_app_token_session(sim: KalturaSimulator, make_client: MakeClient, hash_type: str) -> None:
    entry = sim.add_entry(PARTNER_ID)
    sim.add_app_token(PARTNER_ID, APP_TOKEN, token_id="0_abc", hash_type=hash_type)
    client = make_client(
        session_mode=SessionMode.APP_TOKEN,
        admin_secret=None,
        app_token=AppToken(id="0_abc", token=APP_TOKEN, hash_type=hash_type),
    )

    client.entries.get(entry.id)
    info = sim.check_ks(_current_ks(client))

    assert [(call.service, call.action, call.error_code) for call in sim.calls] == [
        ("session", "startWidgetSession", None),
        ("apptoken", "startSession", None),
        ("baseentry", "get", None),
    ]
    assert info.session_type == 2
    assert info.privilege_values("apptoken") == ["0_abc"]


def test_app_token_with_the_wrong_hash_type_is_refused_without_leaking_it(
    sim: KalturaSimulator, make_client: MakeClient
) -> None:
    sim.add_app_token(PARTNER_ID, APP_TOKEN, token_id="0_abc", hash_type="SHA256")
    client = make_client(
        session_mode=SessionMode.APP_TOKEN,
        admin_secret=ADMIN_SECRET,
        app_token=AppToken(id="0_abc", token=APP_TOKEN, hash_type="SHA1"),
    )

    with pytest.raises(KalturaAppTokenError) as caught:
        client.entries.get("1_anything")

    assert caught.value.code == "INVALID_APP_TOKEN_HASH"
    assert APP_TOKEN not in repr(caught.value) and "djJ8" not in str(caught.value)
    assert sim.calls_to("baseEntry", "get") == []

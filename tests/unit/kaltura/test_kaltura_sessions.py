"""Sessions: local KS v2, app token and session.start modes; caching, refresh, and one INVALID_KS retry."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import pytest
from kaltura_fakes import PARTNER_ID, SECRET, SERVICE_URL, FakeClock, FakeKaltura, Recorded, decode_ks_v2
from kauto.kaltura import (
    AppToken,
    InvocationBudget,
    KalturaAppTokenError,
    KalturaClient,
    KalturaInvalidSessionError,
    KalturaRateLimitedError,
    PartnerCredentials,
    SessionMode,
    get_client,
)

ENTRY = {"id": "1_x4b9c2kq", "name": "n", "status": 2, "objectType": "KalturaMediaEntry"}
WIDGET_KS = (
    "djJ8MTIzNDU2N3xF2x4_vHdUErSIuHNmwxlCnxA9D7RscsyHKyeo0KUYUJ_srslw-XwM17bKUhEIadmVcZvdYS_WTuXPXncvnpMF5x32mdPe"
    "__F0z-gTSDZgGavWRqF23_lTXrOXtb4EJB20yAmQYwzTyM6o2vHIAts1V-IpTwrDAMQ_syStEv5ZvA=="
)
TOKEN = "a3f1c2e4b5d6978812345678abcdef0012345678abcdef0012345678abcdef00"
APP_SESSION_KS = "djJ8MTIzNDU2N3xBUFBfVE9LRU5fU0VTU0lPTl9LU19GT1JfVEVTVFNfT05MWQ=="


def invalid_ks(ks: str) -> dict[str, Any]:
    # An unparseable KS is echoed back in KSID and the message (docs/kaltura.md#api-errors).
    return {
        "code": "INVALID_KS",
        "message": f'Invalid KS "{ks}", Error "-1,INVALID_STR"',
        "objectType": "KalturaAPIException",
        "args": {"KSID": ks, "ERR_CODE": "-1", "ERR_DESC": "INVALID_STR"},
    }


def app_token_credentials(**overrides: Any) -> PartnerCredentials:
    return PartnerCredentials(
        partner_id=PARTNER_ID,
        service_url=SERVICE_URL,
        app_token=AppToken(id="0_abc", token=TOKEN, hash_type="SHA256"),
        session_user_id="kaltura-automations",
        **overrides,
    )


def route_app_token(fake_kaltura: FakeKaltura, clock: FakeClock, lifetime: int = 7200) -> None:
    fake_kaltura.route(
        "session",
        "startWidgetSession",
        {"partnerId": PARTNER_ID, "ks": WIDGET_KS, "userId": "0", "objectType": "KalturaStartWidgetSessionResponse"},
    )
    fake_kaltura.route(
        "apptoken",
        "startSession",
        lambda _r: {
            "ks": APP_SESSION_KS,
            "sessionType": 2,
            "partnerId": PARTNER_ID,
            "userId": "kaltura-automations",
            "expiry": int(clock.now) + lifetime,
            "privileges": "sessionid:0_abc,apptoken:0_abc",
            "objectType": "KalturaSessionInfo",
        },
    )


def test_local_mode_builds_a_ks_v2_with_the_configured_user_and_privileges(
    make_client: Callable[..., KalturaClient], fake_kaltura: FakeKaltura, fake_clock: FakeClock
) -> None:
    fake_kaltura.route("baseentry", "get", ENTRY)
    make_client(ks_ttl_seconds=3600).entries.get("1_x4b9c2kq")
    [request] = fake_kaltura.requests
    partner, _, fields = decode_ks_v2(request.form["ks"], SECRET)
    assert partner == PARTNER_ID
    assert fields == [
        ("disableentitlement", ""),
        ("_e", str(int(fake_clock.now) + 3600)),
        ("_t", "2"),
        ("_u", "lambda-webhook"),
    ]


def test_a_client_with_extra_privileges_has_a_ks_of_its_own(
    make_client: Callable[..., KalturaClient], fake_kaltura: FakeKaltura
) -> None:
    fake_kaltura.route("baseentry", "get", ENTRY)
    client = make_client()
    privileged = client.with_privileges("virtualeventid:4321")

    privileged.entries.get("1_a")
    client.entries.get("1_b")
    client.with_privileges("virtualeventid:4321").entries.get("1_c")

    first, plain, again = (decode_ks_v2(r.form["ks"], SECRET)[2] for r in fake_kaltura.requests)
    assert first[:2] == [("disableentitlement", ""), ("virtualeventid", "4321")]
    assert ("virtualeventid", "4321") not in plain, "the client's own KS is unchanged"
    assert again == first, "the privileged KS is cached like the client's own"


def test_ks_is_cached_and_refreshed_shortly_before_expiry(
    make_client: Callable[..., KalturaClient], fake_kaltura: FakeKaltura, fake_clock: FakeClock
) -> None:
    fake_kaltura.route("baseentry", "get", ENTRY)
    client = make_client(ks_ttl_seconds=3600, ks_refresh_min_seconds=300, ks_refresh_fraction=0.1)
    client.entries.get("1_a")
    fake_clock.now += 3000  # 600 s left: more than max(10 % of 3600, 300) = 360
    client.entries.get("1_b")
    fake_clock.now += 300  # 300 s left: refresh
    client.entries.get("1_c")
    first, second, third = (r.form["ks"] for r in fake_kaltura.requests)
    assert first == second
    assert third != first
    assert int(dict(decode_ks_v2(third, SECRET)[2])["_e"]) == int(fake_clock.now) + 3600


def test_invalid_ks_is_refreshed_once_transparently(
    make_client: Callable[..., KalturaClient], fake_kaltura: FakeKaltura
) -> None:
    rejected: list[str] = []

    def handler(request: Recorded) -> Any:
        if not rejected:
            rejected.append(request.form["ks"])
            return invalid_ks(request.form["ks"])
        return ENTRY

    fake_kaltura.route("baseentry", "get", handler)
    client = make_client()
    assert client.entries.get("1_x4b9c2kq").id == "1_x4b9c2kq"
    first, second = (r.form["ks"] for r in fake_kaltura.requests)
    assert first == rejected[0]
    assert second != first
    client.entries.get("1_x4b9c2kq")
    assert fake_kaltura.requests[-1].form["ks"] == second  # the refreshed KS is cached


def test_invalid_ks_twice_is_raised_after_exactly_one_refresh(
    make_client: Callable[..., KalturaClient], fake_kaltura: FakeKaltura
) -> None:
    fake_kaltura.route("baseentry", "get", lambda request: invalid_ks(request.form["ks"]))
    client = make_client()
    with pytest.raises(KalturaInvalidSessionError) as caught:
        client.entries.get("1_x4b9c2kq")
    assert len(fake_kaltura.requests) == 2
    sent = {r.form["ks"] for r in fake_kaltura.requests}
    assert len(sent) == 2
    for ks in sent:
        assert ks not in str(caught.value)
        assert ks not in repr(caught.value)


def test_app_token_session_hashes_the_widget_ks_and_uses_the_returned_ks(
    make_client: Callable[..., KalturaClient], fake_kaltura: FakeKaltura, fake_clock: FakeClock
) -> None:
    route_app_token(fake_kaltura, fake_clock)
    fake_kaltura.route("baseentry", "get", ENTRY)
    client = make_client(app_token_credentials())
    client.entries.get("1_a")
    client.entries.get("1_b")
    widget, start, *gets = fake_kaltura.requests
    assert (widget.service, widget.action) == ("session", "startWidgetSession")
    assert widget.form["widgetId"] == f"_{PARTNER_ID}"
    assert (start.service, start.action) == ("apptoken", "startSession")
    assert start.form["ks"] == WIDGET_KS
    assert start.form["id"] == "0_abc"
    # docs/kaltura.md#app-tokens vector: SHA256(ks + token) with the KS v2 vector as the widget KS.
    assert start.form["tokenHash"] == "883599bc901d509df9dfbbc065200f06f659ada11a0cbb7f4db81f8ff97fd544"
    assert start.form["type"] == "2"
    assert [g.form["ks"] for g in gets] == [APP_SESSION_KS, APP_SESSION_KS]


def test_app_token_session_follows_the_server_expiry(
    make_client: Callable[..., KalturaClient], fake_kaltura: FakeKaltura, fake_clock: FakeClock
) -> None:
    route_app_token(fake_kaltura, fake_clock, lifetime=1200)  # shorter than ks_ttl_seconds
    fake_kaltura.route("baseentry", "get", ENTRY)
    client = make_client(app_token_credentials())
    client.entries.get("1_a")
    fake_clock.now += 950  # 250 s left of 1200: below max(120, 300)
    client.entries.get("1_b")
    assert len(fake_kaltura.calls("apptoken", "startSession")) == 2


def test_app_token_errors_are_typed_and_not_retried(
    make_client: Callable[..., KalturaClient], fake_kaltura: FakeKaltura, fake_clock: FakeClock
) -> None:
    route_app_token(fake_kaltura, fake_clock)
    fake_kaltura.route(
        "apptoken",
        "startSession",
        {"code": "INVALID_APP_TOKEN_HASH", "message": "Invalid hash", "objectType": "KalturaAPIException", "args": []},
    )
    client = make_client(app_token_credentials())
    with pytest.raises(KalturaAppTokenError):
        client.entries.get("1_a")
    assert len(fake_kaltura.calls("apptoken", "startSession")) == 1
    assert fake_kaltura.calls("baseentry", "get") == []


def test_concurrent_callers_share_one_session_start(
    make_client: Callable[..., KalturaClient], fake_kaltura: FakeKaltura, fake_clock: FakeClock
) -> None:
    route_app_token(fake_kaltura, fake_clock)
    fake_kaltura.route("baseentry", "get", ENTRY)
    client = make_client(app_token_credentials())
    threads = [threading.Thread(target=client.entries.get, args=(f"1_{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(fake_kaltura.calls("baseentry", "get")) == 8
    assert len(fake_kaltura.calls("apptoken", "startSession")) == 1


def test_session_start_mode_asks_the_server_for_an_admin_ks(
    make_client: Callable[..., KalturaClient], fake_kaltura: FakeKaltura
) -> None:
    fake_kaltura.route("session", "start", "djJ8U0VSVkVSX1NJREVfS1NfRk9SX1RFU1RT")
    fake_kaltura.route("baseentry", "get", ENTRY)
    creds = PartnerCredentials(
        partner_id=PARTNER_ID,
        service_url=SERVICE_URL,
        admin_secret=SECRET,
        session_privileges="disableentitlement",
        session_mode=SessionMode.SESSION_START,
    )
    make_client(creds).entries.get("1_a")
    start, get = fake_kaltura.requests
    assert start.form["secret"] == SECRET
    assert (start.form["partnerId"], start.form["type"], start.form["privileges"]) == (
        str(PARTNER_ID),
        "2",
        "disableentitlement",
    )
    assert start.form["expiry"] == "21600"
    assert get.form["ks"] == "djJ8U0VSVkVSX1NJREVfS1NfRk9SX1RFU1RT"


def test_invocation_views_share_the_cached_session(
    make_client: Callable[..., KalturaClient], fake_kaltura: FakeKaltura, fake_clock: FakeClock
) -> None:
    route_app_token(fake_kaltura, fake_clock)
    fake_kaltura.route("baseentry", "get", ENTRY)
    client = make_client(app_token_credentials())
    client.entries.get("1_a")
    view = client.for_invocation(InvocationBudget(max_retries=1))
    view.entries.get("1_b")
    assert view.budget is not client.budget
    assert len(fake_kaltura.calls("apptoken", "startSession")) == 1


def test_no_secret_or_ks_in_reprs() -> None:
    creds = app_token_credentials(admin_secret=SECRET)
    client = get_client(creds)
    for text in (repr(creds), repr(creds.app_token), repr(client), repr(client._sessions)):
        assert SECRET not in text
        assert TOKEN not in text
    assert "0_abc" in repr(creds)


def test_no_secret_or_ks_in_logs_or_errors(
    make_client: Callable[..., KalturaClient], fake_kaltura: FakeKaltura, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = {"code": "ACTION_BLOCKED", "message": "blocked", "objectType": "KalturaAPIException", "args": []}
    fake_kaltura.route("baseentry", "get", blocked)
    fake_kaltura.route("baseentry", "list", lambda request: invalid_ks(request.form["ks"]))
    client = make_client(max_attempts=3)
    caplog.set_level(logging.DEBUG)
    errors: list[Exception] = []
    for call in (lambda: client.entries.get("1_a"), lambda: list(client.entries.list(since=0, until=10))):
        with pytest.raises((KalturaRateLimitedError, KalturaInvalidSessionError)) as caught:
            call()
        errors.append(caught.value)
    assert "retrying" in caplog.text
    sent = {r.form["ks"] for r in fake_kaltura.requests}
    texts = [caplog.text, *(str(e) for e in errors), *(repr(e) for e in errors)]
    for text in texts:
        assert SECRET not in text
        for ks in sent:
            assert ks not in text

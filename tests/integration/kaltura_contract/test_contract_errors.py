"""Errors and retries on real wire failures (docs/kaltura.md#api-errors, #multirequest): typed API errors, bounded
retries with backoff on a fake clock, the invocation budget, multirequest partial failure, and the TLS trust setting."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from contract_support import PARTNER_ID, FakeTime
from kauto.kaltura import (
    ClientSettings,
    Disposition,
    InvocationBudget,
    KalturaAlreadyDoneError,
    KalturaCall,
    KalturaClient,
    KalturaConfigurationError,
    KalturaCreditError,
    KalturaDeadlineError,
    KalturaNotFoundError,
    KalturaRateLimitedError,
    KalturaTransportError,
)
from kauto_local.simulator import KalturaSimulator

pytestmark = pytest.mark.integration

MakeClient = Callable[..., KalturaClient]


def _orderable(sim: KalturaSimulator, *, credit: float | None = 100.0) -> tuple[str, int]:
    item = sim.add_catalog_item(PARTNER_ID)
    sim.add_reach_profile(PARTNER_ID, credit=credit, default_for=[item.id])
    return sim.add_entry(PARTNER_ID, name="Lecture", duration=125).id, item.id


def test_entry_not_found_is_permanent_and_not_retried(sim: KalturaSimulator, make_client: MakeClient) -> None:
    with pytest.raises(KalturaNotFoundError) as caught:
        make_client().entries.get("1_missing")

    assert (caught.value.code, caught.value.api_args) == ("ENTRY_ID_NOT_FOUND", {"ENTRY_ID": "1_missing"})
    assert caught.value.disposition is Disposition.PERMANENT
    assert len(sim.calls_to("baseEntry", "get")) == 1


def test_duplicate_order_is_already_done(sim: KalturaSimulator, make_client: MakeClient) -> None:
    entry_id, item_id = _orderable(sim)
    client = make_client()
    first = client.reach.order_caption(entry_id, item_id)

    with pytest.raises(KalturaAlreadyDoneError) as caught:
        client.reach.order_caption(entry_id, item_id)

    assert caught.value.code == "ENTRY_VENDOR_TASK_DUPLICATION"
    assert caught.value.disposition is Disposition.ALREADY_DONE
    assert [task.id for task in sim.tasks(PARTNER_ID)] == [first.id]


def test_order_whose_answer_was_lost_is_not_placed_twice(sim: KalturaSimulator, make_client: MakeClient) -> None:
    entry_id, item_id = _orderable(sim)
    sim.faults.connection_reset("reach_entryVendorTask/add", count=1, when="after")

    # The retry of the lost answer meets the task the first attempt created: already done, never a second order.
    with pytest.raises(KalturaAlreadyDoneError):
        make_client().reach.order_caption(entry_id, item_id)

    assert len(sim.tasks(PARTNER_ID)) == 1
    assert [call.executed for call in sim.calls_to("reach_entryVendorTask", "add")] == [True, True]


def test_exhausted_credit_is_a_credit_error(sim: KalturaSimulator, make_client: MakeClient) -> None:
    entry_id, item_id = _orderable(sim, credit=0.0)

    with pytest.raises(KalturaCreditError) as caught:
        make_client().reach.order_caption(entry_id, item_id)

    assert caught.value.code == "EXCEEDED_MAX_CREDIT_ALLOWED"
    assert caught.value.api_args == {"ENTRY_ID": entry_id, "CATALOG_ITEM_ID": str(item_id)}
    assert sim.tasks(PARTNER_ID) == []


def test_rate_limited_call_is_retried_with_backoff_then_succeeds(
    sim: KalturaSimulator, make_client: MakeClient, fake_time: FakeTime
) -> None:
    entry = sim.add_entry(PARTNER_ID)
    rule = sim.faults.action_blocked("baseEntry/get", count=2)

    assert make_client().entries.get(entry.id).id == entry.id

    assert rule.fired == 2
    assert [call.error_code for call in sim.calls_to("baseEntry", "get")] == ["ACTION_BLOCKED", "ACTION_BLOCKED", None]
    assert fake_time.sleeps == [0.5, 1.0], "full-jitter backoff, drawn at the top of its range here"


@pytest.mark.parametrize(
    "inject",
    [
        pytest.param(lambda sim: sim.faults.http_error("baseEntry/get", 503, count=1), id="http-503"),
        pytest.param(lambda sim: sim.faults.http_error("baseEntry/get", 502, count=1, when="after"), id="http-502"),
        pytest.param(lambda sim: sim.faults.connection_reset("baseEntry/get", count=1), id="connection-reset"),
        pytest.param(lambda sim: sim.faults.truncated_body("baseEntry/get", count=1), id="truncated-json"),
    ],
)
def test_transport_failures_are_retried(
    sim: KalturaSimulator,
    make_client: MakeClient,
    fake_time: FakeTime,
    inject: Callable[[KalturaSimulator], object],
) -> None:
    entry = sim.add_entry(PARTNER_ID)
    inject(sim)

    assert make_client().entries.get(entry.id).id == entry.id

    assert len(sim.calls_to("baseEntry", "get")) == 2
    assert fake_time.sleeps == [0.5]


def test_retries_stop_at_max_attempts_with_capped_backoff(
    sim: KalturaSimulator, make_client: MakeClient, fake_time: FakeTime
) -> None:
    sim.faults.http_error("baseEntry/get", 503)
    client = make_client(settings={"max_attempts": 5, "backoff_base": 0.5, "backoff_max": 1.5})

    with pytest.raises(KalturaTransportError) as caught:
        client.entries.get("1_x")

    assert (caught.value.status, caught.value.disposition) == (503, Disposition.RETRYABLE)
    assert len(sim.calls_to("baseEntry", "get")) == 5
    assert fake_time.sleeps == [0.5, 1.0, 1.5, 1.5]


def test_the_invocation_budget_bounds_retries_across_calls(sim: KalturaSimulator, make_client: MakeClient) -> None:
    entry = sim.add_entry(PARTNER_ID)
    sim.faults.http_error("baseEntry/get", 503, count=2)
    client = make_client().for_invocation(InvocationBudget(max_retries=2))

    assert client.entries.get(entry.id).id == entry.id  # two retries: the budget is spent
    sim.faults.http_error("baseEntry/get", 503, count=1)
    with pytest.raises(KalturaTransportError):
        client.entries.get(entry.id)  # one failure, no retry left

    assert len(sim.calls_to("baseEntry", "get")) == 4


def test_no_call_without_enough_invocation_time(sim: KalturaSimulator, make_client: MakeClient) -> None:
    client = make_client().for_invocation(InvocationBudget(lambda: 3.2, safety_margin=3.0))

    with pytest.raises(KalturaDeadlineError) as caught:
        client.entries.get("1_x")

    assert caught.value.disposition is Disposition.RETRY_LATER
    assert sim.calls == []


def test_multirequest_partial_failure(sim: KalturaSimulator, make_client: MakeClient) -> None:
    entry_id, item_id = _orderable(sim)
    sim.faults.action_blocked("media/get", count=1)
    task = {"objectType": "KalturaEntryVendorTask", "entryId": entry_id, "catalogItemId": item_id}

    outcomes = make_client().multirequest(
        [
            KalturaCall("baseEntry", "get", {"entryId": entry_id}),
            KalturaCall("baseEntry", "get", {"entryId": "1_missing"}),
            KalturaCall("reach_entryVendorTask", "add", {"entryVendorTask": task}),
            KalturaCall("reach_entryVendorTask", "add", {"entryVendorTask": task}),
            KalturaCall("media", "get", {"entryId": entry_id}),
        ]
    )

    assert [outcome.ok for outcome in outcomes] == [True, False, True, False, False]
    assert outcomes[0].result["id"] == entry_id
    assert isinstance(outcomes[1].error, KalturaNotFoundError)
    assert isinstance(outcomes[3].error, KalturaAlreadyDoneError)
    assert isinstance(outcomes[4].error, KalturaRateLimitedError), "per-call errors are reported, not retried"
    with pytest.raises(KalturaNotFoundError):
        outcomes[1].unwrap()
    assert len(sim.tasks(PARTNER_ID)) == 1
    assert [call.multirequest_index for call in sim.calls] == [1, 2, 3, 4, 5], "one request"


def test_multirequest_with_an_expired_ks_is_sent_again_once(sim: KalturaSimulator, make_client: MakeClient) -> None:
    entry = sim.add_entry(PARTNER_ID)
    sim.faults.expired_ks("baseEntry/get", count=2)

    outcomes = make_client().multirequest([KalturaCall("baseEntry", "get", {"entryId": entry.id})] * 2)

    assert [outcome.result["id"] for outcome in outcomes] == [entry.id, entry.id]
    assert [call.error_code for call in sim.calls_to("baseEntry", "get")] == ["INVALID_KS", "INVALID_KS", None, None]


def test_ca_bundle_setting_wins_over_the_environment(
    sim: KalturaSimulator, make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    entry = sim.add_entry(PARTNER_ID)
    client = make_client()
    untrusting = make_client(settings={"ca_bundle": None, "max_attempts": 1})
    untrusting.transport.http.verify = str(sim.ca_path)  # ignored by requests: the environment wins

    assert client.entries.get(entry.id).id == entry.id
    with pytest.raises(KalturaTransportError, match="CERTIFICATE_VERIFY_FAILED"):
        untrusting.entries.get(entry.id)
    with pytest.raises(KalturaConfigurationError, match="ca_bundle"):
        ClientSettings(ca_bundle="/nonexistent/ca.pem")

"""Wire format of single calls, and retries: bounded, full jitter, never past the deadline or the retry budget."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from kaltura_fakes import FakeClock, FakeKaltura, Recorded, Reply
from kauto.kaltura import (
    ClientSettings,
    InvocationBudget,
    KalturaClient,
    KalturaDeadlineError,
    KalturaNotFoundError,
    KalturaProtocolError,
    KalturaQueryTimeoutError,
    KalturaRateLimitedError,
    KalturaTransportError,
    PartnerCredentials,
)

ENTRY = {"id": "1_x4b9c2kq", "name": "Quarterly all-hands recording", "status": 2, "objectType": "KalturaMediaEntry"}
BLOCKED = {
    "code": "ACTION_BLOCKED",
    "message": "Action blocked",
    "objectType": "KalturaAPIException",
    "args": {"ACTION_NAME": "get", "SERVICE_NAME": "baseentry"},
}


def replies(*answers: Any) -> Callable[[Recorded], Any]:
    """A handler giving ``answers`` in turn (the last one repeats); exceptions are raised."""
    sequence: Iterator[Any] = iter(answers)
    last: list[Any] = []

    def handler(_request: Recorded) -> Any:
        answer = next(sequence, None)
        if answer is None:
            answer = last[0]
        last[:] = [answer]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return handler


def get_entry(client: KalturaClient) -> Any:
    return client.call("baseentry", "get", {"entryId": "1_x4b9c2kq"})


def test_calls_are_form_encoded_posts_with_format_json_and_the_ks(
    make_client: Callable[..., KalturaClient], fake_kaltura: FakeKaltura
) -> None:
    fake_kaltura.route(
        "baseentry", "list", {"objects": [], "totalCount": 0, "objectType": "KalturaBaseEntryListResponse"}
    )
    client = make_client()
    client.call("baseentry", "list", {"filter": {"objectType": "KalturaBaseEntryFilter", "statusIn": "2"}, "x": None})
    [request] = fake_kaltura.requests
    assert request.method == "POST"
    assert request.url == "https://kaltura.test/api_v3/service/baseentry/action/list"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.form["format"] == "1"
    assert request.form["ks"].startswith("djJ8")
    assert request.form["filter[objectType]"] == "KalturaBaseEntryFilter"
    assert request.form["filter[statusIn]"] == "2"
    assert "x" not in request.form
    assert request.timeout == (3.05, 30.0)


def test_rate_limited_call_is_retried_with_full_jitter_and_succeeds(
    make_client: Callable[..., KalturaClient], fake_kaltura: FakeKaltura, fake_clock: FakeClock
) -> None:
    fake_kaltura.route("baseentry", "get", replies(BLOCKED, BLOCKED, ENTRY))
    assert get_entry(make_client(backoff_base=0.5))["id"] == "1_x4b9c2kq"
    assert len(fake_kaltura.calls("baseentry", "get")) == 3
    assert fake_clock.jitter_ranges == [(0.0, 0.5), (0.0, 1.0)]
    assert fake_clock.sleeps == [0.5, 1.0]


def test_sleep_is_the_jitter_draw_within_zero_and_the_exponential_cap(
    credentials: PartnerCredentials, http_with_fake: requests.Session, fake_kaltura: FakeKaltura
) -> None:
    clock = FakeClock(jitter=lambda low, high: low + (high - low) * 0.25)
    fake_kaltura.route("baseentry", "get", replies(BLOCKED))
    settings = ClientSettings(backoff_base=1.0, backoff_max=3.0, max_attempts=5)
    client = KalturaClient(credentials, settings, http=http_with_fake, clock=clock.clock())
    with pytest.raises(KalturaRateLimitedError):
        get_entry(client)
    assert clock.jitter_ranges == [(0.0, 1.0), (0.0, 2.0), (0.0, 3.0), (0.0, 3.0)]
    assert clock.sleeps == [0.25, 0.5, 0.75, 0.75]
    assert len(fake_kaltura.calls("baseentry", "get")) == 5


def test_retries_stop_before_sleeping_past_the_deadline_and_timeouts_shrink(
    make_client: Callable[..., KalturaClient], fake_kaltura: FakeKaltura, fake_clock: FakeClock
) -> None:
    fake_kaltura.route("baseentry", "get", replies(BLOCKED))
    deadline = fake_clock.now + 4.0
    budget = InvocationBudget(fake_clock.remaining_until(deadline), safety_margin=1.0)
    client = make_client(backoff_base=1.0, max_attempts=10).for_invocation(budget)
    with pytest.raises(KalturaRateLimitedError):
        get_entry(client)
    calls = fake_kaltura.calls("baseentry", "get")
    assert [c.timeout for c in calls] == [(3.0, 3.0), (2.0, 2.0)]
    assert fake_clock.sleeps == [1.0]  # the next draw (2 s) would not leave time for another attempt
    assert fake_clock.now + 1.0 <= deadline


def test_no_call_is_made_without_enough_time_left(
    make_client: Callable[..., KalturaClient], fake_kaltura: FakeKaltura, fake_clock: FakeClock
) -> None:
    fake_kaltura.route("baseentry", "get", ENTRY)
    budget = InvocationBudget(fake_clock.remaining_until(fake_clock.now + 3.2), safety_margin=3.0)
    with pytest.raises(KalturaDeadlineError) as caught:
        get_entry(make_client().for_invocation(budget))
    assert caught.value.retryable
    assert fake_kaltura.calls("baseentry", "get") == []


def test_retry_budget_is_shared_by_every_call_of_an_invocation(
    make_client: Callable[..., KalturaClient], fake_kaltura: FakeKaltura, fake_clock: FakeClock
) -> None:
    fake_kaltura.route("baseentry", "get", replies(BLOCKED, ENTRY))
    fake_kaltura.route("baseentry", "list", replies(BLOCKED))
    budget = InvocationBudget(max_retries=2)
    client = make_client(max_attempts=10).for_invocation(budget)
    get_entry(client)  # one retry
    with pytest.raises(KalturaRateLimitedError):
        client.call("baseentry", "list", {})  # one retry, then the budget is spent
    assert len(fake_kaltura.calls("baseentry", "get")) == 2
    assert len(fake_kaltura.calls("baseentry", "list")) == 2
    assert budget.retries_left == 0
    assert len(fake_clock.sleeps) == 2


@pytest.mark.parametrize(
    ("first", "retried"),
    [
        (Reply("oops", status=500), True),
        (Reply("busy", status=503), True),
        (Reply("slow down", status=429), True),
        (requests.ConnectionError("connection refused"), True),
        (requests.ReadTimeout("read timed out"), True),
        (Reply(b'{"id":"1_x4b9c2kq","na'), True),  # body cut off mid-way
        (
            {"code": "DRUID_QUERY_TIMED_OUT", "message": "t", "objectType": "KalturaAPIException", "args": []},
            True,
        ),
        (Reply("missing", status=404), False),
        (
            {"code": "ENTRY_ID_NOT_FOUND", "message": "nf", "objectType": "KalturaAPIException", "args": []},
            False,
        ),
    ],
)
def test_transient_failures_are_retried_and_permanent_ones_are_not(
    make_client: Callable[..., KalturaClient], fake_kaltura: FakeKaltura, first: Any, retried: bool
) -> None:
    fake_kaltura.route("baseentry", "get", replies(first, ENTRY))
    client = make_client()
    if retried:
        assert get_entry(client) == ENTRY
        assert len(fake_kaltura.calls("baseentry", "get")) == 2
    else:
        with pytest.raises((KalturaTransportError, KalturaNotFoundError)) as caught:
            get_entry(client)
        assert not caught.value.retryable
        assert len(fake_kaltura.calls("baseentry", "get")) == 1


def test_attempts_are_bounded_and_the_last_error_is_raised(
    make_client: Callable[..., KalturaClient], fake_kaltura: FakeKaltura
) -> None:
    timeout = {"code": "DRUID_QUERY_TIMED_OUT", "message": "t", "objectType": "KalturaAPIException", "args": []}
    fake_kaltura.route("baseentry", "get", replies(timeout))
    with pytest.raises(KalturaQueryTimeoutError) as caught:
        get_entry(make_client(max_attempts=3))
    assert caught.value.retryable
    assert len(fake_kaltura.calls("baseentry", "get")) == 3


def test_transport_errors_say_what_failed_and_whether_it_timed_out(
    make_client: Callable[..., KalturaClient], fake_kaltura: FakeKaltura
) -> None:
    fake_kaltura.route("baseentry", "get", replies(requests.ReadTimeout("read timed out")))
    with pytest.raises(KalturaTransportError, match=r"baseentry\.get timed out"):
        get_entry(make_client(max_attempts=2))


def test_oversized_json_responses_are_refused_not_buffered(
    make_client: Callable[..., KalturaClient], fake_kaltura: FakeKaltura
) -> None:
    fake_kaltura.route("baseentry", "get", {**ENTRY, "description": "x" * 5000})
    with pytest.raises(KalturaProtocolError, match="larger than"):
        get_entry(make_client(max_response_bytes=1024, stream_chunk_bytes=256))

"""Reports Microservice as a resumable job: generate -> handle (serialisable) -> poll -> download."""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Callable
from typing import Any

import pytest
import requests
from kaltura_fakes import PARTNER_ID, SECRET, SERVICE_URL, FakeClock, FakeKaltura, Recorded, Reply
from kauto.kaltura import (
    Disposition,
    KalturaClient,
    KalturaConfigurationError,
    KalturaInvalidSessionError,
    KalturaURLRefusedError,
    PartnerCredentials,
    ReportJobFailedError,
    ReportJobHandle,
    ReportJobPendingError,
    ReportJobState,
)

REPORTS_URL = "https://reports.nvp1.ovp.kaltura.com"
GENERATE = "/api/v1/report/generate"
SERVE = "/api/v1/report/serve"
CSV = b"\xef\xbb\xbfuser_id,answers\nu1,3\n"


@pytest.fixture
def reports_service(http_with_fake: requests.Session) -> FakeKaltura:
    service = FakeKaltura()
    http_with_fake.mount(REPORTS_URL, service)
    return service


@pytest.fixture
def client(http_with_fake: requests.Session, fake_clock: FakeClock) -> KalturaClient:
    creds = PartnerCredentials(
        partner_id=PARTNER_ID, service_url=SERVICE_URL, admin_secret=SECRET, reports_service_url=REPORTS_URL + "/"
    )
    return KalturaClient(creds, http=http_with_fake, clock=fake_clock.clock())


def statuses(*bodies: Any) -> Callable[[Recorded], Any]:
    answers = list(bodies)
    return lambda _request: answers.pop(0) if len(answers) > 1 else answers[0]


def test_generate_returns_a_handle_that_survives_a_queue_message(
    client: KalturaClient, reports_service: FakeKaltura, fake_clock: FakeClock
) -> None:
    reports_service.route_path(GENERATE, {"sessionId": "sess-42"})
    handle = client.report_jobs.generate("pollsActivity", {"entries_ids": ["1_a"], "from_date_id": "2026-01-05"})
    assert handle == ReportJobHandle(PARTNER_ID, REPORTS_URL, "sess-42", "pollsActivity", fake_clock.now)
    assert ReportJobHandle.from_dict(json.loads(json.dumps(handle.to_dict()))) == handle
    [request] = reports_service.requests
    assert request.method == "POST"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"].startswith("Bearer djJ8")
    assert request.json == {
        "reportName": "pollsActivity",
        "reportParameters": {"entries_ids": ["1_a"], "from_date_id": "2026-01-05"},
    }


def test_poll_maps_the_service_status(client: KalturaClient, reports_service: FakeKaltura) -> None:
    reports_service.route_path(
        SERVE,
        statuses(
            {"status": "pending"},
            {"status": "in_progress"},
            {"status": "completed"},
            {"status": "failed", "error": "query failed for ks djJ8MTIzNDU2N3xTRUNSRVRfS1NfSU5fRVJST1I="},
        ),
    )
    handle = ReportJobHandle(PARTNER_ID, REPORTS_URL, "sess-42", "registration", 0.0)
    states = [client.report_jobs.poll(handle) for _ in range(4)]
    assert [s.state for s in states] == [
        ReportJobState.PENDING,
        ReportJobState.PENDING,
        ReportJobState.COMPLETED,
        ReportJobState.FAILED,
    ]
    assert "djJ8" not in states[3].detail and "query failed" in states[3].detail
    assert reports_service.requests[0].json == {"sessionId": "sess-42", "statusOnly": True}


def test_download_streams_the_finished_report(client: KalturaClient, reports_service: FakeKaltura) -> None:
    reports_service.route_path(SERVE, Reply(CSV, headers={"Content-Type": "text/csv"}))
    sink = io.BytesIO()
    result = client.report_jobs.download(ReportJobHandle(PARTNER_ID, REPORTS_URL, "sess-42", "r", 0.0), sink)
    assert sink.getvalue() == CSV[3:] and result.lines == 2
    assert reports_service.requests[0].json == {"sessionId": "sess-42"}


@pytest.mark.parametrize(
    ("body", "error", "disposition"),
    [
        ({"status": "in_progress"}, ReportJobPendingError, Disposition.RETRY_LATER),
        ({"status": "failed", "error": "boom"}, ReportJobFailedError, Disposition.PERMANENT),
    ],
)
def test_download_before_completion_says_what_to_do(
    client: KalturaClient, reports_service: FakeKaltura, body: Any, error: type, disposition: Disposition
) -> None:
    reports_service.route_path(SERVE, body)
    sink = io.BytesIO()
    with pytest.raises(error) as caught:
        client.report_jobs.download(ReportJobHandle(PARTNER_ID, REPORTS_URL, "sess-42", "r", 0.0), sink)
    assert caught.value.disposition is disposition
    assert sink.getvalue() == b""


def test_an_unauthorised_answer_refreshes_the_ks_once(client: KalturaClient, reports_service: FakeKaltura) -> None:
    reports_service.route_path(GENERATE, statuses(Reply({"error": "unauthorized"}, status=401), {"sessionId": "s"}))
    assert client.report_jobs.generate("registration", {"appGuid": "g"}).session_id == "s"
    first, second = (r.headers["Authorization"] for r in reports_service.requests)
    assert first != second


def test_a_ks_refused_twice_is_an_invalid_session(client: KalturaClient, reports_service: FakeKaltura) -> None:
    reports_service.route_path(GENERATE, Reply({"error": "forbidden"}, status=403))
    with pytest.raises(KalturaInvalidSessionError):
        client.report_jobs.generate("registration", {"appGuid": "g"})
    assert len(reports_service.requests) == 2


@pytest.mark.parametrize(
    "change",
    [
        {"base_url": "https://reports.evil.example.com"},
        {"base_url": "https://reports.irp2.ovp.kaltura.com"},
        {"partner_id": 7},
    ],
)
def test_a_handle_for_another_service_or_partner_is_refused(
    client: KalturaClient, reports_service: FakeKaltura, change: dict[str, Any]
) -> None:
    handle = dataclasses.replace(ReportJobHandle(PARTNER_ID, REPORTS_URL, "sess-42", "r", 0.0), **change)
    with pytest.raises(KalturaURLRefusedError):
        client.report_jobs.poll(handle)
    with pytest.raises(KalturaURLRefusedError):
        client.report_jobs.download(handle, io.BytesIO())
    assert reports_service.requests == []


@pytest.mark.parametrize("data", [{}, {"partner_id": "x"}, {"partner_id": 1, "base_url": "u", "report_name": "r"}])
def test_malformed_handles_are_refused(data: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ReportJobHandle.from_dict(data)


def test_the_service_must_be_configured(make_client: Callable[..., KalturaClient]) -> None:
    with pytest.raises(KalturaConfigurationError, match="reports_service_url"):
        make_client().report_jobs.generate("registration", {})


@pytest.mark.parametrize(
    "url",
    [
        "https://reports.evil.example.com",
        "http://reports.nvp1.ovp.kaltura.com",
        "https://10.0.0.5",
        "https://kaltura.com",
    ],
)
def test_only_reports_hosts_can_be_configured(url: str) -> None:
    with pytest.raises(KalturaConfigurationError, match="reports_service_url"):
        PartnerCredentials(partner_id=PARTNER_ID, service_url=SERVICE_URL, admin_secret=SECRET, reports_service_url=url)

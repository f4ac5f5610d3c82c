"""The Reports Microservice over the wire (docs/kaltura.md#reports-microservice): generate, poll while the job is
pending on the simulator clock, download once completed; failed jobs; the Bearer KS refreshed once."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from contract_support import BytesSink
from kauto.kaltura import (
    KalturaClient,
    ReportJobFailedError,
    ReportJobHandle,
    ReportJobPendingError,
    ReportJobState,
)
from kauto_local.simulator import KalturaSimulator

pytestmark = pytest.mark.integration

MakeClient = Callable[..., KalturaClient]


def test_generate_poll_until_completed_then_download(sim: KalturaSimulator, make_client: MakeClient) -> None:
    sim.microservice.pending_seconds = 30
    sim.microservice.in_progress_seconds = 45
    sim.microservice.rows = 12
    client = make_client()

    handle = client.report_jobs.generate("registration", {"appGuid": "guid-1"})
    # A worker keeps the handle in its queue message and polls in a later invocation.
    handle = ReportJobHandle.from_dict(json.loads(json.dumps(handle.to_dict())))
    polls = [client.report_jobs.poll(handle)]
    with pytest.raises(ReportJobPendingError):
        client.report_jobs.download(handle, BytesSink())
    sim.clock.advance(30)
    polls.append(client.report_jobs.poll(handle))
    sim.clock.advance(44)
    polls.append(client.report_jobs.poll(handle))
    sim.clock.advance(1)
    polls.append(client.report_jobs.poll(handle))
    sink = BytesSink()
    result = client.report_jobs.download(handle, sink)

    assert [(poll.state, poll.detail) for poll in polls] == [
        (ReportJobState.PENDING, "pending"),
        (ReportJobState.PENDING, "in_progress"),
        (ReportJobState.PENDING, "in_progress"),
        (ReportJobState.COMPLETED, "completed"),
    ]
    lines = sink.getvalue().decode("utf-8").split("\n")
    assert lines[0] == "user_id,email,first_name,last_name,registration_date,status"
    assert len(lines) == 14 and lines[-1] == ""
    assert result.lines == 13 and result.bytes_written == len(sink.getvalue())
    generate = sim.calls_to("microservice", "generate")
    assert [(call.params, call.error_code) for call in generate] == [
        ({"reportName": "registration", "reportParameters": {"appGuid": "guid-1"}}, None)
    ]


def test_failed_job(sim: KalturaSimulator, make_client: MakeClient) -> None:
    sim.microservice.failures["pollsActivity"] = "virtual event not found"
    client = make_client()

    handle = client.report_jobs.generate("pollsActivity", {"virtual_event_ids": ["42"]})
    sim.clock.advance(sim.microservice.pending_seconds + sim.microservice.in_progress_seconds)
    status = client.report_jobs.poll(handle)

    assert (status.state, status.detail) == (ReportJobState.FAILED, "virtual event not found")
    with pytest.raises(ReportJobFailedError, match="virtual event not found"):
        client.report_jobs.download(handle, BytesSink())


def test_bearer_ks_rejected_once_is_refreshed(sim: KalturaSimulator, make_client: MakeClient) -> None:
    client = make_client()
    handle = client.report_jobs.generate("registration", {})
    sim.faults.expired_ks("microservice/serve", count=1)

    assert client.report_jobs.poll(handle).state is ReportJobState.PENDING

    assert [call.error_code for call in sim.calls_to("microservice", "serve")] == ["INVALID_KS", None]


def test_rate_limited_poll_is_retried(sim: KalturaSimulator, make_client: MakeClient) -> None:
    client = make_client()
    handle = client.report_jobs.generate("registration", {})
    sim.faults.action_blocked("microservice/serve", count=1)

    assert client.report_jobs.poll(handle).state is ReportJobState.PENDING

    assert [call.error_code for call in sim.calls_to("microservice", "serve")] == ["ACTION_BLOCKED", None]

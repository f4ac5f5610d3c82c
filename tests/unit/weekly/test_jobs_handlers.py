"""The thin handlers: the report worker's partial batch response and the scheduler's input and totals."""

from __future__ import annotations

import json
from typing import Any

import pytest
from helpers import FakeLambdaContext, load_handler
from kauto.weekly.messages import JobMessage
from kauto.weekly.runs import get_run, start_run
from kauto.weekly.scheduler import ScheduleRequestError
from weekly_fakes import PARTNER_ID, WEEK, harness


def sqs_event(*bodies: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m{index}",
                "receiptHandle": f"r{index}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:report-jobs",
                "awsRegion": "us-east-1",
            }
            for index, body in enumerate(bodies)
        ]
    }


def test_report_worker_fails_only_the_records_that_must_be_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    h = harness({"reports": [{"name": "top", "surface": "getTable", "report_type": 1}]})
    start_run(PARTNER_ID, WEEK, h.deps.run, trigger="t")
    (queued,) = h.jobs.take()
    assert isinstance(queued.message, JobMessage)
    module = load_handler("report_worker")
    monkeypatch.setattr(module, "build_weekly_deps", lambda context: h.deps)

    response = module.lambda_handler(sqs_event(queued.message.to_json(), '{"type": "other"}'), FakeLambdaContext())

    assert response == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    run = get_run(PARTNER_ID, WEEK, h.deps)
    assert run is not None and run.jobs_done == 1


def test_scheduler_starts_the_requested_runs_and_returns_totals(monkeypatch: pytest.MonkeyPatch) -> None:
    h = harness()
    module = load_handler("weekly_scheduler")
    monkeypatch.setattr(module, "build_run_deps", lambda: h.deps.run)

    totals = module.lambda_handler({"partner_id": PARTNER_ID, "week": WEEK}, FakeLambdaContext())
    again = module.lambda_handler({"partner_id": PARTNER_ID, "week": WEEK}, FakeLambdaContext())

    assert (totals["started"], totals["jobs"]) == (1, 9)
    assert (again["duplicate"], again["jobs"]) == (1, 0)
    assert json.loads(h.jobs.sent[0].message.to_json())["type"] == "weekly_job"


def test_scheduler_refuses_malformed_input(monkeypatch: pytest.MonkeyPatch) -> None:
    module = load_handler("weekly_scheduler")
    monkeypatch.setattr(module, "build_run_deps", lambda: harness().deps.run)

    with pytest.raises(ScheduleRequestError):
        module.lambda_handler({"week": "last week"}, FakeLambdaContext())

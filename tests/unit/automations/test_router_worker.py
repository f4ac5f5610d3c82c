"""The worker handler on fakes: one SQS batch, partial failures naming only the records to retry."""

from __future__ import annotations

import json
from typing import Any

import pytest
from helpers import FakeLambdaContext, load_handler
from kauto.kaltura import KalturaTransportError
from reach_fakes import Harness, build_harness, entry_ready_event, task_event


def sqs_record(message_id: str, body: str) -> dict[str, Any]:
    return {
        "messageId": message_id,
        "receiptHandle": f"handle-{message_id}",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:events",
        "awsRegion": "us-east-1",
    }


@pytest.fixture
def harness() -> Harness:
    harness = build_harness()
    harness.kaltura.add_catalog_item()
    for entry_id in ("1_a", "1_b", "1_c"):
        harness.kaltura.add_entry(entry_id)
    return harness


@pytest.fixture
def worker(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> Any:
    module = load_handler("worker")
    monkeypatch.setattr(module, "build_deps", lambda context: harness.deps)
    return module


def test_batch_reports_only_the_failed_records(harness: Harness, worker: Any) -> None:
    original = harness.kaltura.get_entry

    def flaky(entry_id: str) -> Any:
        if entry_id == "1_b":
            raise KalturaTransportError("baseEntry.get returned HTTP 503", status=503)
        return original(entry_id)

    harness.kaltura.get_entry = flaky
    harness = harness.with_config()
    worker.build_deps = lambda context: harness.deps
    event = {
        "Records": [
            sqs_record("m1", entry_ready_event("1_a").to_json()),
            sqs_record("m2", entry_ready_event("1_b").to_json()),
            sqs_record("m3", "not an event"),
            sqs_record("m4", json.dumps({"kind": "entry_ready"})),
            sqs_record("m5", task_event(7, 3, updated_at=1).to_json()),
            sqs_record("m6", entry_ready_event("1_c").to_json()),
        ]
    }

    response = worker.lambda_handler(event, FakeLambdaContext())

    assert response == {"batchItemFailures": [{"itemIdentifier": i} for i in ("m2", "m3", "m4")]}
    assert [add[0] for add in harness.kaltura.adds()] == ["1_a", "1_c"]


def test_a_batch_where_everything_succeeds_reports_no_failures(harness: Harness, worker: Any) -> None:
    event = {"Records": [sqs_record("m1", entry_ready_event("1_a").to_json())]}

    assert worker.lambda_handler(event, FakeLambdaContext()) == {"batchItemFailures": []}


def test_a_batch_writes_its_counts_once_at_the_end_summed_per_dimension_values(
    harness: Harness, worker: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    event = {"Records": [sqs_record(f"m{n}", entry_ready_event(f"1_{n}").to_json()) for n in "abc"]}
    capsys.readouterr()

    worker.lambda_handler(event, FakeLambdaContext())

    documents = emf_documents(capsys.readouterr().out)
    counted = {
        (metric["Name"], tuple((name, doc[name]) for name in directive["Dimensions"][0] if name != "service")): doc[
            metric["Name"]
        ]
        for doc in documents
        for directive in doc["_aws"]["CloudWatchMetrics"]
        for metric in directive["Metrics"]
    }
    assert {key: value for key, value in counted.items() if key[0] != "ColdStart"} == {
        ("CaptionDecision", (("outcome", "ordered"),)): 3,
        ("CaptionOrdered", ()): 3,
        ("VendorTaskUpdate", (("outcome", "created"), ("state", "pending"))): 3,
    }
    # Nine counts, written together: two documents only because EMF holds one value per key in a document and both
    # CaptionDecision and VendorTaskUpdate have an ``outcome`` of their own.
    assert len(documents) == 2


def emf_documents(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith('{"_aws"')]

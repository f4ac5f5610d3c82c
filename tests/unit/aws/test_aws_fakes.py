"""The in-memory fakes the automations' unit tests use: they record what they were asked to do and behave like the
real adapters (the ledger fake is also run through every ledger test in test_ledger.py)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest
from aws_support import FakeClock
from kauto.aws.alerts import Alert, AlertInFlightError, AlertPeriod, AlertPublishError, Severity
from kauto.aws.manifest import Manifest, ManifestFile, SourceCall, write_manifest
from kauto.aws.object_store import CSV_CONTENT_TYPE, JSON_CONTENT_TYPE, WriterClosedError
from kauto.csvclean import ROOM_DATA_SPEC, CsvCleaner
from kauto_local.fakes import InMemoryAlertPublisher, InMemoryLedger, InMemoryObjectStore, SimulatedCrash

KEY = "weekly/partner_id=1/week=2025-W01/top_content.csv"


def test_object_store_fake_records_writes_and_lands_objects_only_on_complete() -> None:
    store = InMemoryObjectStore()
    cleaner = CsvCleaner(ROOM_DATA_SPEC)
    with store.open_writer(KEY) as writer:
        writer.write_records(
            cleaner.clean_bytes([b"\xef\xbb\xbfentry_id,session_start_time\n1_a,0\n"]), with_header=True
        )
        assert store.objects == {}
        result = writer.complete()

    body = store.objects[KEY]
    assert body.startswith(b"entry_id,entry_name,")
    assert (result.rows, result.bytes, result.sha256) == (1, len(body), hashlib.sha256(body).hexdigest())
    assert store.content_types[KEY] == CSV_CONTENT_TYPE
    assert store.calls == [("open_writer", KEY), ("complete", KEY)]


def test_object_store_fake_abort_leaves_nothing_and_checkpoints_resume() -> None:
    store = InMemoryObjectStore()
    with pytest.raises(RuntimeError), store.open_writer(KEY) as writer:
        writer.write(b"partial")
        raise RuntimeError("source failed")
    assert store.objects == {}

    writer = store.open_writer(KEY)
    writer.write(b"head,", rows=1)
    state = json.loads(json.dumps(writer.checkpoint()))
    with pytest.raises(WriterClosedError):
        writer.write(b"late")
    resumed = store.resume_writer(state)
    resumed.write(b"tail", rows=1)
    result = resumed.complete()

    assert store.objects[KEY] == b"head,tail" and result.rows == 2
    assert [operation for operation, _ in store.calls] == [
        "open_writer",
        "abort",
        "open_writer",
        "checkpoint",
        "resume_writer",
        "complete",
    ]


def test_object_store_fake_takes_manifests() -> None:
    store = InMemoryObjectStore()
    when = datetime.fromtimestamp(FakeClock().now, tz=UTC)
    result = store.put_bytes(KEY, b"a\r\n", content_type=CSV_CONTENT_TYPE)
    entry = ManifestFile.from_result("top_content", result, ["a"], SourceCall("report", "getTable", {"ks": "x"}))
    written = write_manifest(
        store, "weekly/partner_id=1/week=2025-W01/", Manifest(1, "weekly", when, when, (entry,), when)
    )

    document = json.loads(store.objects[written.key])
    assert document["files"][0]["source"]["params"] == {"ks": "[redacted]"}
    assert store.content_types[written.key] == JSON_CONTENT_TYPE
    assert store.calls == [("put_bytes", KEY), ("put_bytes", written.key)]


def test_ledger_fake_records_calls() -> None:
    ledger = InMemoryLedger(clock=FakeClock())
    ledger.claim("p", "s", {"state": "pending", "owner": "me"})
    ledger.transition("p", "s", from_states={"pending"}, to_state="done", final_states={"done"})
    [item] = ledger.query("p")
    assert item["state"] == "done"
    assert ledger.delete_if("p", "s", "me")
    assert ledger.calls == [("claim", "p", "s"), ("transition", "p", "s"), ("query", "p", ""), ("delete_if", "p", "s")]


def test_alert_publisher_fake_records_once_per_key_and_injects_failures() -> None:
    clock = FakeClock()
    alerts = InMemoryAlertPublisher(clock=clock)
    alert = Alert("reach_credit_low", Severity.WARNING, 1234567, "REACH credit low", "12 credits left", {"left": 12})

    alerts.failures_to_inject = 1
    with pytest.raises(AlertPublishError):
        alerts.publish(alert, dedupe_key="credit", period=AlertPeriod.DAY)
    first = alerts.publish(alert, dedupe_key="credit", period=AlertPeriod.DAY)
    again = alerts.publish(alert, dedupe_key="credit", period=AlertPeriod.DAY)

    assert (first.published, again.published) == (True, False)
    [sent] = alerts.published
    assert sent.subject == "REACH credit low"
    assert sent.attributes["severity"] == {"DataType": "String", "StringValue": "warning"}
    assert json.loads(sent.message)["period"] == "2025-01-03"
    assert [(rule, key, outcome.published if outcome else None) for rule, key, outcome in alerts.calls] == [
        ("reach_credit_low", "credit", None),
        ("reach_credit_low", "credit", True),
        ("reach_credit_low", "credit", False),
    ]
    assert alerts.ledger.get("alert#1234567", "reach_credit_low#credit#2025-01-03") is not None


def test_alert_publisher_fake_takes_over_the_claim_of_a_crashed_worker_after_the_lease() -> None:
    clock = FakeClock()
    alerts = InMemoryAlertPublisher(clock=clock, lease_seconds=60)
    alert = Alert("reach_task_error", Severity.WARNING, 1234567, "REACH task 7 failed", "task 7 moved to ERROR")

    alerts.crashes_to_inject = 1
    with pytest.raises(SimulatedCrash):
        alerts.publish(alert, dedupe_key="task:7")
    with pytest.raises(AlertInFlightError):
        alerts.publish(alert, dedupe_key="task:7")
    clock.advance(60)
    taken_over = alerts.publish(alert, dedupe_key="task:7")
    again = alerts.publish(alert, dedupe_key="task:7")

    assert (taken_over.published, again.published) == (True, False)
    assert len(alerts.published) == 1

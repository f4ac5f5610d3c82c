"""SNS alerts: the message contract as a subscriber receives it (SNS -> SQS in moto), and once-only publishing with a
claim lease that a later attempt takes over when the worker that claimed the alert died before publishing it."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from aws_support import LEDGER_TABLE, REGION, ClientSpy, FakeClock
from kauto.aws.alerts import (
    CLAIM_LEASE_SECONDS,
    MESSAGE_MAX_BYTES,
    SUBJECT_MAX_CHARS,
    Alert,
    AlertContentError,
    AlertInFlightError,
    AlertPeriod,
    AlertPersonalDataError,
    AlertPublishError,
    Severity,
    SnsAlertPublisher,
    sns_subject,
)
from kauto.aws.ledger import DynamoLedger, LedgerUnavailableError

PARTNER = 1234567


@dataclass
class Topic:
    sns: Any
    arn: str
    sqs: Any
    queue_url: str

    def delivered(self) -> list[dict[str, Any]]:
        """SNS envelopes that reached the subscribed queue (Subject, Message, MessageAttributes)."""
        envelopes = []
        while True:
            messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return envelopes
            for message in messages:
                envelopes.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture
def topic(aws: None) -> Topic:
    sns = boto3.client("sns", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    arn = sns.create_topic(Name="kauto-alerts")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="alerts-subscriber")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn)
    return Topic(sns, arn, sqs, queue_url)


@pytest.fixture
def ledger(dynamodb: Any, clock: FakeClock) -> DynamoLedger:
    return DynamoLedger(dynamodb, LEDGER_TABLE, clock=clock)


@pytest.fixture
def publisher(topic: Topic, ledger: DynamoLedger, clock: FakeClock) -> SnsAlertPublisher:
    return SnsAlertPublisher(topic.sns, topic.arn, ledger, clock=clock)


def task_error_alert(**overrides: Any) -> Alert:
    fields: dict[str, Any] = {
        "rule": "reach_task_error",
        "severity": Severity.CRITICAL,
        "partner_id": PARTNER,
        "subject": "REACH caption task 9123 failed for entry 1_abc",
        "summary": "Vendor task 9123 moved to ERROR.",
        "details": {"task_id": 9123, "entry_id": "1_abc", "err_description": "media too short"},
        "links": ("s3://kauto-reports/sessions/partner_id=1234567/manifest.json",),
    }
    fields.update(overrides)
    return Alert(**fields)


def test_subscriber_receives_the_contract_message_subject_and_attributes(
    publisher: SnsAlertPublisher, topic: Topic
) -> None:
    outcome = publisher.publish(task_error_alert(), dedupe_key="task#9123")

    [envelope] = topic.delivered()
    assert outcome.published and outcome.message_id == envelope["MessageId"]
    assert envelope["Subject"] == "REACH caption task 9123 failed for entry 1_abc"
    assert envelope["MessageAttributes"] == {
        "alert": {"Type": "String", "Value": "reach_task_error"},
        "severity": {"Type": "String", "Value": "critical"},
        "partner_id": {"Type": "String", "Value": str(PARTNER)},
    }
    message = json.loads(envelope["Message"])
    assert message == {
        "alert": "reach_task_error",
        "severity": "critical",
        "partner_id": PARTNER,
        "subject": "REACH caption task 9123 failed for entry 1_abc",
        "summary": "Vendor task 9123 moved to ERROR.",
        "details": {"task_id": 9123, "entry_id": "1_abc", "err_description": "media too short"},
        "links": ["s3://kauto-reports/sessions/partner_id=1234567/manifest.json"],
        "generated_at": "2025-01-03T10:26:40Z",
        "dedupe_key": "task#9123",
        "period": None,
    }


def test_long_unicode_multiline_subject_is_cut_to_a_valid_sns_subject(
    publisher: SnsAlertPublisher, topic: Topic
) -> None:
    subject = "Café room «Salle 1» —\nsession ended with 0 attendees;\tthreshold " + "very long " * 20
    publisher.publish(task_error_alert(subject=subject), dedupe_key="room#1")

    [envelope] = topic.delivered()
    sent = envelope["Subject"]
    assert len(sent) <= SUBJECT_MAX_CHARS < 100
    assert sent.isascii() and sent.isprintable()
    assert sent.startswith('Cafe room "Salle 1" - session ended with 0 attendees; threshold very long')
    assert sent.endswith("...")
    assert json.loads(envelope["Message"])["subject"] == subject  # the message keeps the full subject


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("plain", "plain"),
        ("  spaced\r\n\tout  ", "spaced out"),
        ("\n\n", "Kaltura automations alert"),
        ("日本語", "Kaltura automations alert"),
        ("x" * 120, "x" * 96 + "..."),
    ],
)
def test_sns_subject(subject: str, expected: str) -> None:
    assert sns_subject(subject) == expected


def test_redelivered_alert_is_published_once(publisher: SnsAlertPublisher, topic: Topic) -> None:
    first = publisher.publish(task_error_alert(), dedupe_key="task#9123")
    again = publisher.publish(task_error_alert(summary="redelivered"), dedupe_key="task#9123")
    other = publisher.publish(task_error_alert(), dedupe_key="task#9124")

    assert [first.published, again.published, other.published] == [True, False, True]
    assert again.message_id == first.message_id
    assert [json.loads(e["Message"])["dedupe_key"] for e in topic.delivered()] == ["task#9123", "task#9124"]


@pytest.mark.usefixtures("atomic_moto_writes")
def test_concurrent_publishes_of_one_alert_send_one_message(publisher: SnsAlertPublisher, topic: Topic) -> None:
    outcomes = []
    start = threading.Barrier(8)

    in_flight = []

    def worker() -> None:
        start.wait()
        try:
            outcomes.append(publisher.publish(task_error_alert(), dedupe_key="task#9123"))
        except AlertInFlightError as error:
            in_flight.append(error)  # raced the winner before it marked the claim: retried later, finds it sent

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(outcome.published for outcome in outcomes) == 1
    assert len(outcomes) + len(in_flight) == 8
    assert len(topic.delivered()) == 1
    assert not publisher.publish(task_error_alert(), dedupe_key="task#9123").published


class _WorkerDied(BaseException):
    """Stands for the process dying: not an ``Exception``, so the publisher's error handling never sees it."""


class _DiesOnPublish:
    def __init__(self, sns: Any) -> None:
        self._sns = sns

    def publish(self, **_: Any) -> dict[str, Any]:
        raise _WorkerDied


def test_alert_claimed_by_a_worker_that_died_is_published_once_its_lease_expires(
    topic: Topic, ledger: DynamoLedger, clock: FakeClock
) -> None:
    with pytest.raises(_WorkerDied):
        SnsAlertPublisher(_DiesOnPublish(topic.sns), topic.arn, ledger, clock=clock).publish(
            task_error_alert(), dedupe_key="task#9123"
        )
    row = ledger.get(f"alert#{PARTNER}", "reach_task_error#task#9123")
    assert row is not None and row["state"] == "publishing"
    publisher = SnsAlertPublisher(topic.sns, topic.arn, ledger, clock=clock)

    clock.advance(CLAIM_LEASE_SECONDS - 1)
    with pytest.raises(AlertInFlightError):  # the lease is live: the record is retried later, nothing is sent
        publisher.publish(task_error_alert(), dedupe_key="task#9123")
    assert topic.delivered() == []

    clock.advance(1)
    outcome = publisher.publish(task_error_alert(), dedupe_key="task#9123")
    again = publisher.publish(task_error_alert(), dedupe_key="task#9123")

    assert outcome.published and not again.published
    assert len(topic.delivered()) == 1
    row = ledger.get(outcome.ledger_pk, outcome.ledger_sk)
    assert row is not None and (row["state"], row["taken_over_at"]) == ("published", int(clock.now))


def test_a_claim_written_before_leases_expires_from_its_claim_time(
    topic: Topic, ledger: DynamoLedger, clock: FakeClock
) -> None:
    ledger.claim(
        f"alert#{PARTNER}",
        "reach_task_error#task#9123",
        {"state": "publishing", "owner": "dead-worker", "claimed_at": int(clock.now)},
    )
    publisher = SnsAlertPublisher(topic.sns, topic.arn, ledger, clock=clock)
    with pytest.raises(AlertInFlightError):
        publisher.publish(task_error_alert(), dedupe_key="task#9123")
    clock.advance(CLAIM_LEASE_SECONDS)
    assert publisher.publish(task_error_alert(), dedupe_key="task#9123").published
    assert len(topic.delivered()) == 1


@pytest.mark.usefixtures("atomic_moto_writes")
def test_only_one_of_several_retries_takes_over_an_expired_claim(
    topic: Topic, ledger: DynamoLedger, clock: FakeClock
) -> None:
    with pytest.raises(_WorkerDied):
        SnsAlertPublisher(_DiesOnPublish(topic.sns), topic.arn, ledger, clock=clock).publish(
            task_error_alert(), dedupe_key="task#9123"
        )
    clock.advance(CLAIM_LEASE_SECONDS)
    publisher = SnsAlertPublisher(topic.sns, topic.arn, ledger, clock=clock)
    start = threading.Barrier(6)
    published = []

    def retry() -> None:
        start.wait()
        try:
            published.append(publisher.publish(task_error_alert(), dedupe_key="task#9123").published)
        except AlertInFlightError:
            published.append(False)

    threads = [threading.Thread(target=retry) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(published) == [False] * 5 + [True]
    assert len(topic.delivered()) == 1


def test_failed_publish_releases_the_claim_so_a_retry_alerts(
    topic: Topic, ledger: DynamoLedger, clock: FakeClock
) -> None:
    flaky = SnsAlertPublisher(ClientSpy(topic.sns, fail=("publish", 1)), topic.arn, ledger, clock=clock)

    with pytest.raises(AlertPublishError) as raised:
        flaky.publish(task_error_alert(), dedupe_key="task#9123")
    assert raised.value.operation == "Publish"
    assert ledger.get(f"alert#{PARTNER}", "reach_task_error#task#9123") is None
    assert topic.delivered() == []

    assert flaky.publish(task_error_alert(), dedupe_key="task#9123").published
    assert len(topic.delivered()) == 1


def test_no_publish_when_the_claim_cannot_be_made(topic: Topic, dynamodb: Any, clock: FakeClock) -> None:
    broken_ledger = DynamoLedger(ClientSpy(dynamodb, fail=("put_item", 1)), LEDGER_TABLE, clock=clock)
    with pytest.raises(LedgerUnavailableError):
        SnsAlertPublisher(topic.sns, topic.arn, broken_ledger, clock=clock).publish(
            task_error_alert(), dedupe_key="task#9123"
        )
    assert topic.delivered() == []


def test_ledger_row_records_the_published_alert(publisher: SnsAlertPublisher, ledger: DynamoLedger) -> None:
    outcome = publisher.publish(task_error_alert(), dedupe_key="task#9123")
    row = ledger.get(outcome.ledger_pk, outcome.ledger_sk)
    assert row is not None
    assert (outcome.ledger_pk, outcome.ledger_sk) == (f"alert#{PARTNER}", "reach_task_error#task#9123")
    assert (row["state"], row["message_id"], row["alert"]) == ("published", outcome.message_id, "reach_task_error")
    assert row["expires_at"] == 1_735_900_000 + 35 * 24 * 3600


def test_daily_period_alerts_once_per_utc_day(publisher: SnsAlertPublisher, topic: Topic, clock: FakeClock) -> None:
    credit = task_error_alert(rule="reach_credit_low", severity="warning", subject="REACH credit below 10%")
    sent = []
    for hours in (0, 5, 13.5, 1):  # 10:26 -> 15:26 -> 04:56 next day -> 05:56
        clock.advance(hours * 3600)
        sent.append(publisher.publish(credit, dedupe_key="credit", period=AlertPeriod.DAY).published)

    assert sent == [True, False, True, False]
    periods = [json.loads(envelope["Message"])["period"] for envelope in topic.delivered()]
    assert periods == ["2025-01-03", "2025-01-04"]


@pytest.mark.parametrize(
    ("period", "label"),
    [(AlertPeriod.HOUR, "2025-01-03T10"), (AlertPeriod.DAY, "2025-01-03"), (AlertPeriod.WEEK, "2025-W01")],
)
def test_period_bucket_labels(period: AlertPeriod, label: str) -> None:
    assert period.bucket(1_735_900_000) == label


def test_oversized_details_are_truncated_with_a_marker(publisher: SnsAlertPublisher, topic: Topic) -> None:
    huge = {"failed_entry_ids": [f"1_{index:08d}" for index in range(40_000)], "note": 'quotes " and \\ escapes'}
    publisher.publish(task_error_alert(details=huge), dedupe_key="bulk")

    [envelope] = topic.delivered()
    assert len(envelope["Message"].encode()) <= MESSAGE_MAX_BYTES
    details = json.loads(envelope["Message"])["details"]
    assert details["_truncated"] is True
    assert details["_original_bytes"] > MESSAGE_MAX_BYTES
    assert details["_preview"].startswith('{"failed_entry_ids":["1_00000000","1_00000001"')
    assert len(details["_preview"]) > 200_000  # as much as fits, not a stub


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("subject", "Attendee jane.doe@example.com left early"),
        ("summary", "host: j.doe+kaltura@sub.example.co.uk"),
        ("details", {"hosts": ["someone@example.org"]}),
        ("details", {"someone@example.org": 1}),
    ],
)
def test_alerts_refuse_e_mail_addresses(field: str, value: Any) -> None:
    with pytest.raises(AlertPersonalDataError) as raised:
        task_error_alert(**{field: value})
    assert "example" not in str(raised.value)  # the address itself is never repeated


def test_formula_like_text_is_not_mistaken_for_an_address() -> None:
    assert task_error_alert(summary="@SUM(1) and user@ and @host").summary.startswith("@SUM")


@pytest.mark.parametrize(
    "overrides",
    [
        {"rule": "Bad Rule"},
        {"severity": "fatal"},
        {"partner_id": 0},
        {"subject": "  "},
        {"details": {"when": object()}},
        {"links": ("",)},
    ],
)
def test_invalid_alerts_are_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(AlertContentError):
        task_error_alert(**overrides)


def test_dedupe_key_is_validated(publisher: SnsAlertPublisher) -> None:
    with pytest.raises(AlertContentError):
        publisher.publish(task_error_alert(), dedupe_key="")
    with pytest.raises(AlertContentError):
        publisher.publish(task_error_alert(), dedupe_key="line\nbreak")

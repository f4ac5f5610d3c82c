"""The intake service on in-memory fakes: order of checks, exactly-once enqueue, races, failures, status table."""

from __future__ import annotations

import hashlib
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
from helpers import forge_sha1_extension, webhook_samples
from kauto.aws.dedupe import RETENTION_SECONDS
from kauto.config import PartnerConfig
from kauto.errors import (
    ConfigError,
    DedupeStoreUnavailableError,
    KautoError,
    QueueUnavailableError,
    SecretUnavailableError,
)
from kauto.intake.errors import (
    HTTP_STATUS_BY_ERROR,
    MalformedRequestError,
    PartnerMismatchError,
    PayloadTooLargeError,
    SignatureError,
    UnknownPartnerError,
    UnsupportedBodyFormatError,
)
from kauto.intake.service import RELEASE_RESERVE_SECONDS, Outcome, WebhookIntake, respond
from kauto.models import EventKind, KalturaEvent

SECRET = "0123456789abcdef0123456789abcdef"
JOB_KEY = "1234567:job:33578094492"
STALL_SECONDS = 0.02
"""Budget left for the writes in the deadline tests: the only real waiting in this module."""


class FakePartners:
    def __init__(self, *partners: PartnerConfig, error: KautoError | None = None) -> None:
        self.partners = {partner.partner_id: partner for partner in partners}
        self.error = error
        self.lookups: list[int] = []

    def get(self, partner_id: int) -> PartnerConfig | None:
        self.lookups.append(partner_id)
        if self.error is not None:
            raise self.error
        return self.partners.get(partner_id)


@dataclass
class FakeQueue:
    messages: list[str] = field(default_factory=list)
    error: Exception | None = None
    stall: threading.Event | None = None
    """When set, ``send`` blocks until the event is set (a queue that does not answer), then sends."""
    sent: threading.Event = field(default_factory=threading.Event)

    def send(self, event: KalturaEvent) -> str:
        if self.stall is not None:
            self.stall.wait(timeout=5)
        if self.error is not None:
            raise self.error
        self.messages.append(event.to_json())
        self.sent.set()
        return f"message-{len(self.messages)}"


@dataclass
class Row:
    token: str
    expires_at: float


class FakeDedupe:
    """Same rules as DynamoDedupeStore: claim if absent or expired (or already ours); only the claimer releases."""

    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}
        self.claim_error: Exception | None = None
        self.claim_lands_then_fails = False
        self.claim_stall: threading.Event | None = None
        self.release_error: Exception | None = None
        self.releases: list[str] = []
        self._lock = threading.Lock()  # DynamoDB evaluates the condition and writes atomically

    def claim(self, key: str, token: str, *, now: float) -> bool:
        if self.claim_stall is not None:
            self.claim_stall.wait(timeout=5)
        if self.claim_error is not None:
            raise self.claim_error
        with self._lock:
            row = self.rows.get(key)
            if row is not None and row.expires_at >= now:
                return row.token == token
            self.rows[key] = Row(token, int(now) + RETENTION_SECONDS)
        if self.claim_lands_then_fails:
            raise DedupeStoreUnavailableError("dynamodb", "PutItem", "ReadTimeoutError")
        return True

    def release(self, key: str, token: str) -> bool:
        self.releases.append(key)
        if self.release_error is not None:
            raise self.release_error
        with self._lock:
            row = self.rows.get(key)
            if row is None or row.token != token:
                return False
            del self.rows[key]
        return True


class FakeClock:
    def __init__(self) -> None:
        self.now = 1767254714.0

    def time(self) -> float:
        return self.now


def partner(**overrides: Any) -> PartnerConfig:
    values: dict[str, Any] = {
        "partner_id": 1234567,
        "admin_secret": SECRET,
        "webhook_hash_algorithms": ("sha1", "sha256", "sha512"),
        "service_url": "https://www.kaltura.com",
        **overrides,
    }
    return PartnerConfig(**values)


@dataclass
class Harness:
    partners: FakePartners
    queue: FakeQueue
    dedupe: FakeDedupe
    clock: FakeClock
    intake: WebhookIntake

    def respond(self, event: dict[str, Any], remaining_seconds: float | None = None) -> tuple[int, dict[str, Any]]:
        answer = respond(event, remaining_seconds=remaining_seconds, intake=lambda: self.intake).to_api_gateway()
        return answer["statusCode"], json.loads(answer["body"])


def build(partners: FakePartners | None = None) -> Harness:
    clock = FakeClock()
    fakes = (partners or FakePartners(partner()), FakeQueue(), FakeDedupe())
    intake = WebhookIntake(
        partners=fakes[0], queue=fakes[1], dedupe=fakes[2], wall_clock=clock.time, monotonic=clock.time
    )
    return Harness(*fakes, clock, intake)


@pytest.fixture
def harness() -> Harness:
    return build()


def entry_event(**overrides: Any) -> dict[str, Any]:
    samples = webhook_samples()
    body = samples.php_json(
        samples.envelope(
            {**samples.MEDIA_ENTRY, **overrides},
            eventObjectType=1,
            eventNotificationJobId=33578094492,
            **samples.ENTRY_STATUS_EQUALS,
        )
    ).encode()
    return samples.http_api_event(body, algorithm="sha256")


def metrics_emitted(output: str) -> list[str]:
    return [
        metric["Name"]
        for line in output.splitlines()
        if line.startswith('{"_aws"')
        for directive in json.loads(line)["_aws"]["CloudWatchMetrics"]
        for metric in directive["Metrics"]
    ]


def test_authentic_entry_ready_is_enqueued_once_behind_a_claim_kept_eight_days(harness: Harness) -> None:
    status, body = harness.respond(entry_event())

    assert (status, body["outcome"], body["kind"]) == (200, "accepted", "entry_ready")
    (message,) = harness.queue.messages
    assert KalturaEvent.from_json(message).kind is EventKind.ENTRY_READY
    assert list(harness.dedupe.rows) == [JOB_KEY]
    assert harness.dedupe.rows[JOB_KEY].expires_at == int(harness.clock.now) + 8 * 86400
    assert harness.dedupe.releases == []


def test_sequential_redeliveries_are_duplicates(harness: Harness) -> None:
    answers = [harness.respond(entry_event()) for _ in range(3)]

    assert [(status, body["outcome"]) for status, body in answers] == [
        (200, "accepted"),
        (200, "duplicate"),
        (200, "duplicate"),
    ]
    assert len(harness.queue.messages) == 1


def test_concurrent_deliveries_of_one_job_enqueue_exactly_one_message(harness: Harness) -> None:
    start = threading.Barrier(8)

    def deliver(_: int) -> tuple[int, str]:
        start.wait(timeout=5)
        status, body = harness.respond(entry_event())
        return status, body["outcome"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(deliver, range(8)))

    assert sorted(answers) == [(200, "accepted")] + [(200, "duplicate")] * 7
    assert len(harness.queue.messages) == 1


def test_claim_row_past_its_expiry_is_claimed_again(harness: Harness) -> None:
    harness.dedupe.rows[JOB_KEY] = Row("long-ago", harness.clock.now - 1)  # expired, TTL has not deleted it yet

    status, body = harness.respond(entry_event())

    assert (status, body["outcome"]) == (200, "accepted")
    assert len(harness.queue.messages) == 1
    assert harness.dedupe.rows[JOB_KEY].token != "long-ago"


def test_authentic_other_event_is_200_and_touches_neither_dedupe_nor_queue(harness: Harness) -> None:
    status, body = harness.respond(entry_event(status=4))

    assert (status, body["outcome"], body["reason"]) == (200, "ignored", "not_acted_on")
    assert harness.queue.messages == []
    assert harness.dedupe.rows == {}


def test_signed_empty_body_is_ignored_with_its_own_reason(harness: Harness) -> None:
    event = webhook_samples().http_api_event(b"", content_type=None)

    status, body = harness.respond(event)

    assert (status, body["outcome"], body["reason"], body["kind"]) == (200, "ignored", "empty_body", "other")
    assert harness.queue.messages == []


def test_unsigned_empty_body_is_401(harness: Harness) -> None:
    event = webhook_samples().http_api_event(b"", content_type=None)
    del event["headers"]["x-kaltura-signature"]

    assert harness.respond(event)[0] == 401


def test_queue_failure_is_503_and_releases_the_claim_so_the_retry_gets_through(harness: Harness) -> None:
    harness.queue.error = QueueUnavailableError("sqs", "SendMessage", "ServiceUnavailable")

    status, body = harness.respond(entry_event())

    assert (status, body["reason"]) == (503, "queue_unavailable")
    assert harness.dedupe.rows == {}
    harness.queue.error = None
    assert harness.respond(entry_event())[1]["outcome"] == "accepted"
    assert len(harness.queue.messages) == 1


def test_unexpected_send_error_propagates_and_still_releases_the_claim(harness: Harness) -> None:
    harness.queue.error = RuntimeError("bug in the adapter")

    with pytest.raises(RuntimeError):
        harness.respond(entry_event())

    assert harness.dedupe.rows == {}


def test_release_failure_stays_503_is_counted_and_leaves_the_event_to_the_sweep(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    harness.queue.error = QueueUnavailableError("sqs", "SendMessage", "ServiceUnavailable")
    harness.dedupe.release_error = DedupeStoreUnavailableError("dynamodb", "DeleteItem", "InternalServerError")
    capsys.readouterr()

    status, body = harness.respond(entry_event())

    assert (status, body["reason"]) == (503, "queue_unavailable")
    assert "DedupeReleaseFailed" in metrics_emitted(capsys.readouterr().out)
    # The documented consequence: the claim stayed, so Kaltura's retry is answered as a duplicate (sweep recovers).
    harness.queue.error = harness.dedupe.release_error = None
    assert harness.respond(entry_event())[1]["outcome"] == "duplicate"
    assert harness.queue.messages == []


def test_queue_that_does_not_answer_before_the_deadline_is_503_with_the_claim_released(harness: Harness) -> None:
    harness.queue.stall = threading.Event()
    try:
        status, body = harness.respond(entry_event(), remaining_seconds=RELEASE_RESERVE_SECONDS + STALL_SECONDS)
        rows_after_answer = dict(harness.dedupe.rows)
    finally:
        harness.queue.stall.set()

    assert (status, body["reason"]) == (503, "queue_unavailable")
    assert rows_after_answer == {}


def test_invocation_without_time_for_the_writes_answers_503_and_writes_nothing(harness: Harness) -> None:
    status, body = harness.respond(entry_event(), remaining_seconds=RELEASE_RESERVE_SECONDS - 0.1)

    assert (status, body["reason"]) == (503, "dedupe_unavailable")
    assert harness.dedupe.rows == {}
    assert harness.queue.messages == []


def test_dedupe_table_unavailable_is_503_and_nothing_is_sent(harness: Harness) -> None:
    harness.dedupe.claim_error = DedupeStoreUnavailableError("dynamodb", "PutItem", "ProvisionedThroughputExceeded")

    status, body = harness.respond(entry_event())

    assert (status, body["outcome"], body["reason"]) == (503, "failed", "dedupe_unavailable")
    assert harness.queue.messages == []


def test_claim_written_but_answered_with_an_error_is_released_so_the_retry_gets_through(harness: Harness) -> None:
    harness.dedupe.claim_lands_then_fails = True

    assert harness.respond(entry_event())[0] == 503
    assert harness.dedupe.rows == {}

    harness.dedupe.claim_lands_then_fails = False
    assert harness.respond(entry_event())[1]["outcome"] == "accepted"
    assert len(harness.queue.messages) == 1


def test_dedupe_table_that_does_not_answer_before_the_deadline_is_503_then_the_late_writes_enqueue_once(
    harness: Harness,
) -> None:
    harness.dedupe.claim_stall = threading.Event()
    try:
        status, body = harness.respond(entry_event(), remaining_seconds=RELEASE_RESERVE_SECONDS + STALL_SECONDS)
        sent_before_answer = list(harness.queue.messages)
    finally:
        harness.dedupe.claim_stall.set()

    assert (status, body["reason"]) == (503, "dedupe_unavailable")
    assert sent_before_answer == []
    assert harness.dedupe.releases == [JOB_KEY]  # its put may still land: undo it if it did
    # The abandoned worker carries on once the table answers: it claims and sends, so the event is not lost and
    # Kaltura's retry is a duplicate.
    assert harness.queue.sent.wait(timeout=5)
    assert harness.respond(entry_event())[1]["outcome"] == "duplicate"
    assert len(harness.queue.messages) == 1


def test_unknown_partner_is_404_before_any_signature_or_parsing() -> None:
    harness = build(FakePartners())

    status, body = harness.respond(entry_event())

    assert (status, body["reason"]) == (404, "unknown_partner")
    assert harness.partners.lookups == [1234567]


def test_control_bytes_are_refused_before_the_partner_secret_is_even_looked_up(harness: Harness) -> None:
    samples = webhook_samples()
    event = samples.http_api_event(b'{"object":{}}\x00\x80', algorithm="sha1", base64_encoded=True)

    status, body = harness.respond(event)

    assert (status, body["reason"]) == (400, "control_bytes")
    assert harness.partners.lookups == []


def test_length_extension_forgery_gets_400_even_with_a_valid_signature(harness: Harness) -> None:
    original = entry_event()["body"].encode()
    signature = hashlib.sha1(SECRET.encode() + original).hexdigest()  # noqa: S324 - Kaltura's default algorithm
    forged_body, forged_signature = forge_sha1_extension(signature, len(SECRET), original, b',"x":1}')
    event = webhook_samples().http_api_event(
        forged_body, base64_encoded=True, headers={"x-kaltura-signature": forged_signature}, algorithm="sha1"
    )
    assert hashlib.sha1(SECRET.encode() + forged_body).hexdigest() == forged_signature  # noqa: S324 - it works

    status, body = harness.respond(event)

    assert (status, body["reason"]) == (400, "control_bytes")
    assert harness.partners.lookups == []
    assert harness.queue.messages == []


def test_partner_mismatch_is_403_after_verification(harness: Harness) -> None:
    status, body = harness.respond(entry_event(partnerId=7654321))

    assert (status, body["reason"]) == (403, "partner_mismatch")


@pytest.mark.parametrize(
    ("error", "status", "reason"),
    [
        (PayloadTooLargeError("payload_too_large", "too big"), 413, "payload_too_large"),
        (MalformedRequestError("malformed_json", "bad"), 400, "malformed_json"),
        (UnsupportedBodyFormatError("php_serialized", "php"), 415, "php_serialized"),
        (SignatureError("bad_signature", "bad"), 401, "bad_signature"),
        (UnknownPartnerError("unknown_partner", "who"), 404, "unknown_partner"),
        (PartnerMismatchError("partner_mismatch", "not yours"), 403, "partner_mismatch"),
        (QueueUnavailableError("sqs", "SendMessage", "x"), 503, "queue_unavailable"),
        (DedupeStoreUnavailableError("dynamodb", "PutItem", "x"), 503, "dedupe_unavailable"),
        (SecretUnavailableError("secretsmanager", "GetSecretValue", "x"), 503, "secrets_unavailable"),
        (ConfigError("PARTNER_SECRETS_ARN", "environment variable is not set"), 500, "config_error"),
    ],
)
def test_every_error_maps_to_one_status_and_a_reason(error: KautoError, status: int, reason: str) -> None:
    harness = build(FakePartners(error=error))

    answer_status, body = harness.respond(entry_event())

    assert (answer_status, body["reason"]) == (status, reason)
    assert body["outcome"] == ("rejected" if status < 500 else "failed")
    assert harness.queue.messages == []


def test_status_table_never_answers_a_success_kaltura_would_count() -> None:
    assert all(status not in (200, 201, 202, 204) for status, _ in HTTP_STATUS_BY_ERROR.values())


def test_configuration_error_while_building_the_intake_is_500_not_an_acceptance() -> None:
    def broken() -> WebhookIntake:
        raise ConfigError("EVENTS_QUEUE_URL", "environment variable is not set")

    answer = respond(entry_event(), intake=broken)

    assert (answer.status_code, answer.outcome, answer.reason) == (500, Outcome.FAILED, "config_error")
    assert "EVENTS_QUEUE_URL" not in (answer.message or "")  # internals stay in the logs


def test_unmapped_errors_propagate_so_lambda_reports_them() -> None:
    class Bug(KautoError):
        pass

    def buggy() -> WebhookIntake:
        raise Bug("unexpected")

    with pytest.raises(Bug):
        respond(entry_event(), intake=buggy)

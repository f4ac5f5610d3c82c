"""The intake service on in-memory fakes: order of checks, exactly-once enqueue, races, failures, status table."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from helpers import forge_sha1_extension, webhook_samples
from kauto.aws.dedupe import ClaimResult, ClaimState
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
    ClaimInProgressError,
    MalformedRequestError,
    PartnerMismatchError,
    PayloadTooLargeError,
    SignatureError,
    UnknownPartnerError,
    UnsupportedBodyFormatError,
)
from kauto.intake.request import request_from_api_gateway
from kauto.intake.service import CLAIM_POLL_INTERVAL_SECONDS, Outcome, WebhookIntake, respond
from kauto.models import EventKind, KalturaEvent

SECRET = "0123456789abcdef0123456789abcdef"
JOB_KEY = "1234567:job:33578094492"


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
    fail: bool = False

    def send(self, event: KalturaEvent) -> str:
        if self.fail:
            raise QueueUnavailableError("sqs", "SendMessage", "ServiceUnavailable")
        self.messages.append(event.to_json())
        return f"message-{len(self.messages)}"


@dataclass
class Row:
    state: ClaimState
    token: str
    lease_until: float
    message_id: str | None = None


class FakeDedupe:
    """Same rules as DynamoDedupeStore: claim if absent or its lease ran out; only the owner marks or releases."""

    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}
        self.fail_claim = False
        self.fail_mark = False
        self.fail_release = False
        self.on_poll: list[Any] = []  # callables run on each failed claim (simulate the other delivery progressing)

    def try_claim(self, key: str, *, now: float, lease_seconds: float) -> ClaimResult:
        if self.fail_claim:
            raise DedupeStoreUnavailableError("dynamodb", "PutItem", "ProvisionedThroughputExceededException")
        row = self.rows.get(key)
        if row is None or (row.state is ClaimState.PENDING and row.lease_until < now):
            token = uuid.uuid4().hex
            self.rows[key] = Row(ClaimState.PENDING, token, now + lease_seconds)
            return ClaimResult(token=token, existing=None)
        if self.on_poll:
            self.on_poll.pop(0)()
        return ClaimResult(token=None, existing=row.state)

    def mark_enqueued(self, key: str, token: str, *, message_id: str, now: float) -> bool:
        if self.fail_mark:
            raise DedupeStoreUnavailableError("dynamodb", "UpdateItem", "InternalServerError")
        row = self.rows.get(key)
        if row is None or row.token != token:
            return False
        row.state, row.message_id = ClaimState.ENQUEUED, message_id
        return True

    def release(self, key: str, token: str) -> bool:
        if self.fail_release:
            raise DedupeStoreUnavailableError("dynamodb", "DeleteItem", "InternalServerError")
        row = self.rows.get(key)
        if row is None or row.token != token or row.state is not ClaimState.PENDING:
            return False
        del self.rows[key]
        return True


class FakeClock:
    def __init__(self) -> None:
        self.now = 1767254714.0
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


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

    def respond(self, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        answer = respond(event, intake=lambda: self.intake).to_api_gateway()
        return answer["statusCode"], json.loads(answer["body"])


def build(partners: FakePartners | None = None, claim_wait_seconds: float = 0.1) -> Harness:
    clock = FakeClock()
    fakes = (partners or FakePartners(partner()), FakeQueue(), FakeDedupe())
    intake = WebhookIntake(
        partners=fakes[0],
        queue=fakes[1],
        dedupe=fakes[2],
        claim_wait_seconds=claim_wait_seconds,
        wall_clock=clock.time,
        monotonic=clock.time,
        sleep=clock.sleep,
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


def test_authentic_entry_ready_is_enqueued_once_and_marked(harness: Harness) -> None:
    status, body = harness.respond(entry_event())

    assert (status, body["outcome"], body["kind"]) == (200, "accepted", "entry_ready")
    (message,) = harness.queue.messages
    assert KalturaEvent.from_json(message).kind is EventKind.ENTRY_READY
    assert harness.dedupe.rows[JOB_KEY].state is ClaimState.ENQUEUED
    assert harness.dedupe.rows[JOB_KEY].message_id == "message-1"


def test_sequential_redeliveries_are_duplicates(harness: Harness) -> None:
    answers = [harness.respond(entry_event()) for _ in range(3)]

    assert [(status, body["outcome"]) for status, body in answers] == [
        (200, "accepted"),
        (200, "duplicate"),
        (200, "duplicate"),
    ]
    assert len(harness.queue.messages) == 1


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


def test_fresh_claim_held_by_a_concurrent_delivery_gives_503_after_a_bounded_wait(harness: Harness) -> None:
    harness.dedupe.rows[JOB_KEY] = Row(ClaimState.PENDING, "other", harness.clock.now + 10)

    status, body = harness.respond(entry_event())

    assert (status, body["reason"]) == (503, "claim_in_progress")
    assert harness.queue.messages == []
    assert sum(harness.clock.sleeps) <= 0.1 + CLAIM_POLL_INTERVAL_SECONDS
    assert harness.dedupe.rows[JOB_KEY].token == "other"  # the other delivery's claim is untouched


def test_claim_that_resolves_to_enqueued_during_the_wait_is_a_duplicate(harness: Harness) -> None:
    harness.dedupe.rows[JOB_KEY] = Row(ClaimState.PENDING, "other", harness.clock.now + 10)
    harness.dedupe.on_poll = [lambda: None, lambda: setattr(harness.dedupe.rows[JOB_KEY], "state", ClaimState.ENQUEUED)]

    status, body = harness.respond(entry_event())

    assert (status, body["outcome"]) == (200, "duplicate")
    assert harness.queue.messages == []


def test_claim_released_by_a_failed_concurrent_delivery_is_taken_and_sent(harness: Harness) -> None:
    harness.dedupe.rows[JOB_KEY] = Row(ClaimState.PENDING, "other", harness.clock.now + 10)
    harness.dedupe.on_poll = [lambda: harness.dedupe.rows.pop(JOB_KEY)]

    status, body = harness.respond(entry_event())

    assert (status, body["outcome"]) == (200, "accepted")
    assert len(harness.queue.messages) == 1


def test_claim_of_a_dead_delivery_is_taken_over(harness: Harness) -> None:
    harness.dedupe.rows[JOB_KEY] = Row(ClaimState.PENDING, "dead", harness.clock.now - 1)

    assert harness.respond(entry_event())[1]["outcome"] == "accepted"
    assert len(harness.queue.messages) == 1


def test_without_wait_budget_a_fresh_claim_is_503_at_once() -> None:
    harness = build(claim_wait_seconds=0)
    harness.dedupe.rows[JOB_KEY] = Row(ClaimState.PENDING, "other", harness.clock.now + 10)

    assert harness.respond(entry_event())[0] == 503
    assert harness.clock.sleeps == []


def test_queue_failure_is_503_and_releases_the_claim_so_the_retry_gets_through(harness: Harness) -> None:
    harness.queue.fail = True

    assert harness.respond(entry_event())[0] == 503
    assert harness.dedupe.rows == {}

    harness.queue.fail = False
    assert harness.respond(entry_event())[1]["outcome"] == "accepted"
    assert len(harness.queue.messages) == 1


def test_queue_failure_stays_503_when_the_release_fails_too(harness: Harness) -> None:
    harness.queue.fail = True
    harness.dedupe.fail_release = True

    status, body = harness.respond(entry_event())

    assert (status, body["reason"]) == (503, "queue_unavailable")


def test_failure_to_mark_after_the_send_still_answers_200(harness: Harness) -> None:
    harness.dedupe.fail_mark = True

    status, body = harness.respond(entry_event())

    assert (status, body["outcome"]) == (200, "accepted")
    assert len(harness.queue.messages) == 1


def test_dedupe_table_unavailable_is_503_and_nothing_is_sent(harness: Harness) -> None:
    harness.dedupe.fail_claim = True

    status, body = harness.respond(entry_event())

    assert (status, body["outcome"], body["reason"]) == (503, "failed", "dedupe_unavailable")
    assert harness.queue.messages == []


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
        (ClaimInProgressError("claim_in_progress", "later"), 503, "claim_in_progress"),
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


def test_lease_of_the_claim_covers_the_invocations_remaining_time(harness: Harness) -> None:
    request = request_from_api_gateway(entry_event(), now=harness.clock.now, remaining_seconds=9.0)

    harness.intake.process(request)

    assert harness.dedupe.rows[JOB_KEY].lease_until == pytest.approx(harness.clock.now + 14.0)

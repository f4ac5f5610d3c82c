"""The webhook handler end to end against moto in server mode (real HTTP to SQS, DynamoDB, Secrets Manager)."""

from __future__ import annotations

import base64
import json
import re
import time
from typing import Any

import boto3
import pytest
from helpers import (
    REPO_ROOT,
    FakeLambdaContext,
    captured_logs,
    clear_all_kauto_caches,
    create_webhook_stack,
    dedupe_rows,
    drain_queue,
    load_handler,
    partner_document,
    webhook_samples,
)

pytestmark = pytest.mark.integration

SECRET = "0123456789abcdef0123456789abcdef"
OLD_SECRET = "fedcba9876543210fedcba9876543210"
EVENTS_DIR = REPO_ROOT / "events" / "webhook"


def all_algorithms_partner(**overrides: Any) -> dict[str, Any]:
    return {
        "admin_secret": SECRET,
        "webhook_hash_algorithms": ["sha1", "sha256", "sha512"],
        "service_url": "https://www.kaltura.com",
        **overrides,
    }


@pytest.fixture
def stack(moto_aws: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    return create_webhook_stack(monkeypatch, partner_document(p1234567=all_algorithms_partner()))


@pytest.fixture
def handler() -> Any:
    return load_handler("webhook").lambda_handler


def invoke(handler: Any, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = handler(event, FakeLambdaContext())
    return response["statusCode"], json.loads(response["body"])


def sample_names() -> list[str]:
    return sorted(path.name.removesuffix(".event.json") for path in EVENTS_DIR.glob("*.event.json"))


@pytest.mark.parametrize("name", sample_names())
def test_each_committed_sample_produces_its_expected_message(stack: Any, handler: Any, name: str) -> None:
    event = json.loads((EVENTS_DIR / f"{name}.event.json").read_text())
    expected = json.loads((EVENTS_DIR / f"{name}.expected.json").read_text())

    status, body = invoke(handler, event)

    assert (status, body["outcome"]) == (expected["status_code"], expected["outcome"])
    messages = drain_queue(stack.queue_url)
    assert messages == ([expected["event"]] if expected["event"] is not None else [])


@pytest.mark.parametrize("name", sample_names())
def test_redelivery_of_a_sample_is_a_duplicate_and_enqueues_nothing(stack: Any, handler: Any, name: str) -> None:
    event = json.loads((EVENTS_DIR / f"{name}.event.json").read_text())
    expected = json.loads((EVENTS_DIR / f"{name}.expected.json").read_text())
    first_status, _ = invoke(handler, event)

    second_status, second = invoke(handler, event)

    assert first_status == second_status == 200
    assert second["outcome"] == ("duplicate" if expected["event"] is not None else "ignored")
    assert len(drain_queue(stack.queue_url)) == (1 if expected["event"] is not None else 0)


def test_accepted_delivery_leaves_one_claim_row_kept_for_eight_days(stack: Any, handler: Any) -> None:
    event = json.loads((EVENTS_DIR / "entry_ready_object_json.event.json").read_text())

    invoke(handler, event)

    (row,) = dedupe_rows(stack.table_name)
    assert row["pk"]["S"] == "1234567:job:33578094492"
    assert row["claim_token"]["S"]
    retention = int(row["expires_at"]["N"]) - float(row["claimed_at"]["N"])
    assert 8 * 86400 - 2 <= retention <= 8 * 86400


def test_secrets_personal_data_and_signatures_reach_neither_queue_nor_logs(
    stack: Any, handler: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    samples = webhook_samples()
    event = json.loads((EVENTS_DIR / "vendor_task_ready_object_xml.event.json").read_text())
    with captured_logs() as log_stream:
        invoke(handler, event)
        invoke(handler, {**event, "headers": {**event["headers"], "x-kaltura-signature": "0" * 128}})
    logs = log_stream.getvalue()
    output = logs + capsys.readouterr().out + json.dumps(drain_queue(stack.queue_url))

    forbidden = [
        samples.VENDOR_TASK_READY["accessKey"],
        "jane.doe@example.com",
        SECRET,
        event["headers"]["x-kaltura-signature"],
        "<notification>",
    ]
    assert [value for value in forbidden if value in output] == []
    assert '"partner_id":1234567' in logs.replace(" ", "")
    assert "33578101877" in logs  # the job id correlates the log lines


def emf_documents(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith('{"_aws"')]


def test_outcomes_are_counted_per_kind_and_per_rejection_reason(
    stack: Any, handler: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    event = json.loads((EVENTS_DIR / "entry_ready_object_json.event.json").read_text())
    capsys.readouterr()

    invoke(handler, event)
    invoke(handler, event)
    invoke(handler, {**event, "headers": {**event["headers"], "x-kaltura-signature": "0" * 64}})

    counted = [
        (name, {key: doc[key] for key in ("kind", "reason") if key in doc})
        for doc in emf_documents(capsys.readouterr().out)
        for metric in doc["_aws"]["CloudWatchMetrics"]
        for name in [entry["Name"] for entry in metric["Metrics"]]
    ]
    assert counted == [
        ("NotificationAccepted", {"kind": "entry_ready"}),
        ("NotificationDuplicate", {"kind": "entry_ready"}),
        ("NotificationRejected", {"reason": "bad_signature"}),
    ]


def test_queue_failure_answers_503_leaves_no_claim_and_kalturas_retry_gets_through(
    stack: Any, handler: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = json.loads((EVENTS_DIR / "entry_ready_object_json.event.json").read_text())
    monkeypatch.setenv("EVENTS_QUEUE_URL", stack.queue_url.replace("/events", "/no-such-queue"))

    status, body = invoke(handler, event)

    assert (status, body["reason"]) == (503, "queue_unavailable")
    assert dedupe_rows(stack.table_name) == []
    assert drain_queue(stack.queue_url) == []

    monkeypatch.setenv("EVENTS_QUEUE_URL", stack.queue_url)
    clear_all_kauto_caches()  # a new Lambda instance reads its environment afresh

    assert invoke(handler, event)[0] == 200
    assert len(drain_queue(stack.queue_url)) == 1


def test_claim_row_past_its_expiry_not_yet_deleted_by_ttl_does_not_block_the_event(stack: Any, handler: Any) -> None:
    event = json.loads((EVENTS_DIR / "entry_ready_object_json.event.json").read_text())
    now = time.time()
    boto3.client("dynamodb").put_item(
        TableName=stack.table_name,
        Item={
            "pk": {"S": "1234567:job:33578094492"},
            "claim_token": {"S": "nine-days-ago"},
            "claimed_at": {"N": f"{now - 9 * 86400:.3f}"},
            "expires_at": {"N": str(int(now) - 86400)},
        },
    )

    status, body = invoke(handler, event)

    assert (status, body["outcome"]) == (200, "accepted")
    assert len(drain_queue(stack.queue_url)) == 1
    (row,) = dedupe_rows(stack.table_name)
    assert row["claim_token"]["S"] != "nine-days-ago"


def test_previous_admin_secret_is_accepted_during_rotation(moto_aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    stack = create_webhook_stack(
        monkeypatch,
        partner_document(p1234567=all_algorithms_partner(admin_secret=OLD_SECRET[::-1], previous_admin_secret=SECRET)),
    )
    event = json.loads((EVENTS_DIR / "entry_ready_object_json.event.json").read_text())

    status, _ = invoke(load_handler("webhook").lambda_handler, event)

    assert status == 200
    assert len(drain_queue(stack.queue_url)) == 1


def test_unknown_partner_is_404(stack: Any, handler: Any) -> None:
    samples = webhook_samples()
    body = samples.php_json(
        samples.envelope(
            {**samples.MEDIA_ENTRY, "partnerId": 7654321},
            eventObjectType=1,
            eventNotificationJobId=1,
            **samples.ENTRY_STATUS_EQUALS,
        )
    ).encode()

    status, answer = invoke(handler, samples.http_api_event(body, partner_id="7654321", algorithm="sha256"))

    assert (status, answer["reason"]) == (404, "unknown_partner")
    assert drain_queue(stack.queue_url) == []


@pytest.mark.parametrize(
    ("secret_setup", "expected_status", "expected_reason"),
    [
        ("unset", 500, "config_error"),
        ("missing_secret", 500, "config_error"),
        ("not_json", 500, "config_error"),
        # A broken partner entry disables that partner alone: 503, Kaltura retries until it is fixed.
        ("partner_without_secret", 503, "partner_misconfigured"),
        ("unknown_algorithm", 503, "partner_misconfigured"),
    ],
)
def test_missing_or_broken_secret_configuration_never_fails_open(
    moto_aws: str, monkeypatch: pytest.MonkeyPatch, secret_setup: str, expected_status: int, expected_reason: str
) -> None:
    documents = {
        "unset": "{}",
        "missing_secret": "{}",
        "not_json": "admin_secret=0123",
        "partner_without_secret": partner_document(p1234567=all_algorithms_partner(admin_secret="")),
        "unknown_algorithm": partner_document(p1234567=all_algorithms_partner(webhook_hash_algorithms=["md5"])),
    }
    stack = create_webhook_stack(monkeypatch, documents[secret_setup])
    if secret_setup == "unset":
        monkeypatch.delenv("PARTNER_SECRETS_ARN")
    if secret_setup == "missing_secret":
        monkeypatch.setenv("PARTNER_SECRETS_ARN", stack.secret_arn.replace("kaltura/partners", "kaltura/gone"))
    event = json.loads((EVENTS_DIR / "entry_ready_object_json.event.json").read_text())

    status, body = invoke(load_handler("webhook").lambda_handler, event)

    assert (status, body["reason"]) == (expected_status, expected_reason)
    assert drain_queue(stack.queue_url) == []


def test_body_naming_another_partner_is_forbidden(stack: Any, handler: Any) -> None:
    samples = webhook_samples()
    body = samples.php_json(
        samples.envelope(
            {**samples.MEDIA_ENTRY, "partnerId": 7654321},
            eventObjectType=1,
            eventNotificationJobId=5,
            **samples.ENTRY_STATUS_EQUALS,
        )
    ).encode()

    status, body_json = invoke(handler, samples.http_api_event(body, algorithm="sha256"))

    assert (status, body_json["reason"]) == (403, "partner_mismatch")
    assert drain_queue(stack.queue_url) == []


@pytest.mark.parametrize(
    ("mutate", "status", "reason"),
    [
        (
            lambda e: {**e, "headers": {k: v for k, v in e["headers"].items() if k != "x-kaltura-signature"}},
            401,
            "missing_signature",
        ),
        (lambda e: {**e, "headers": {**e["headers"], "x-kaltura-hash-algo": "sha1"}}, 401, "algorithm_not_allowed"),
        (lambda e: {**e, "body": e["body"].replace("Quarterly", "Quarterlz")}, 401, "bad_signature"),
        (lambda e: {**e, "body": "{" * 300_000}, 413, "payload_too_large"),
        (lambda e: {**e, "pathParameters": {"partnerId": "../1234567"}}, 404, "unknown_partner"),
    ],
)
def test_rejections_reach_kaltura_as_4xx_and_enqueue_nothing(
    moto_aws: str, monkeypatch: pytest.MonkeyPatch, mutate: Any, status: int, reason: str
) -> None:
    stack = create_webhook_stack(
        monkeypatch, partner_document(p1234567=all_algorithms_partner(webhook_hash_algorithms=["sha256"]))
    )
    event = json.loads((EVENTS_DIR / "entry_ready_object_json.event.json").read_text())

    answer = invoke(load_handler("webhook").lambda_handler, mutate(event))

    assert (answer[0], answer[1]["reason"]) == (status, reason)
    assert drain_queue(stack.queue_url) == []
    assert dedupe_rows(stack.table_name) == []


def test_php_serialized_body_is_415(stack: Any, handler: Any) -> None:
    samples = webhook_samples()
    body = b'data=O:24:"KalturaHttpNotification":1:{s:10:"objectType";s:24:"KalturaHttpNotification";}'
    event = samples.http_api_event(body, content_type="application/xml", algorithm="sha1")

    status, answer = invoke(handler, event)

    assert (status, answer["reason"]) == (415, "php_serialized")
    assert drain_queue(stack.queue_url) == []


def test_base64_body_is_verified_on_the_decoded_bytes(stack: Any, handler: Any) -> None:
    event = json.loads((EVENTS_DIR / "entry_ready_object_json.event.json").read_text())
    encoded = {**event, "body": base64.b64encode(event["body"].encode()).decode(), "isBase64Encoded": True}

    assert invoke(handler, encoded)[0] == 200
    assert len(drain_queue(stack.queue_url)) == 1


def test_samples_are_committed_for_every_body_variant() -> None:
    formats = {
        json.loads(path.read_text())["event"]["body_format"]
        for path in EVENTS_DIR.glob("*.expected.json")
        if json.loads(path.read_text())["event"]
    }
    assert formats == {"object_json", "object_json_form", "object_xml", "data_fields"}
    assert any(json.loads(p.read_text())["isBase64Encoded"] for p in EVENTS_DIR.glob("*.event.json"))
    assert all(re.fullmatch(r"[a-z0-9_]+\.(event|expected)\.json", p.name) for p in EVENTS_DIR.glob("*.json"))

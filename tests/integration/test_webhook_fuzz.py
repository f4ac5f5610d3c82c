"""The real webhook handler against moto (SQS, DynamoDB, Secrets Manager over HTTP) under fuzzed deliveries: only
documented statuses, no exception out of the handler, and a signed body with a lone surrogate escape and no job id
accepted once, its message readable by the worker."""

from __future__ import annotations

import json
from typing import Any

import pytest
from helpers import FakeLambdaContext, create_webhook_stack, drain_queue, load_handler, partner_document
from hypothesis import HealthCheck, given, settings
from kauto.models import KalturaEvent
from webhook_fuzz import DOCUMENTED, SAMPLES, SECRET, deliveries, envelope_without_job_id

pytestmark = pytest.mark.integration


@pytest.fixture
def stack(moto_aws: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    partner = {
        "admin_secret": SECRET,
        "webhook_hash_algorithms": ["sha1", "sha256", "sha512"],
        "service_url": "https://www.kaltura.com",
    }
    return create_webhook_stack(monkeypatch, partner_document(p1234567=partner))


@pytest.fixture
def handler() -> Any:
    return load_handler("webhook").lambda_handler


def test_a_signed_lone_surrogate_without_job_id_is_queued_once(stack: Any, handler: Any) -> None:
    event = SAMPLES.http_api_event(envelope_without_job_id("\ud800 recording"), algorithm="sha256")

    answers = [handler(event, FakeLambdaContext()) for _ in range(2)]

    assert [(a["statusCode"], json.loads(a["body"])["outcome"]) for a in answers] == [
        (200, "accepted"),
        (200, "duplicate"),
    ]
    (message,) = drain_queue(stack.queue_url)
    queued = KalturaEvent.from_dict(message)
    assert queued.entry_id == SAMPLES.MEDIA_ENTRY["id"]
    assert queued.job_id is None


# Each example costs a few HTTP calls to moto; the unit fuzz test runs many more on fakes.
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(delivery=deliveries())
def test_fuzzed_deliveries_get_documented_statuses_from_the_real_handler(
    stack: Any, handler: Any, delivery: tuple[dict[str, Any], str, bytes]
) -> None:
    event, signing, body = delivery

    answer = handler(event, FakeLambdaContext())

    assert answer["statusCode"] in DOCUMENTED
    if signing in ("missing", "random") and body:
        assert answer["statusCode"] != 200

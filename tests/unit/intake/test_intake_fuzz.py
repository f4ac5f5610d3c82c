"""Property-based fuzzing of the webhook service on fakes: whatever arrives, signed or not, the answer is one of the
documented statuses (README, "The webhook contract") and no exception escapes (strategies: ``tests/webhook_fuzz.py``).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from kauto.intake.service import respond
from webhook_fuzz import DOCUMENTED, SAMPLES, Queue, any_text, deliveries, envelope_without_job_id, fake_intake


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(deliveries())
def test_any_delivery_gets_a_documented_status_and_never_an_exception(
    delivery: tuple[dict[str, Any], str, bytes],
) -> None:
    event, signing, body = delivery

    answer = respond(event, intake=fake_intake).to_api_gateway()

    assert answer["statusCode"] in DOCUMENTED
    assert json.loads(answer["body"])["outcome"] in {"accepted", "duplicate", "ignored", "rejected"}
    if signing in ("missing", "random") and body:
        assert answer["statusCode"] != 200  # nothing unverified is ever taken


@pytest.mark.parametrize("name", ["\ud800", "\udfff tail", "ok \ud83d"])
def test_signed_body_with_a_lone_surrogate_and_no_job_id_is_accepted_once(name: str) -> None:
    body = envelope_without_job_id(name)
    assert b"\\ud8" in body or b"\\udf" in body  # the escape is in the wire bytes, as PHP writes it
    queue = Queue()
    intake = fake_intake(queue)

    answers = [
        respond(SAMPLES.http_api_event(body, algorithm="sha256"), intake=lambda: intake).to_api_gateway()
        for _ in range(2)
    ]

    outcomes = [(answer["statusCode"], json.loads(answer["body"])["outcome"]) for answer in answers]
    assert outcomes == [(200, "accepted"), (200, "duplicate")]
    assert len(queue.bodies) == 1


@example(first="\ud800", second="\udc00")
@given(any_text, any_text)
def test_content_keys_of_different_names_differ(first: str, second: str) -> None:
    intake = fake_intake()
    keys = []
    for name in (first, second):
        answer = respond(
            SAMPLES.http_api_event(envelope_without_job_id(name), algorithm="sha256"), intake=lambda: intake
        ).to_api_gateway()
        keys.append(json.loads(answer["body"]).get("dedupe_key"))
    assert (keys[0] == keys[1]) == (first == second)

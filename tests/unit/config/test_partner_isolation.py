"""One partner's broken secret entry stays that partner's: its webhooks answer 503 until the secret is fixed, and the
fix is picked up on a rate-limited refresh, without a redeploy (the sweep's side: tests/unit/automations/
test_sweep_config.py)."""

from __future__ import annotations

import json
from typing import Any

from helpers import MemoryDedupe, webhook_samples
from kauto.aws.secrets import CachedSecret
from kauto.config import PartnerDirectory, parse_partner_secrets
from kauto.intake.service import WebhookIntake, respond
from kauto.models import KalturaEvent

SAMPLES = webhook_samples()
BROKEN = SAMPLES.PARTNER_ID


def secret_entry(**changes: Any) -> dict[str, Any]:
    return {"admin_secret": SAMPLES.FAKE_ADMIN_SECRET, "webhook_hash_algorithms": ["sha256"], **changes}


class Documents:
    """The secret as Secrets Manager holds it: the test edits ``text``; ``fetches`` counts reads."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.text = json.dumps(document)
        self.fetches = 0

    def fetch(self, _arn: str) -> str:
        self.fetches += 1
        return self.text


class Queue:
    def __init__(self) -> None:
        self.sent: list[KalturaEvent] = []

    def send(self, event: KalturaEvent) -> str:
        self.sent.append(event)
        return str(len(self.sent))


def entry_ready() -> dict[str, Any]:
    body = SAMPLES.php_json(
        SAMPLES.envelope(
            SAMPLES.MEDIA_ENTRY, eventObjectType=1, eventNotificationJobId=77, **SAMPLES.ENTRY_STATUS_EQUALS
        )
    ).encode()
    return SAMPLES.http_api_event(body, algorithm="sha256")


def test_a_broken_partner_gets_503_until_its_entry_is_fixed_then_the_retry_is_accepted() -> None:
    documents = Documents({"partners": {str(BROKEN): secret_entry(webhook_hash_algorithms=["sha265"])}})
    now = [0.0]
    secret = CachedSecret("arn:secret", parse_partner_secrets, fetch=documents.fetch, clock=lambda: now[0])
    queue = Queue()
    intake = WebhookIntake(partners=PartnerDirectory(secret), queue=queue, dedupe=MemoryDedupe())

    def deliver() -> tuple[int, dict[str, Any]]:
        answer = respond(entry_ready(), intake=lambda: intake).to_api_gateway()
        return answer["statusCode"], json.loads(answer["body"])

    status, body = deliver()
    assert (status, body["reason"]) == (503, "partner_misconfigured")
    assert "sha265" not in json.dumps(body) and queue.sent == []

    documents.text = json.dumps({"partners": {str(BROKEN): secret_entry()}})
    now[0] = 10.0
    assert deliver()[0] == 503  # refreshed too recently: Secrets Manager is not read on every retry
    assert documents.fetches == 1

    now[0] = 31.0  # past the minimum refresh interval (and well within the five-minute cache lifetime)
    status, body = deliver()
    assert (status, body["outcome"]) == (200, "accepted")
    assert len(queue.sent) == 1

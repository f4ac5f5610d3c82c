"""One partner's broken configuration stays that partner's, through the local product: two partners, one with a typo
in its partner secret entry. The good partner's notification is answered 200 and queued; the broken one's 503
(Kaltura retries, nothing is lost) and the sweep alerts once, naming the partner and the setting. Once the secret is
fixed, Kaltura's retry is accepted and queued."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from helpers import clear_all_kauto_caches
from kauto_local.http_api import LocalHttpApi
from kauto_local.poller import queue_depth
from kauto_local.runtime import LocalLambdaRuntime
from kauto_local.simulator import KalturaSimulator
from kauto_local.stack import LocalAwsStack

pytestmark = pytest.mark.integration

GOOD, BROKEN = 1234567, 7654321
ADMIN_SECRET = "0123456789abcdef0123456789abcdef"


def secret_entry(service_url: str, **changes: Any) -> dict[str, Any]:
    return {"admin_secret": ADMIN_SECRET, "webhook_hash_algorithms": ["sha256"], "service_url": service_url, **changes}


@dataclass
class Product:
    sim: KalturaSimulator
    aws: LocalAwsStack
    runtime: LocalLambdaRuntime
    http_api: LocalHttpApi
    alerts_queue_url: str

    def notify_entry_ready(self, partner_id: int) -> tuple[str, Any]:
        """Kaltura notifies that a new entry of ``partner_id`` is ready: (entry id, the delivery and its attempts)."""
        entry = self.sim.add_entry(partner_id, name=f"Lecture of {partner_id}", duration=300)
        url = f"{self.http_api.url}/kaltura/notifications/{partner_id}"
        envelope = self.sim.dispatcher.entry_ready_envelope(entry.id)
        return entry.id, self.sim.dispatcher.send(url, envelope, partner_id=partner_id, hash_algorithm="sha256")

    def events_queued(self) -> list[dict[str, Any]]:
        sqs = self.aws.client("sqs")
        url = self.aws.outputs["EventsQueueUrl"]
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
        assert len(messages.get("Messages", [])) == queue_depth(sqs, url)
        return [json.loads(message["Body"]) for message in messages.get("Messages", [])]

    def alerts(self) -> list[dict[str, Any]]:
        sqs = self.aws.client("sqs")
        found = []
        while messages := sqs.receive_message(QueueUrl=self.alerts_queue_url, MaxNumberOfMessages=10).get("Messages"):
            for message in messages:
                found.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.alerts_queue_url, ReceiptHandle=message["ReceiptHandle"])
        return found


@pytest.fixture
def product(moto_aws: str) -> Iterator[Product]:
    saved_environment = dict(os.environ)
    with KalturaSimulator(seed=3, start_time=int(time.time()), tls=False) as sim:
        for partner_id in (GOOD, BROKEN):
            sim.add_partner(partner_id, ADMIN_SECRET)
        secrets = {
            "partners": {
                str(GOOD): secret_entry(sim.url),
                str(BROKEN): secret_entry(sim.url, webhook_hash_algorithms=["sha265"]),  # the typo
            }
        }
        config = {"partners": {str(GOOD): {"session_reports": {"enabled": False}}, str(BROKEN): {}}}
        try:
            with LocalAwsStack(partner_secrets=secrets, parameters={"AutomationConfig": json.dumps(config)}) as aws:
                runtime = LocalLambdaRuntime(aws.functions)
                http_api = LocalHttpApi(runtime).start()
                try:
                    yield Product(sim, aws, runtime, http_api, aws.observe_alerts("config-alerts-observer"))
                finally:
                    http_api.stop()
        finally:
            os.environ.clear()
            os.environ.update(saved_environment)


def test_a_broken_partner_is_held_back_alone_and_goes_through_once_fixed(product: Product) -> None:
    _, good = product.notify_entry_ready(GOOD)
    broken_entry_id, broken = product.notify_entry_ready(BROKEN)

    assert [attempt.status for attempt in good.attempts] == [200]
    assert [attempt.status for attempt in broken.attempts] == [503]
    assert [event["partner_id"] for event in product.events_queued()] == [GOOD]

    # The sweep (every 15 minutes) skips the broken partner and alerts once per day, naming the setting.
    for _ in range(2):
        product.runtime.invoke("SweepFunction", {})
    alerts = [alert for alert in product.alerts() if alert["alert"] == "partner_config_invalid"]
    assert [(alert["partner_id"], alert["details"]) for alert in alerts] == [
        (BROKEN, {"document": "partner secret", "settings": [f"partners.{BROKEN}.webhook_hash_algorithms[0]"]})
    ]
    assert ADMIN_SECRET not in json.dumps(alerts)

    fixed = {"partners": {str(GOOD): secret_entry(product.sim.url), str(BROKEN): secret_entry(product.sim.url)}}
    product.aws.client("secretsmanager").put_secret_value(
        SecretId=product.aws.partner_secrets_arn, SecretString=json.dumps(fixed)
    )
    clear_all_kauto_caches()  # the five-minute cache lifetime passes (or a new instance starts)
    product.sim.clock.advance(product.sim.dispatcher.retry_interval)  # Kaltura retries the held-back notification

    assert [attempt.status for attempt in broken.attempts] == [503, 200]
    queued = [event["entry_id"] for event in product.events_queued() if event["partner_id"] == BROKEN]
    assert queued == [broken_entry_id]

"""The local product for the worker, caption and task integration tests.

template.yaml created in moto server mode (``LocalAwsStack``), the real handlers invoked in-process with the
environment moto resolved for them (``LocalLambdaRuntime``), the webhook behind the local HTTP API, EventsQueue
delivered to the worker by the local SQS poller (``kauto_local.poller``), and the Kaltura simulator over loopback
HTTP as the partner's Kaltura. Notifications go through the real webhook, signed by the simulator's dispatcher.
Alerts are observed through an SQS queue subscribed to the alerts topic. The simulator's clock starts at the wall
clock, so the automations' ``time.time()`` and Kaltura's times agree.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from kauto.aws.ledger import item_from_dynamo
from kauto_local.http_api import LocalHttpApi
from kauto_local.poller import SqsPoller, queue_depth
from kauto_local.runtime import LocalLambdaRuntime
from kauto_local.simulator import KalturaSimulator
from kauto_local.stack import LocalAwsStack

PARTNER_ID = 1234567
ADMIN_SECRET = "0123456789abcdef0123456789abcdef"
HASH_ALGORITHM = "sha256"


def captions_config(**captions: Any) -> dict[str, Any]:
    """An automation config override with captions enabled for PARTNER_ID (plus ``captions`` settings)."""
    return {"partners": {str(PARTNER_ID): {"captions": {"enabled": True, **captions}}}}


@dataclass
class WorkerStack:
    sim: KalturaSimulator
    aws: LocalAwsStack
    runtime: LocalLambdaRuntime
    http_api: LocalHttpApi
    poller: SqsPoller
    alerts_queue_url: str
    catalog_item_id: int

    @property
    def outputs(self) -> Mapping[str, str]:
        return self.aws.outputs

    @property
    def webhook_url(self) -> str:
        return f"{self.http_api.url}/kaltura/notifications/{PARTNER_ID}"

    @property
    def queue_url(self) -> str:
        return self.poller.source.queue_url

    # -- Kaltura -> webhook -> EventsQueue ----------------------------------------------------------------------

    def deliver(self, envelope: Mapping[str, Any]) -> int:
        """POST a notification the way Kaltura does (signed); returns the status the webhook answered."""
        delivery = self.sim.dispatcher.send(
            self.webhook_url, envelope, partner_id=PARTNER_ID, hash_algorithm=HASH_ALGORITHM
        )
        return delivery.attempts[-1].status

    def entry_ready(self, entry_id: str, times: int = 1) -> None:
        """Kaltura notifies "entry ready" ``times`` times (separate jobs, as a re-conversion or a retry would)."""
        for _ in range(times):
            assert self.deliver(self.sim.dispatcher.entry_ready_envelope(entry_id)) == 200

    def task_status(self, task_id: int, times: int = 1) -> None:
        """Kaltura notifies the vendor task's current status ``times`` times."""
        for _ in range(times):
            assert self.deliver(self.sim.dispatcher.vendor_task_envelope(task_id)) == 200

    def send_raw(self, body: str) -> None:
        """Put a message on EventsQueue directly (what a broken producer might do)."""
        self.aws.client("sqs").send_message(QueueUrl=self.queue_url, MessageBody=body)

    # -- observing -----------------------------------------------------------------------------------------------

    def ledger_items(self, pk_prefix: str = "") -> dict[tuple[str, str], dict[str, Any]]:
        dynamodb = self.aws.client("dynamodb")
        items: dict[tuple[str, str], dict[str, Any]] = {}
        for page in dynamodb.get_paginator("scan").paginate(
            TableName=self.outputs["LedgerTableName"], ConsistentRead=True
        ):
            for raw in page["Items"]:
                item = item_from_dynamo(raw)
                if item["pk"].startswith(pk_prefix):
                    items[(item["pk"], item["sk"])] = item
        return items

    def ledger(self, pk: str, sk: str) -> dict[str, Any] | None:
        return self.ledger_items(pk).get((pk, sk))

    def alerts(self) -> list[dict[str, Any]]:
        """Every alert published since the last call (drains the observer queue)."""
        sqs = self.aws.client("sqs")
        found: list[dict[str, Any]] = []
        while True:
            messages = sqs.receive_message(
                QueueUrl=self.alerts_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            if not messages:
                return found
            for message in messages:
                found.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.alerts_queue_url, ReceiptHandle=message["ReceiptHandle"])

    def dead_letters(self) -> list[str]:
        """Bodies in the events dead-letter queue (left there: received with visibility 0)."""
        sqs = self.aws.client("sqs")
        url = self.poller.source.dead_letter_queue_url
        assert url is not None
        depth = queue_depth(sqs, url)
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
        assert len(messages) == depth
        return [str(message["Body"]) for message in messages]

    def events_left(self) -> int:
        return queue_depth(self.aws.client("sqs"), self.queue_url)

    def tasks(self) -> list[Any]:
        return self.sim.tasks(PARTNER_ID)

    def adds(self) -> int:
        """``entryVendorTask.add`` calls that created a task or failed in Kaltura (not lost responses)."""
        return len(self.sim.calls_to("reach_entryvendortask", "add"))


@contextlib.contextmanager
def worker_stack(config: Mapping[str, Any], *, seed: int = 5, credit: float | None = 1000.0) -> Iterator[WorkerStack]:
    """Simulator (one partner, one machine-caption catalog item, a REACH profile) + the local stack."""
    saved_environment = dict(os.environ)
    sim = KalturaSimulator(seed=seed, start_time=int(time.time()), tls=False)
    with sim:
        sim.add_partner(PARTNER_ID, ADMIN_SECRET)
        item = sim.add_catalog_item(PARTNER_ID, name="English machine captions", price_per_unit=1.0)
        sim.add_reach_profile(PARTNER_ID, credit=credit, default_for=[item.id])
        secrets = {
            "partners": {
                str(PARTNER_ID): {
                    "admin_secret": ADMIN_SECRET,
                    "webhook_hash_algorithms": [HASH_ALGORITHM],
                    "service_url": sim.url,
                }
            }
        }
        try:
            with LocalAwsStack(partner_secrets=secrets, parameters={"AutomationConfig": json.dumps(config)}) as aws:
                runtime = LocalLambdaRuntime(aws.functions)
                http_api = LocalHttpApi(runtime).start()
                try:
                    poller = SqsPoller.for_function(aws, runtime, "WorkerFunction", failed_visibility_seconds=0)
                    alerts = aws.observe_alerts("worker-alerts-observer")
                    yield WorkerStack(sim, aws, runtime, http_api, poller, alerts, item.id)
                finally:
                    http_api.stop()
        finally:
            os.environ.clear()
            os.environ.update(saved_environment)

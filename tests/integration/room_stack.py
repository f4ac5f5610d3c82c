"""The whole product running locally for the session-report and sweep integration tests.

template.yaml created in moto server mode (``LocalAwsStack``), the real handlers invoked in-process with the
environment moto resolved for them (``LocalLambdaRuntime``), the webhook behind the local HTTP API, EventsQueue
delivered to the worker by the local SQS poller (``kauto_local.poller``), and the Kaltura simulator over loopback HTTP
as the partner's Kaltura. The simulator's clock starts at the wall clock (or a set amount behind it), so the times the
automations read (``time.time()``) and Kaltura's agree. Alerts are observed through an SQS queue subscribed to the
alerts topic.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kauto.aws.ledger import item_from_dynamo
from kauto_local.http_api import LocalHttpApi
from kauto_local.poller import SqsPoller
from kauto_local.runtime import LocalLambdaRuntime
from kauto_local.simulator import KalturaSimulator
from kauto_local.stack import LocalAwsStack

PARTNER_ID = 1234567
ADMIN_SECRET = "0123456789abcdef0123456789abcdef"
HASH_ALGORITHM = "sha256"
SWEEP_EVENT = Path(__file__).resolve().parents[2] / "events" / "sweep" / "schedule.event.json"


@dataclass
class WorkerRun:
    """What one pass of the local SQS delivery did: bodies handled and bodies the worker reported failed."""

    handled: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class AutomationStack:
    sim: KalturaSimulator
    aws: LocalAwsStack
    runtime: LocalLambdaRuntime
    http_api: LocalHttpApi
    poller: SqsPoller
    alerts_queue_url: str
    _failed_handles: list[str] = field(default_factory=list)

    @property
    def outputs(self) -> Mapping[str, str]:
        return self.aws.outputs

    @property
    def webhook_url(self) -> str:
        return f"{self.http_api.url}/kaltura/notifications/{PARTNER_ID}"

    # -- Kaltura -> webhook ------------------------------------------------------------------------------------

    def deliver(self, envelope: Mapping[str, Any]) -> int:
        """POST a notification the way Kaltura does (signed); returns the HTTP status the webhook answered."""
        delivery = self.sim.dispatcher.send(
            self.webhook_url, envelope, partner_id=PARTNER_ID, hash_algorithm=HASH_ALGORITHM
        )
        return delivery.attempts[-1].status

    # -- the worker (what Lambda's SQS poller does) -------------------------------------------------------------

    def run_worker(self, *, max_batches: int = 50) -> WorkerRun:
        """Deliver visible messages of EventsQueue to WorkerFunction (the local SQS poller) until none is left;
        messages the worker fails stay invisible for the visibility timeout, as in Lambda."""
        run = WorkerRun()
        for _ in range(max_batches):
            messages = self.poller.receive()
            if not messages:
                return run
            result = self.poller.invoke(messages)
            for message in messages:
                body = json.loads(message["Body"])
                if message["MessageId"] in result.failed:
                    run.failed.append(body)
                    self._failed_handles.append(message["ReceiptHandle"])
                else:
                    run.handled.append(body)
        raise AssertionError("the worker did not drain the queue")

    def make_failed_visible(self) -> None:
        """End the visibility timeout of the messages the worker failed (they come back at once)."""
        sqs = self.aws.client("sqs")
        url = self.outputs["EventsQueueUrl"]
        for handle in self._failed_handles:
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
        self._failed_handles.clear()

    def release_delayed(self, seconds: float = 900) -> int:
        """Let the SQS delays pass (at most 15 minutes, SQS's longest); how many messages became visible."""
        return self.aws.pass_queue_time(seconds)

    def enqueue(self, body: Mapping[str, Any]) -> None:
        """Put a message body on EventsQueue again (an SQS redelivery of the same event)."""
        self.aws.client("sqs").send_message(QueueUrl=self.outputs["EventsQueueUrl"], MessageBody=json.dumps(body))

    # -- the sweep (what EventBridge Scheduler does) ------------------------------------------------------------

    def run_sweep(self) -> dict[str, int]:
        """Invoke SweepFunction as its schedule does (with the sample event in events/sweep)."""
        result: dict[str, int] = self.runtime.invoke("SweepFunction", json.loads(SWEEP_EVENT.read_text()))
        return result

    # -- observing AWS ------------------------------------------------------------------------------------------

    def objects(self, prefix: str = "") -> dict[str, bytes]:
        s3 = self.aws.client("s3")
        bucket = self.outputs["ReportsBucketName"]
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
        return {item["Key"]: s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read() for item in listed}

    def ledger(self, pk: str, sk: str) -> dict[str, Any] | None:
        raw = self.aws.client("dynamodb").get_item(
            TableName=self.outputs["LedgerTableName"], Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True
        )
        return item_from_dynamo(raw["Item"]) if "Item" in raw else None

    def alerts(self) -> list[dict[str, Any]]:
        """Every alert published so far (drains the observer queue)."""
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

    def queued(self) -> list[dict[str, Any]]:
        """Bodies waiting in EventsQueue (received and made visible again at once)."""
        sqs = self.aws.client("sqs")
        url = self.outputs["EventsQueueUrl"]
        bodies = []
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
        return bodies


@contextlib.contextmanager
def automation_stack(
    config: Mapping[str, Any], *, seed: int = 11, simulator_lag_seconds: int = 0
) -> Iterator[AutomationStack]:
    """Simulator + stack + runtime + local HTTP API; the process environment is restored afterwards.

    ``simulator_lag_seconds`` starts Kaltura's clock that far behind the wall clock, so that a test can advance it
    (REACH tasks progress on it) without Kaltura's timestamps getting ahead of the automations' clock.
    """
    saved_environment = dict(os.environ)
    sim = KalturaSimulator(seed=seed, start_time=int(time.time()) - simulator_lag_seconds, tls=False)
    with sim:
        sim.add_partner(PARTNER_ID, ADMIN_SECRET)
        secrets = {
            "partners": {
                str(PARTNER_ID): {
                    "admin_secret": ADMIN_SECRET,
                    "webhook_hash_algorithms": [HASH_ALGORITHM],
                    "service_url": sim.url,
                    "reports_service_url": sim.reports_url,
                }
            }
        }
        try:
            with LocalAwsStack(partner_secrets=secrets, parameters={"AutomationConfig": json.dumps(config)}) as aws:
                runtime = LocalLambdaRuntime(aws.functions)
                http_api = LocalHttpApi(runtime).start()
                try:
                    poller = SqsPoller.for_function(aws, runtime, "WorkerFunction")
                    yield AutomationStack(sim, aws, runtime, http_api, poller, aws.observe_alerts("alerts-observer"))
                finally:
                    http_api.stop()
        finally:
            os.environ.clear()
            os.environ.update(saved_environment)

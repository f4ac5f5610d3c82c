"""The whole product running locally, for the integration tests of the worker, captions, tasks, sessions and sweep.

template.yaml created in moto server mode (``LocalAwsStack``), the real handlers invoked in-process with the
environment moto resolved for them (``LocalLambdaRuntime``), the webhook behind the local HTTP API, EventsQueue
delivered to the worker by the local SQS poller (``kauto_local.poller``), and the Kaltura simulator over loopback HTTP
as the partner's Kaltura. Notifications go through the real webhook, signed by the simulator's dispatcher. Alerts are
observed through an SQS queue subscribed to the alerts topic. The simulator's clock starts at the wall clock (or a
set amount behind it), so the times the automations read (``time.time()``) and Kaltura's agree.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kauto.automations import deps as deps_module
from kauto.aws.ledger import item_from_dynamo
from kauto.kaltura import ClientSettings
from kauto_local.http_api import LocalHttpApi
from kauto_local.poller import SqsPoller, queue_depth
from kauto_local.runtime import LocalLambdaRuntime
from kauto_local.simulator import KalturaSimulator
from kauto_local.stack import LocalAwsStack

PARTNER_ID = 1234567
ADMIN_SECRET = "0123456789abcdef0123456789abcdef"
HASH_ALGORITHM = "sha256"
SWEEP_EVENT = Path(__file__).resolve().parents[2] / "events" / "sweep" / "schedule.event.json"


def captions_config(**captions: Any) -> dict[str, Any]:
    """An automation config override with captions enabled for PARTNER_ID (plus ``captions`` settings)."""
    return {"partners": {str(PARTNER_ID): {"captions": {"enabled": True, **captions}}}}


def session_prefix_of(session: Any) -> str:
    """The S3 folder of a simulated room session's files (the layout users query), spelled out independently of
    the product's key functions."""
    day = datetime.fromtimestamp(session.start, tz=UTC).date().isoformat()
    return (
        f"sessions/partner_id={PARTNER_ID}/date={day}/entry_id={session.room_entry_id}"
        f"/session_id={session.cue_point_id}/"
    )


def csv_rows(body: bytes) -> list[dict[str, str]]:
    """The rows of a CSV object the product wrote, as dicts keyed by its header."""
    return list(csv.DictReader(io.StringIO(body.decode("utf-8"), newline="")))


def without_kaltura_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Kaltura client's retries keep their count and budget; only the waits between them go."""
    monkeypatch.setattr(deps_module, "KALTURA_CLIENT_SETTINGS", ClientSettings(backoff_base=0.0, backoff_max=0.0))


@dataclass
class WorkerRun:
    """What one pass of the local SQS delivery did: bodies handled and bodies the worker reported failed."""

    handled: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ProductStack:
    sim: KalturaSimulator
    aws: LocalAwsStack
    runtime: LocalLambdaRuntime
    http_api: LocalHttpApi
    poller: SqsPoller
    alerts_queue_url: str
    catalog_item_id: int | None = None
    """The machine-caption catalog item, when the stack was built with ``reach_credit``."""
    _failed_handles: list[str] = field(default_factory=list)

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
        """POST a notification the way Kaltura does (signed); returns the HTTP status the webhook answered."""
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

    def enqueue(self, body: Mapping[str, Any]) -> None:
        """Put a message body on EventsQueue again (an SQS redelivery of the same event)."""
        self.send_raw(json.dumps(body))

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
        for handle in self._failed_handles:
            sqs.change_message_visibility(QueueUrl=self.queue_url, ReceiptHandle=handle, VisibilityTimeout=0)
        self._failed_handles.clear()

    def release_delayed(self, seconds: float = 900) -> int:
        """Let the SQS delays pass (at most 15 minutes, SQS's longest); how many messages became visible."""
        return self.aws.pass_queue_time(seconds)

    # -- the sweep (what EventBridge Scheduler does) ------------------------------------------------------------

    def run_sweep(self) -> dict[str, int]:
        """Invoke SweepFunction as its schedule does (with the sample event in events/sweep)."""
        result: dict[str, int] = self.runtime.invoke("SweepFunction", json.loads(SWEEP_EVENT.read_text()))
        return result

    # -- observing AWS and Kaltura ------------------------------------------------------------------------------

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

    def queued(self) -> list[dict[str, Any]]:
        """Bodies waiting in EventsQueue (received and made visible again at once)."""
        sqs = self.aws.client("sqs")
        bodies = []
        messages = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages", []
        )
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.change_message_visibility(
                QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
        return bodies

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
def product_stack(
    config: Mapping[str, Any],
    *,
    seed: int = 11,
    simulator_lag_seconds: int = 0,
    reach_credit: float | None = None,
    failed_visibility_seconds: int | None = None,
) -> Iterator[ProductStack]:
    """Simulator (one partner) + stack + runtime + local HTTP API; the process environment is restored afterwards.

    ``simulator_lag_seconds`` starts Kaltura's clock that far behind the wall clock, so that a test can advance it
    (REACH tasks progress on it) without Kaltura's timestamps getting ahead of the automations' clock.
    ``reach_credit`` gives the partner a machine-caption catalog item and a REACH profile with that credit.
    ``failed_visibility_seconds`` is how long a message the worker failed stays invisible (default: the queue's).
    """
    saved_environment = dict(os.environ)
    sim = KalturaSimulator(seed=seed, start_time=int(time.time()) - simulator_lag_seconds, tls=False)
    with sim:
        sim.add_partner(PARTNER_ID, ADMIN_SECRET)
        catalog_item_id = None
        if reach_credit is not None:
            item = sim.add_catalog_item(PARTNER_ID, name="English machine captions", price_per_unit=1.0)
            sim.add_reach_profile(PARTNER_ID, credit=reach_credit, default_for=[item.id])
            catalog_item_id = item.id
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
                    poller = SqsPoller.for_function(
                        aws, runtime, "WorkerFunction", failed_visibility_seconds=failed_visibility_seconds
                    )
                    alerts = aws.observe_alerts("alerts-observer")
                    yield ProductStack(sim, aws, runtime, http_api, poller, alerts, catalog_item_id)
                finally:
                    http_api.stop()
        finally:
            os.environ.clear()
            os.environ.update(saved_environment)


def worker_stack(
    config: Mapping[str, Any], *, credit: float = 1000.0
) -> contextlib.AbstractContextManager[ProductStack]:
    """The stack of the worker, caption and task tests: a caption catalog item and a REACH profile with ``credit``,
    and messages the worker fails visible again at once (the tests drive the retries)."""
    return product_stack(config, seed=5, reach_credit=credit, failed_visibility_seconds=0)

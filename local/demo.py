"""`make demo`: Kaltura notifications through the real intake on the embedded local stack.

The Kaltura simulator acts as Kaltura's dispatcher and POSTs signed notifications (every body format Kaltura sends)
to the local HTTP API, which invokes the real webhook handler against moto server mode built from template.yaml.
The summary shows what Kaltura saw for each delivery and what landed in the events queue.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kauto_local.http_api import LocalHttpApi
from kauto_local.runtime import LocalLambdaRuntime
from kauto_local.simulator import KalturaSimulator
from kauto_local.stack import LocalAwsStack

PARTNER_ID = 1234567
# A fake admin secret: the simulator signs with it and the local secret holds it. Never a real one.
ADMIN_SECRET = "0123456789abcdef0123456789abcdef"  # noqa: S105
HASH_ALGORITHM = "sha256"
OUTPUT_DIR = Path("demo-output")


@dataclass(frozen=True, slots=True)
class DeliveryLine:
    description: str
    job_id: int
    statuses: list[int]


def partner_secrets(service_url: str) -> dict[str, Any]:
    return {
        "partners": {
            str(PARTNER_ID): {
                "admin_secret": ADMIN_SECRET,
                "webhook_hash_algorithms": [HASH_ALGORITHM],
                "service_url": service_url,
            }
        }
    }


@contextmanager
def local_stack() -> Iterator[tuple[KalturaSimulator, LocalAwsStack, LocalHttpApi]]:
    """The simulator, moto with the template's resources, and the HTTP API in front of the real webhook handler."""
    with ExitStack() as stack:
        sim = stack.enter_context(KalturaSimulator(seed=7, tls=False))
        sim.add_partner(PARTNER_ID, admin_secret=ADMIN_SECRET)
        aws = stack.enter_context(LocalAwsStack(partner_secrets=partner_secrets(sim.url)))
        runtime = LocalLambdaRuntime(aws.functions, log_path=OUTPUT_DIR / "lambda.log")
        stack.callback(runtime.close)
        api = LocalHttpApi(runtime).start()
        stack.callback(api.stop)
        yield sim, aws, api


def deliver_notifications(sim: KalturaSimulator, webhook_url: str) -> list[DeliveryLine]:
    """Send the scenario's notifications the way Kaltura's dispatcher would; returns what each delivery got."""
    lecture = sim.add_entry(PARTNER_ID, name="Week 1 lecture", duration=3120)
    seminar = sim.add_entry(PARTNER_ID, name="Research seminar", duration=2700)
    legacy = sim.add_entry(PARTNER_ID, name="Archive upload", duration=600)
    fields = sim.add_entry(PARTNER_ID, name="Orientation", duration=900)
    dispatcher = sim.dispatcher
    lines = []

    def send(description: str, envelope: dict[str, Any], body_format: str = "json", **kwargs: Any) -> None:
        delivery = dispatcher.send(
            webhook_url, envelope, body_format=body_format, hash_algorithm=HASH_ALGORITHM, **kwargs
        )
        lines.append(DeliveryLine(description, delivery.job_id, [attempt.status for attempt in delivery.attempts]))

    ready = dispatcher.entry_ready_envelope(lecture.id)
    send("entry ready, ObjectData JSON", ready)
    send("the same notification delivered again", ready)
    send("entry ready, ObjectData XML", dispatcher.entry_ready_envelope(seminar.id), "xml")
    send("entry ready, legacy data= JSON", dispatcher.entry_ready_envelope(legacy.id), "json_urlencoded")
    send("entry ready, DataFields form", dispatcher.entry_ready_envelope(fields.id), "fields")
    send("unsigned notification", dispatcher.entry_ready_envelope(fields.id), signed=False)
    return lines


def queued_messages(aws: LocalAwsStack, queue_output: str) -> list[dict[str, Any]]:
    sqs = aws.client("sqs")
    messages: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(QueueUrl=aws.outputs[queue_output], MaxNumberOfMessages=10, VisibilityTimeout=30)
        if not batch.get("Messages"):
            return messages
        messages.extend(json.loads(message["Body"]) for message in batch["Messages"])


def print_summary(lines: list[DeliveryLine], queued: list[dict[str, Any]], dead: list[dict[str, Any]]) -> None:
    print("\nWhat Kaltura saw (HTTP status of each attempt; only 200/204 count as delivered):")
    for line in lines:
        print(f"  {line.description:<42} job {line.job_id}  -> {', '.join(map(str, line.statuses))}")
    print(f"\nEvents queue: {len(queued)} message(s)")
    for event in queued:
        where = f"partner {event['partner_id']}  entry {event['entry_id']}"
        print(f"  {event['kind']:<20} {where}  ({event['body_format']})")
    print(f"Dead-letter queue: {len(dead)} message(s)")


def main() -> int:
    started = time.monotonic()
    print("Starting the local stack (moto server mode from template.yaml, Kaltura simulator, HTTP API)...")
    with local_stack() as (sim, aws, api):
        webhook_url = f"{api.url}/kaltura/notifications/{PARTNER_ID}"
        print(f"Webhook listening at {webhook_url}")
        lines = deliver_notifications(sim, webhook_url)
        print_summary(lines, queued_messages(aws, "EventsQueueUrl"), queued_messages(aws, "EventsDeadLetterQueueUrl"))
    print(f"\nFunction logs (what CloudWatch Logs would hold): {OUTPUT_DIR / 'lambda.log'}")
    print(f"Done in {time.monotonic() - started:.1f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

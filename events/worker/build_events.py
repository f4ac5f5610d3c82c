"""Build the worker's sample SQS events from the webhook's expected messages.

Run ``.venv/bin/python events/worker/build_events.py`` after changing this file or the webhook samples. Each
``<name>.event.json`` is the event Lambda's SQS event source hands ``WorkerFunction`` (for ``sam local invoke -e``,
the tests and the demo): one record whose body is exactly the message the webhook enqueued for the webhook sample of
the same name (``events/webhook/<name>.expected.json``), so the two functions' samples cannot drift apart.
``sweep_entry_ready.event.json`` carries an event the sweep built (``body_format`` ``sweep``). A test checks that
the committed files are up to date.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

OUTPUT_DIR = Path(__file__).resolve().parent
WEBHOOK_DIR = OUTPUT_DIR.parent / "webhook"
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:kauto-EventsQueue-EXAMPLE"
SENT_TIMESTAMP = "1767254714123"
SAMPLES = {
    "entry_ready": "entry_ready_object_json",
    "vendor_task_ready": "vendor_task_ready_object_xml",
    "vendor_task_error": "vendor_task_error_base64",
    "session_ended": "session_ended_object_json",
}
SWEEP_ENTRY_READY = {
    "kind": "entry_ready",
    "partner_id": 1234567,
    "dedupe_key": "sweep:1234567:entry:1_x4b9c2kq:1767254712",
    "job_id": None,
    "template_id": None,
    "template_system_name": None,
    "event_type": None,
    "event_object_type": None,
    "object_type": "KalturaMediaEntry",
    "object_id": "1_x4b9c2kq",
    "entry_id": "1_x4b9c2kq",
    "status": "2",
    "fields": {"id": "1_x4b9c2kq", "status": 2, "updatedAt": 1767254712},
    "body_format": "sweep",
    "received_at": 1767255300,
}


def message_body(event: dict[str, Any]) -> str:
    """The SQS message body: ``KalturaEvent.to_json`` (compact, sorted keys)."""
    return json.dumps(event, separators=(",", ":"), sort_keys=True)


def sqs_event(name: str, body: str) -> dict[str, Any]:
    message_id = f"00000000-0000-4000-8000-{hashlib.sha256(name.encode()).hexdigest()[:12]}"
    return {
        "Records": [
            {
                "messageId": message_id,
                "receiptHandle": f"AQEB{hashlib.sha256(body.encode()).hexdigest()}",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": SENT_TIMESTAMP,
                    "SenderId": "AROAEXAMPLE:kauto-WebhookFunction",
                    "ApproximateFirstReceiveTimestamp": SENT_TIMESTAMP,
                },
                "messageAttributes": {},
                "md5OfBody": hashlib.md5(body.encode()).hexdigest(),  # noqa: S324 - SQS's checksum
                "eventSource": "aws:sqs",
                "eventSourceARN": QUEUE_ARN,
                "awsRegion": "us-east-1",
            }
        ]
    }


def build() -> dict[str, dict[str, Any]]:
    """File name -> content of every sample."""
    samples: dict[str, dict[str, Any]] = {}
    for name, webhook_sample in SAMPLES.items():
        expected = json.loads((WEBHOOK_DIR / f"{webhook_sample}.expected.json").read_text(encoding="utf-8"))
        samples[f"{name}.event.json"] = sqs_event(name, message_body(expected["event"]))
    samples["sweep_entry_ready.event.json"] = sqs_event("sweep_entry_ready", message_body(SWEEP_ENTRY_READY))
    return samples


def render(content: dict[str, Any]) -> str:
    return json.dumps(content, indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    for file_name, content in build().items():
        (OUTPUT_DIR / file_name).write_text(render(content), encoding="utf-8")


if __name__ == "__main__":
    main()

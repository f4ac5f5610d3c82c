"""kauto-backfill against the template's stack in moto server mode: resources found by --stack, dead letters moved
back to the events queue once, a weekly dry run that shows existing runs and changes nothing."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from kauto_local.stack import STACK_NAME, LocalAwsStack
from kauto_ops.backfill import main

pytestmark = pytest.mark.integration

PARTNER_ID = 1234567


@pytest.fixture
def aws(moto_aws: str) -> Iterator[LocalAwsStack]:
    saved = dict(os.environ)
    try:
        with LocalAwsStack(partner_secrets={"partners": {}}) as stack:
            yield stack
    finally:
        os.environ.clear()
        os.environ.update(saved)


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return main(list(argv), out=out, err=err), out.getvalue(), err.getvalue()


def messages(aws: LocalAwsStack, url: str) -> list[dict[str, Any]]:
    sqs = aws.client("sqs")
    found: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60).get("Messages"):
        found.extend(batch)
    return found


def test_replay_moves_the_events_dead_letters_back_once(aws: LocalAwsStack) -> None:
    sqs = aws.client("sqs")
    dlq, queue = aws.outputs["EventsDeadLetterQueueUrl"], aws.outputs["EventsQueueUrl"]
    for index in range(12):
        sqs.send_message(
            QueueUrl=dlq, MessageBody=json.dumps({"kind": "entry_ready", "partner_id": PARTNER_ID, "i": index})
        )

    dry = run_cli("replay-dlq", "--queue", "events", "--stack", STACK_NAME, "--dry-run")
    moved = run_cli("replay-dlq", "--queue", "events", "--stack", STACK_NAME)
    again = run_cli("replay-dlq", "--queue", "events", "--stack", STACK_NAME)

    assert dry[0] == 0 and dry[1].splitlines()[-1].startswith("12 message(s) in the dead-letter queue would be moved")
    assert moved[0] == 0 and moved[1].splitlines()[-1] == f"moved 12 message(s) to {queue}"
    assert again[0] == 0 and again[1].splitlines()[-1] == f"moved 0 message(s) to {queue}"
    assert sorted(json.loads(m["Body"])["i"] for m in messages(aws, queue)) == list(range(12))
    assert messages(aws, dlq) == []


def test_weekly_dry_run_shows_the_runs_the_ledger_holds(aws: LocalAwsStack) -> None:
    aws.client("dynamodb").put_item(
        TableName=aws.outputs["LedgerTableName"],
        Item={"pk": {"S": f"weekly#{PARTNER_ID}"}, "sk": {"S": "run#2025-W02"}, "state": {"S": "complete"}},
    )

    status, out, err = run_cli(
        "weekly",
        "--partner",
        str(PARTNER_ID),
        "--from",
        "2025-01-01",
        "--to",
        "2025-01-19",
        "--stack",
        STACK_NAME,
        "--dry-run",
    )

    assert (status, err) == (0, "")
    assert out.splitlines() == [
        "2025-W01: no run; would be started",
        "2025-W02: run complete; would be left as it is",
        "2025-W03: no run; would be started",
        "would request 3 week(s) for partner 1234567",
    ]

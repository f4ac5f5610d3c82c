"""Alerts are never lost: a worker process killed (SIGKILL) between claiming an alert and publishing it, against moto
server, and the redelivery after the claim lease expired publishes the alert, once: at the publisher, and end to end
(a REACH task ERROR taken from the events queue by a worker process that is killed, then redelivered by SQS)."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from typing import Any

import boto3
import pytest
from helpers import REPO_ROOT, create_ledger_table
from kauto.automations import deps as deps_module
from kauto.aws.alerts import CLAIM_LEASE_SECONDS, Alert, AlertInFlightError, Severity, SnsAlertPublisher
from kauto.aws.ledger import DynamoLedger
from kauto_local.simulator import TaskBehaviour
from product_stack import PARTNER_ID as STACK_PARTNER
from product_stack import captions_config, without_kaltura_backoff, worker_stack

PARTNER = 1234567
TABLE = "lease-ledger"

# The worker: claims the alert through the real publisher, then (inside SNS Publish, i.e. after the claim and before
# anything reaches the topic) tells the test it got there and waits to be killed.
_WORKER = textwrap.dedent(
    """
    import sys, time
    from kauto.aws.alerts import Alert, Severity, SnsAlertPublisher
    from kauto.aws.clients import dynamodb_client, sns_client
    from kauto.aws.ledger import DynamoLedger

    class PausesBeforePublish:
        def publish(self, **request):
            print("claimed", flush=True)
            time.sleep(120)
            return sns_client().publish(**request)

    topic_arn, table, partner = sys.argv[1], sys.argv[2], int(sys.argv[3])
    alert = Alert("reach_task_error", Severity.WARNING, partner, "REACH task 7 failed", "task 7 moved to ERROR")
    SnsAlertPublisher(PausesBeforePublish(), topic_arn, DynamoLedger(dynamodb_client(), table)).publish(
        alert, dedupe_key="task:7"
    )
    """
)


def _alert() -> Alert:
    return Alert("reach_task_error", Severity.WARNING, PARTNER, "REACH task 7 failed", "task 7 moved to ERROR")


def _received(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    bodies = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages", []
        )
        if not messages:
            return bodies
        for message in messages:
            bodies.append(json.loads(json.loads(message["Body"])["Message"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def test_alert_of_a_worker_killed_between_claim_and_publish_arrives_once_after_redelivery(moto_aws: str) -> None:
    dynamodb = boto3.client("dynamodb")
    create_ledger_table(dynamodb, TABLE)
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    topic_arn = sns.create_topic(Name="alerts")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="alerts-subscriber")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "false"})

    worker = subprocess.Popen(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", _WORKER, topic_arn, TABLE, str(PARTNER)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
        env=dict(os.environ),
    )
    try:
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == "claimed"
        os.kill(worker.pid, signal.SIGKILL)
    finally:
        worker.kill()
        worker.wait(timeout=30)
    assert worker.returncode == -signal.SIGKILL

    ledger = DynamoLedger(dynamodb, TABLE)
    claim = ledger.get(f"alert#{PARTNER}", "reach_task_error#task:7")
    assert claim is not None and claim["state"] == "publishing"
    assert _received(sqs, queue_url) == []

    # A redelivery while the lease is live (it cannot happen before the visibility timeout, but a second notification
    # can) sends nothing and is retried.
    with pytest.raises(AlertInFlightError):
        SnsAlertPublisher(sns, topic_arn, ledger).publish(_alert(), dedupe_key="task:7")

    # The redelivery of the killed worker's record comes after the queue's visibility timeout (>= 390 s), past the
    # lease: seen through a clock that far ahead.
    later = time.time() + CLAIM_LEASE_SECONDS + 1
    redelivery = SnsAlertPublisher(
        sns, topic_arn, DynamoLedger(dynamodb, TABLE, clock=lambda: later), clock=lambda: later
    )
    outcomes = [redelivery.publish(_alert(), dedupe_key="task:7") for _ in range(3)]

    assert [outcome.published for outcome in outcomes] == [True, False, False]
    [message] = _received(sqs, queue_url)
    assert (message["alert"], message["dedupe_key"], message["partner_id"]) == ("reach_task_error", "task:7", PARTNER)
    final = ledger.get(f"alert#{PARTNER}", "reach_task_error#task:7")
    assert final is not None and final["state"] == "published"


# A worker process: takes the next message from the events queue and runs the real worker handler on it, with an SNS
# client that tells the test when the alert is claimed (inside Publish) and then hangs until it is killed.
_QUEUE_WORKER = textwrap.dedent(
    """
    import importlib.util, sys, time
    from kauto.automations import deps as deps_module
    from kauto.aws.clients import sqs_client

    class PausesBeforePublish:
        def publish(self, **request):
            print("claimed", flush=True)
            time.sleep(120)

    class Context:
        function_name = "worker"
        function_version = "$LATEST"
        memory_limit_in_mb = 256
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:worker"
        aws_request_id = "killed-worker"

        def get_remaining_time_in_millis(self):
            return 60_000

    deps_module.sns_client = PausesBeforePublish
    queue_url, queue_arn, handler_path = sys.argv[1], sys.argv[2], sys.argv[3]
    spec = importlib.util.spec_from_file_location("worker_app", handler_path)
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    [message] = sqs_client().receive_message(
        QueueUrl=queue_url, AttributeNames=["All"], VisibilityTimeout=2, WaitTimeSeconds=5
    )["Messages"]
    record = {
        "messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"], "body": message["Body"],
        "attributes": message["Attributes"], "messageAttributes": {}, "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": "us-east-1",
    }
    app.lambda_handler({"Records": [record]}, Context())
    """
)


def test_a_worker_killed_between_claim_and_publish_alerts_once_when_sqs_redelivers_the_event(
    moto_aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    without_kaltura_backoff(monkeypatch)
    with worker_stack(captions_config()) as stack:
        entry = stack.sim.add_entry(STACK_PARTNER, name="Lecture", duration=300)
        stack.sim.set_task_behaviour(entry.id, TaskBehaviour(result="error", err_description="Audio track missing"))
        stack.entry_ready(entry.id)
        stack.poller.drain()
        (task,) = stack.tasks()
        stack.sim.clock.advance(3600)  # the task ends in ERROR
        stack.task_status(task.id)

        worker_env = {**os.environ, **stack.aws.functions["WorkerFunction"].environment}
        worker = subprocess.Popen(  # noqa: S603 - this interpreter, a fixed script
            [
                sys.executable,
                "-c",
                _QUEUE_WORKER,
                stack.queue_url,
                stack.poller.source.queue_arn,
                str(REPO_ROOT / "functions" / "worker" / "app.py"),
            ],
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO_ROOT,
            env=worker_env,
        )
        try:
            assert worker.stdout is not None
            # The function's own output (JSON log lines, metrics) comes first; the line ends at EOF if it never gets
            # to the publish.
            assert any(line.strip() == "claimed" for line in worker.stdout)
            os.kill(worker.pid, signal.SIGKILL)
        finally:
            worker.kill()
            worker.wait(timeout=30)
        assert worker.returncode == -signal.SIGKILL
        claim = stack.ledger(f"alert#{STACK_PARTNER}", f"reach_task_error#task:{task.id}")
        assert claim is not None and claim["state"] == "publishing"
        assert stack.alerts() == []

        # SQS redelivers the killed worker's message after its visibility timeout; by then (>= 390 s deployed) the
        # claim's lease has expired: the redelivery's worker sees a clock that far ahead.
        time.sleep(2.5)
        ahead = functools.partial(SnsAlertPublisher, clock=lambda: time.time() + CLAIM_LEASE_SECONDS)
        monkeypatch.setattr(deps_module, "SnsAlertPublisher", ahead)
        report = stack.poller.drain()
        stack.task_status(task.id)  # and Kaltura notifies the same status once more
        again = stack.poller.drain()

        assert (report.succeeded, report.failed, again.failed) == (1, 0, 0)
        [alert] = stack.alerts()
        assert (alert["alert"], alert["details"]["task_id"]) == ("reach_task_error", task.id)

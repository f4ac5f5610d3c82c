"""Lambda's asynchronous invoke on the local stack: a scheduled weekly run whose scheduler fails every attempt is not
lost. It lands in the function's on-failure queue as Lambda's invocation record, the queue's alarm notifies the
alerts topic, and the replay command re-runs it from the record once the cause is fixed.

The retries, maximum event age and destination come from the template's EventInvokeConfig as moto holds it.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import clear_all_kauto_caches
from kauto_local.alarms import evaluate_alarms
from kauto_local.async_invoke import LocalAsyncInvoker, LocalLambdaClient
from kauto_local.poller import queue_depth
from kauto_local.runtime import LocalLambdaRuntime
from kauto_local.serve import schedules_from_template
from kauto_local.stack import STACK_NAME, LocalAwsStack, load_template
from kauto_ops.backfill import main
from kauto_ops.failed_invocations import replay_failed_invocations
from kauto_ops.stack import OpsError

pytestmark = pytest.mark.integration

PARTNER_ID = 1234567
REPORTS = [
    {"name": "top_content", "surface": "getTable", "report_type": 1},
    {"name": "platforms", "surface": "getTable", "report_type": 21},
]
GOOD_CONFIG = {"weekly": {"partners": {str(PARTNER_ID): {"reports": REPORTS}}}}
# An operator's typo in the deployment-wide weekly section (a zone that does not exist): the weekly scheduler cannot
# start any run with it. (A mistake inside one partner's section only disables that partner: see test_config_isolation.)
BROKEN_CONFIG = {"weekly": {"time_zone": "Europe/Atlantis", "partners": {str(PARTNER_ID): {"reports": REPORTS}}}}
SCHEDULER_DIR = Path(__file__).resolve().parents[2] / "functions" / "weekly_scheduler"


@pytest.fixture
def aws(moto_aws: str) -> Iterator[LocalAwsStack]:
    saved = dict(os.environ)
    try:
        parameters = {"AutomationConfig": json.dumps(BROKEN_CONFIG)}
        with LocalAwsStack(partner_secrets={"partners": {}}, parameters=parameters) as stack:
            yield stack
    finally:
        os.environ.clear()
        os.environ.update(saved)


def received(aws: LocalAwsStack, url: str) -> list[dict[str, Any]]:
    """Bodies of every message in a queue, taken out of it."""
    sqs = aws.client("sqs")
    bodies = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        for message in batch:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def peek(aws: LocalAwsStack, url: str) -> list[dict[str, Any]]:
    """Bodies of the messages in a queue, left there (visible again at once)."""
    messages = aws.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
    return [json.loads(message["Body"]) for message in messages.get("Messages", [])]


def test_a_failing_weekly_run_lands_in_its_on_failure_queue_alarms_and_is_replayed(aws: LocalAwsStack) -> None:
    runtime = LocalLambdaRuntime(aws.functions)
    invoker = LocalAsyncInvoker(aws, runtime)
    alerts_url = aws.observe_alerts("alerts-observer")
    failed_url = aws.outputs["WeeklySchedulerFailedInvocationsQueueUrl"]
    jobs_url = aws.outputs["ReportJobsQueueUrl"]
    scheduler = aws.functions["WeeklySchedulerFunction"]
    schedule = schedules_from_template(load_template(), {})["weekly-reports"]
    assert schedule.function_id == "WeeklySchedulerFunction"
    # The stack evaluated its new alarms once: all OK (empty queues, no data treated as not breaching).
    states = aws.client("cloudwatch").describe_alarms(AlarmNames=list(aws.alarms.values()))["MetricAlarms"]
    assert {a["AlarmName"]: a["StateValue"] for a in states} == {name: "OK" for name in aws.alarms.values()}

    invocation = invoker.invoke(schedule.function_id, schedule.input)

    # 1 attempt + the template's 2 retries, then the record, exactly as Lambda shapes it.
    assert (invocation.succeeded, invocation.attempts) == (False, 3)
    (record,) = peek(aws, failed_url)
    assert record == invocation.record
    assert set(record) == {
        "version",
        "timestamp",
        "requestContext",
        "requestPayload",
        "responseContext",
        "responsePayload",
    }
    assert record["version"] == "1.0"
    assert record["requestContext"] == {
        "requestId": invocation.request_id,
        "functionArn": f"{scheduler.arn}:$LATEST",
        "condition": "RetriesExhausted",
        "approximateInvokeCount": 3,
    }
    assert record["requestPayload"] == dict(schedule.input)
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
    assert set(record["responsePayload"]) == {"errorMessage", "errorType", "stackTrace"}
    assert record["responsePayload"]["errorType"] == "ConfigErrors"  # every problem of the document at once
    assert record["responsePayload"]["stackTrace"][0].startswith(f'  File "{SCHEDULER_DIR / "app.py"}"')
    assert queue_depth(aws.client("sqs"), jobs_url) == 0  # nothing was started

    # CloudWatch's evaluation of the queue's alarm: ALARM, published to the alerts topic.
    changed = evaluate_alarms(aws)
    (alarm_message,) = received(aws, alerts_url)

    alarm_name = aws.alarms["WeeklySchedulerFailedInvocationsQueueAlarm"]
    assert changed == [alarm_name]
    assert alarm_message["AlarmName"] == alarm_name
    assert (alarm_message["OldStateValue"], alarm_message["NewStateValue"]) == ("OK", "ALARM")
    assert alarm_message["Trigger"]["Dimensions"] == [{"value": failed_url.rsplit("/", 1)[-1], "name": "QueueName"}]
    assert "replay-failed-invocations" in alarm_message["AlarmDescription"]

    # The operator fixes the configuration; a new instance reads it. A dry run lists and keeps the record.
    aws.client("ssm").put_parameter(
        Name=f"/{STACK_NAME}/automation-config", Value=json.dumps(GOOD_CONFIG), Type="String", Overwrite=True
    )
    clear_all_kauto_caches()
    lambda_client = LocalLambdaClient(aws, invoker)
    sqs = aws.client("sqs")
    listing = replay_failed_invocations(
        sqs, lambda_client, queue_url=failed_url, function_name=scheduler.arn, dry_run=True, wait_seconds=0
    )
    assert [r.request_id for r in listing.records] == [invocation.request_id]
    assert lambda_client.invocations == []
    assert len(peek(aws, failed_url)) == 1

    replay = replay_failed_invocations(
        sqs, lambda_client, queue_url=failed_url, function_name=scheduler.arn, wait_seconds=0
    )

    (rerun,) = lambda_client.invocations
    assert [r.request_id for r in replay.records] == [invocation.request_id]
    assert (rerun.succeeded, rerun.attempts) == (True, 1)
    assert (rerun.result["started"], rerun.result["jobs"]) == (1, len(REPORTS))
    assert queue_depth(sqs, failed_url) == 0
    assert queue_depth(sqs, jobs_url) == len(REPORTS)
    assert evaluate_alarms(aws) == [alarm_name]  # back to OK
    (ok_message,) = received(aws, alerts_url)
    assert (ok_message["AlarmName"], ok_message["NewStateValue"]) == (alarm_name, "OK")


def test_an_event_older_than_the_maximum_age_is_not_retried(aws: LocalAwsStack) -> None:
    # Lambda retries after 1 then 2 more minutes: with a 2-minute maximum age the third attempt never happens.
    lambda_client = aws.client("lambda")
    name = aws.functions["WeeklySchedulerFunction"].physical_name
    destination = lambda_client.get_function_event_invoke_config(FunctionName=name)["DestinationConfig"]
    lambda_client.delete_function_event_invoke_config(FunctionName=name)
    lambda_client.put_function_event_invoke_config(
        FunctionName=name, MaximumRetryAttempts=2, MaximumEventAgeInSeconds=120, DestinationConfig=destination
    )
    invoker = LocalAsyncInvoker(aws, LocalLambdaRuntime(aws.functions))

    invocation = invoker.invoke("WeeklySchedulerFunction", {"partner_id": PARTNER_ID})

    (record,) = peek(aws, aws.outputs["WeeklySchedulerFailedInvocationsQueueUrl"])
    assert invocation.attempts == 2
    assert record["requestContext"]["condition"] == "EventAgeExceeded"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["requestPayload"] == {"partner_id": PARTNER_ID}


def test_the_sweep_and_the_weekly_scheduler_read_their_invoke_config_from_the_stack(aws: LocalAwsStack) -> None:
    invoker = LocalAsyncInvoker(aws, LocalLambdaRuntime(aws.functions))
    sqs = aws.client("sqs")

    sweep = invoker.config(aws.functions["SweepFunction"])
    weekly = invoker.config(aws.functions["WeeklySchedulerFunction"])
    webhook = invoker.config(aws.functions["WebhookFunction"])

    assert (sweep.maximum_retry_attempts, sweep.maximum_event_age_seconds) == (2, 900)
    assert (weekly.maximum_retry_attempts, weekly.maximum_event_age_seconds) == (2, 3600)
    assert sweep.on_failure_queue_url is not None and weekly.on_failure_queue_url is not None
    assert (
        sweep.on_failure_queue_url.rsplit("/", 1)[-1] == aws.outputs["SweepFailedInvocationsQueueUrl"].rsplit("/")[-1]
    )
    assert queue_depth(sqs, weekly.on_failure_queue_url) == 0
    # Not invoked asynchronously: Lambda's defaults, no destination.
    assert (webhook.maximum_retry_attempts, webhook.on_failure_queue_url) == (2, None)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("not json", "not a Lambda invocation record"),
        (
            json.dumps(
                {
                    "requestContext": {"functionArn": "arn:aws:lambda:us-east-1:1:function:other:$LATEST"},
                    "requestPayload": {},
                }
            ),
            "not arn:",
        ),
    ],
    ids=["not-a-record", "another-function"],
)
def test_replay_refuses_what_is_not_a_record_of_the_function_and_leaves_it(
    aws: LocalAwsStack, body: str, problem: str
) -> None:
    sqs = aws.client("sqs")
    url = aws.outputs["WeeklySchedulerFailedInvocationsQueueUrl"]
    scheduler = aws.functions["WeeklySchedulerFunction"]
    lambda_client = LocalLambdaClient(aws, LocalAsyncInvoker(aws, LocalLambdaRuntime(aws.functions)))
    sqs.send_message(QueueUrl=url, MessageBody=body)

    with pytest.raises(OpsError, match=problem):
        replay_failed_invocations(sqs, lambda_client, queue_url=url, function_name=scheduler.arn, wait_seconds=0)

    assert lambda_client.invocations == []
    assert queue_depth(sqs, url) == 1  # left in the queue


def test_backfill_cli_offers_the_replay_and_finds_the_queue_in_the_stack(aws: LocalAwsStack) -> None:
    out, err = io.StringIO(), io.StringIO()

    status = main(
        ["replay-failed-invocations", "--function", "weekly-scheduler", "--stack", STACK_NAME, "--dry-run"],
        out=out,
        err=err,
    )

    assert (status, err.getvalue()) == (0, "")
    assert out.getvalue().endswith(
        f"would re-run 0 invocation(s) of {aws.functions['WeeklySchedulerFunction'].physical_name}\n"
    )


def test_a_replay_that_fails_again_leaves_the_new_record_for_later_and_ends(aws: LocalAwsStack) -> None:
    invoker = LocalAsyncInvoker(aws, LocalLambdaRuntime(aws.functions))
    lambda_client = LocalLambdaClient(aws, invoker)
    sqs = aws.client("sqs")
    url = aws.outputs["WeeklySchedulerFailedInvocationsQueueUrl"]
    scheduler = aws.functions["WeeklySchedulerFunction"]
    first = invoker.invoke("WeeklySchedulerFunction", {"partner_id": PARTNER_ID})

    # The configuration is still broken: the re-run fails every attempt and Lambda writes a new record.
    replay = replay_failed_invocations(sqs, lambda_client, queue_url=url, function_name=scheduler.arn, wait_seconds=0)

    (rerun,) = lambda_client.invocations
    (left,) = peek(aws, url)
    assert [r.request_id for r in replay.records] == [first.request_id]
    assert rerun.succeeded is False
    assert left["requestContext"]["requestId"] == rerun.request_id != first.request_id
    assert left["requestPayload"] == {"partner_id": PARTNER_ID}

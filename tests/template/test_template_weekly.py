"""The weekly reports in template.yaml: the schedule, ReportJobsQueue and its consumer, least-privilege roles.

The generic checks elsewhere cover these resources too (every SQS event source meets the visibility and partial-batch
rules, no wildcard grants, every function has its log group); these pin what is specific to the weekly reports.
"""

from __future__ import annotations

import json
import re
import zoneinfo
from typing import Any

from test_template_iam import (
    ALERTS_KEY_PERMISSIONS,
    CHECKPOINTS,
    CONFIG_PARAMETER,
    LEDGER,
    consume_permissions,
    granted_permissions,
    runtime_permissions,
)

Template = dict[str, Any]
WEEKLY = json.dumps({"Fn::Sub": "${ReportsBucket.Arn}/weekly/*"})
JOBS_QUEUE = json.dumps({"Fn::GetAtt": ["ReportJobsQueue", "Arn"]})


def sqs_source(function: dict[str, Any]) -> dict[str, Any]:
    (source,) = [e["Properties"] for e in function["Events"].values() if e["Type"] == "SQS"]
    return source


def test_report_worker_consumes_report_jobs_one_at_a_time_with_bounded_concurrency(
    template: Template, function_properties: dict[str, dict[str, Any]]
) -> None:
    worker = function_properties["ReportWorkerFunction"]
    source = sqs_source(worker)
    concurrency = template["Parameters"]["ReportWorkerMaxConcurrency"]

    assert source["Queue"] == {"Fn::GetAtt": ["ReportJobsQueue", "Arn"]}
    # Each job has the whole invocation to itself: it checkpoints against the time left.
    assert source["BatchSize"] == 1
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert source["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "ReportWorkerMaxConcurrency"}}
    assert (concurrency["MinValue"], concurrency["MaxValue"]) == (2, 1000)
    assert 2 <= concurrency["Default"] <= 10
    assert worker["Timeout"] == 900
    queue = template["Resources"]["ReportJobsQueue"]["Properties"]
    assert queue["VisibilityTimeout"] >= 6 * worker["Timeout"] + source.get("MaximumBatchingWindowInSeconds", 0)


def test_report_jobs_queue_parks_failures_in_an_alarmed_dead_letter_queue(resources: dict[str, Any]) -> None:
    queue = resources["ReportJobsQueue"]["Properties"]
    dead_letters = resources["ReportJobsDeadLetterQueue"]["Properties"]
    (alarm,) = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
        and {"Name": "QueueName", "Value": {"Fn::GetAtt": ["ReportJobsDeadLetterQueue", "QueueName"]}}
        in r["Properties"].get("Dimensions", [])
    ]

    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["ReportJobsDeadLetterQueue", "Arn"]}
    assert 3 <= queue["RedrivePolicy"]["maxReceiveCount"] <= 10
    assert dead_letters["MessageRetentionPeriod"] == 14 * 24 * 3600 > queue["MessageRetentionPeriod"]
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
    assert alarm["AlarmActions"] == [{"Ref": "AlertsTopic"}]


def test_every_queue_is_encrypted_at_rest(resources: dict[str, Any]) -> None:
    queues = {logical_id: r for logical_id, r in resources.items() if r["Type"] == "AWS::SQS::Queue"}

    assert {"ReportJobsQueue", "ReportJobsDeadLetterQueue", "WeeklyScheduleDeadLetterQueue"} <= set(queues)
    assert all(r["Properties"].get("SqsManagedSseEnabled") is True for r in queues.values()), sorted(queues)


def test_weekly_schedule_runs_monday_morning_in_a_configurable_zone_with_retries_and_a_dlq(
    template: Template, function_properties: dict[str, dict[str, Any]]
) -> None:
    (event,) = function_properties["WeeklySchedulerFunction"]["Events"].values()
    schedule = event["Properties"]
    parameters = template["Parameters"]

    assert event["Type"] == "ScheduleV2"
    assert schedule["ScheduleExpression"] == {"Ref": "WeeklySchedule"}
    assert schedule["ScheduleExpressionTimezone"] == {"Ref": "ScheduleTimezone"}
    assert parameters["WeeklySchedule"]["Default"] == "cron(0 6 ? * MON *)"
    assert re.fullmatch(parameters["WeeklySchedule"]["AllowedPattern"], "cron(30 7 ? * MON *)")
    assert not re.fullmatch(parameters["WeeklySchedule"]["AllowedPattern"], "every monday")
    zone = parameters["ScheduleTimezone"]
    zoneinfo.ZoneInfo(zone["Default"])
    for name in ("UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires", "Etc/GMT+5"):
        assert re.fullmatch(zone["AllowedPattern"], name), name
    assert schedule["Input"] == "{}"  # every configured partner, the previous ISO week
    assert 0 < schedule["RetryPolicy"]["MaximumRetryAttempts"] <= 5
    assert schedule["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["WeeklyScheduleDeadLetterQueue", "Arn"]}}
    assert schedule["Name"] == {"Fn::Sub": "${AWS::StackName}-weekly-reports"}
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}


def test_both_weekly_functions_know_the_schedule_zone_and_the_job_queue(
    function_properties: dict[str, dict[str, Any]],
) -> None:
    for function_id in ("WeeklySchedulerFunction", "ReportWorkerFunction"):
        variables = function_properties[function_id]["Environment"]["Variables"]
        assert variables["WEEKLY_TIME_ZONE"] == {"Ref": "ScheduleTimezone"}, function_id
        assert variables["REPORT_JOBS_QUEUE_URL"] == {"Ref": "ReportJobsQueue"}, function_id
        assert variables["LEDGER_TABLE"] == {"Ref": "LedgerTable"}, function_id
        assert variables["AUTOMATION_CONFIG_PARAMETER"] == {"Ref": "AutomationConfigParameter"}, function_id


def test_scheduler_may_only_read_the_config_write_run_rows_and_send_jobs(translated: Template) -> None:
    granted, conditional = granted_permissions(translated, "WeeklySchedulerFunction")

    assert granted == {
        ("ssm:GetParameter", CONFIG_PARAMETER),
        ("dynamodb:GetItem", LEDGER),
        ("dynamodb:PutItem", LEDGER),
        ("dynamodb:UpdateItem", LEDGER),
        ("sqs:SendMessage", JOBS_QUEUE),
        # Lambda's on-failure destination of the scheduled (asynchronous) invocations.
        ("sqs:SendMessage", json.dumps({"Fn::GetAtt": ["WeeklySchedulerFailedInvocationsQueue", "Arn"]})),
    } | runtime_permissions("WeeklySchedulerFunction")
    assert conditional == []


def test_report_worker_writes_only_weekly_reports_and_checkpoints(translated: Template) -> None:
    granted, conditional = granted_permissions(translated, "ReportWorkerFunction")

    assert granted == {
        ("secretsmanager:GetSecretValue", json.dumps({"Ref": "PartnerSecretsArn"})),
        ("ssm:GetParameter", CONFIG_PARAMETER),
        *(
            (f"dynamodb:{action}", LEDGER)
            for action in ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan")
        ),
        ("sns:Publish", json.dumps({"Ref": "AlertsTopic"})),
        ("sqs:SendMessage", JOBS_QUEUE),
        *(
            (action, prefix)
            for action in ("s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts")
            for prefix in (WEEKLY, CHECKPOINTS)
        ),
        ("s3:DeleteObject", CHECKPOINTS),
        ("s3:ListBucket", json.dumps({"Fn::GetAtt": ["ReportsBucket", "Arn"]})),
        ("s3:PutObject", json.dumps({"Fn::Sub": "${ReportsBucket.Arn}/audit/*"})),  # the audit trail
    } | ALERTS_KEY_PERMISSIONS | consume_permissions("ReportJobsQueue") | runtime_permissions("ReportWorkerFunction")
    assert [s["Condition"] for s in conditional] == [{"StringLike": {"s3:prefix": "_checkpoints/*"}}]

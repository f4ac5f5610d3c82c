"""Asynchronous invocations, alarms and the dashboard in template.yaml: nothing fails silently.

- every asynchronously invoked function has bounded retries, a maximum event age and an on-failure queue whose depth
  alarms to the alerts topic;
- each silent failure mode has an alarm on the alerts topic, on a metric the code really emits (with the dimensions
  Powertools gives it) or one AWS publishes;
- the dashboard draws only metrics that exist;
- the queues and the access-log bucket are hardened like the rest.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from template_support import REPO_ROOT, effective_function_properties

Template = dict[str, Any]
ASYNC_EVENT_TYPES = {"Schedule", "ScheduleV2", "S3", "SNS", "EventBridgeRule", "CloudWatchEvent", "IoTRule"}
TOPIC = {"Ref": "AlertsTopic"}
CODE_METRIC_NAMESPACE = "KalturaAutomations"
LAYER = REPO_ROOT / "shared"


def code_metrics() -> dict[str, list[Path]]:
    """Metric names the product code emits through ``count(...)``, with the files that emit them.

    The name is the call's first argument: a literal, a conditional of literals, or a local variable assigned those.
    """
    found: dict[str, list[Path]] = {}
    for path in [*LAYER.rglob("kauto/**/*.py"), *(REPO_ROOT / "functions").rglob("*.py")]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        assigned: dict[str, list[ast.expr]] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        assigned.setdefault(target.id, []).append(node.value)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "count" and node.args:
                for name in _literals(node.args[0], assigned):
                    found.setdefault(name, []).append(path)
    return found


def _literals(node: ast.expr, assigned: dict[str, list[ast.expr]]) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _literals(node.body, assigned) + _literals(node.orelse, assigned)
    if isinstance(node, ast.Name):
        return [name for value in assigned.get(node.id, []) for name in _literals(value, {})]
    return []


def alarms(template: Template) -> dict[str, dict[str, Any]]:
    return {k: r["Properties"] for k, r in template["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm"}


def async_functions(template: Template) -> list[str]:
    return sorted(
        logical_id
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
        and any(e["Type"] in ASYNC_EVENT_TYPES for e in resource["Properties"].get("Events", {}).values())
    )


def queue_depth_alarm(template: Template, queue_id: str) -> dict[str, Any]:
    (alarm,) = [
        a
        for a in alarms(template).values()
        if a.get("Namespace") == "AWS/SQS"
        and a.get("Dimensions") == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}]
    ]
    return alarm


# ------------------------------------------------------------------------------------- asynchronous invocations


def test_the_scheduled_functions_are_the_asynchronously_invoked_ones(template: Template) -> None:
    assert async_functions(template) == ["SweepFunction", "WeeklySchedulerFunction"]


ON_FAILURE_QUEUES = {
    "SweepFunction": "SweepFailedInvocationsQueue",
    "WeeklySchedulerFunction": "WeeklySchedulerFailedInvocationsQueue",
}


@pytest.mark.parametrize("async_function_id", sorted(ON_FAILURE_QUEUES))
def test_async_function_retries_a_bounded_number_of_times_then_parks_the_record_in_an_alarmed_queue(
    template: Template, async_function_id: str
) -> None:
    function_id, queue_id = async_function_id, ON_FAILURE_QUEUES[async_function_id]
    config = effective_function_properties(template, function_id)["EventInvokeConfig"]
    queue = template["Resources"][queue_id]["Properties"]
    alarm = queue_depth_alarm(template, queue_id)

    assert 0 <= config["MaximumRetryAttempts"] <= 2
    # Long enough for Lambda's retries (1 then 2 minutes apart), short of the 6-hour default.
    assert 180 < config["MaximumEventAgeInSeconds"] <= 3600
    assert config["DestinationConfig"]["OnFailure"] == {"Type": "SQS", "Destination": {"Fn::GetAtt": [queue_id, "Arn"]}}
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["MessageRetentionPeriod"] == 1209600
    assert (alarm["MetricName"], alarm["Statistic"], alarm["Threshold"]) == (
        "ApproximateNumberOfMessagesVisible",
        "Maximum",
        0,
    )
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["AlarmActions"] == [TOPIC]


def test_the_translated_template_creates_one_event_invoke_config_per_async_function(translated: Template) -> None:
    configs = {
        r["Properties"]["FunctionName"]["Ref"]: r["Properties"]
        for r in translated["Resources"].values()
        if r["Type"] == "AWS::Lambda::EventInvokeConfig"
    }

    assert sorted(configs) == ["SweepFunction", "WeeklySchedulerFunction"]
    assert {c["Qualifier"] for c in configs.values()} == {"$LATEST"}


# ------------------------------------------------------------------------------------------------------ alarms

# alarm -> (metric, the function whose POWERTOOLS_SERVICE_NAME is the metric's service dimension)
CODE_METRIC_ALARMS = {
    "DedupeReleaseFailedAlarm": ("DedupeReleaseFailed", "WebhookFunction"),
    "SweepOpenTasksCutShortAlarm": ("SweepOpenTasksCutShort", "SweepFunction"),
    "ReportJobPastDeadlineAlarm": ("ReportJobPastDeadline", "ReportWorkerFunction"),
}
LAMBDA_ALARMS = {
    "WorkerErrorsAlarm": ("WorkerFunction", "Errors"),
    "WorkerThrottlesAlarm": ("WorkerFunction", "Throttles"),
    "ReportWorkerErrorsAlarm": ("ReportWorkerFunction", "Errors"),
    "ReportWorkerThrottlesAlarm": ("ReportWorkerFunction", "Throttles"),
}


def test_every_alarm_notifies_the_alerts_topic(template: Template) -> None:
    assert {name: a["AlarmActions"] for name, a in alarms(template).items()} == {
        name: [TOPIC] for name in alarms(template)
    }


@pytest.mark.parametrize("alarm_id", sorted(CODE_METRIC_ALARMS))
def test_code_metric_alarm_watches_a_metric_the_code_emits_with_its_dimensions(
    template: Template, alarm_id: str
) -> None:
    metric, function_id = CODE_METRIC_ALARMS[alarm_id]
    alarm = alarms(template)[alarm_id]
    service = effective_function_properties(template, function_id)["Environment"]["Variables"][
        "POWERTOOLS_SERVICE_NAME"
    ]
    (emitter, *_) = code_metrics()[metric]

    assert (alarm["Namespace"], alarm["MetricName"]) == (CODE_METRIC_NAMESPACE, metric)
    assert alarm["Dimensions"] == [{"Name": "service", "Value": service}]
    assert (alarm["Statistic"], alarm["Threshold"], alarm["ComparisonOperator"]) == ("Sum", 0, "GreaterThanThreshold")
    # What the emitting module really writes (EMF): a CloudWatch alarm matches the exact dimension set only.
    assert emitted_dimensions(emitter, metric, service) == {"service": service}


def emitted_dimensions(emitter: Path, metric: str, service: str) -> dict[str, str]:
    """Run the emitting module's ``count(metric)`` in a fresh interpreter as ``service``; the EMF dimensions."""
    telemetry = re.search(r"from (kauto\.\w+\.telemetry) import", emitter.read_text(encoding="utf-8"))
    assert telemetry, f"{emitter} emits {metric} but imports no telemetry module"
    code = f"from {telemetry.group(1)} import count; count({metric!r})"
    env = {**os.environ, "POWERTOOLS_SERVICE_NAME": service, "POWERTOOLS_METRICS_NAMESPACE": CODE_METRIC_NAMESPACE}
    output = subprocess.run(  # noqa: S603 - this interpreter, code built from the repo's own metric names
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, timeout=60
    ).stdout
    (document,) = [json.loads(line) for line in output.splitlines() if '"_aws"' in line]
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == CODE_METRIC_NAMESPACE
    assert [m["Name"] for m in directive["Metrics"]] == [metric]
    (dimension_names,) = directive["Dimensions"]
    return {name: document[name] for name in dimension_names}


@pytest.mark.parametrize("alarm_id", sorted(LAMBDA_ALARMS))
def test_worker_errors_and_throttles_alarm(template: Template, alarm_id: str) -> None:
    function_id, metric = LAMBDA_ALARMS[alarm_id]
    alarm = alarms(template)[alarm_id]

    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/Lambda", metric)
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function_id}}]
    assert (alarm["Statistic"], alarm["Threshold"], alarm["ComparisonOperator"]) == ("Sum", 0, "GreaterThanThreshold")


def test_every_sqs_worker_has_errors_and_throttles_alarms(template: Template) -> None:
    workers = sorted(
        logical_id
        for logical_id, r in template["Resources"].items()
        if r["Type"] == "AWS::Serverless::Function"
        and any(e["Type"] == "SQS" for e in r["Properties"].get("Events", {}).values())
    )

    assert sorted({f for f, _ in LAMBDA_ALARMS.values()}) == workers


def test_webhook_5xx_rate_alarm_divides_the_http_api_5xx_by_its_requests(template: Template) -> None:
    alarm = alarms(template)["WebhookServerErrorRateAlarm"]
    queries = {m["Id"]: m for m in alarm["Metrics"]}
    api = [{"Name": "ApiId", "Value": {"Ref": "WebhookHttpApi"}}]

    assert queries["serverErrors"]["MetricStat"]["Metric"] == {
        "Namespace": "AWS/ApiGateway",
        "MetricName": "5xx",
        "Dimensions": api,
    }
    assert queries["requests"]["MetricStat"]["Metric"] == {
        "Namespace": "AWS/ApiGateway",
        "MetricName": "Count",
        "Dimensions": api,
    }
    assert [m["Id"] for m in alarm["Metrics"] if m["ReturnData"]] == ["serverErrorRate"]
    assert "100 * FILL(serverErrors, 0) / requests" in queries["serverErrorRate"]["Expression"]
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (5, "GreaterThanThreshold")


@pytest.mark.parametrize(
    "queue_id",
    [
        "EventsDeadLetterQueue",
        "ReportJobsDeadLetterQueue",
        "SweepScheduleDeadLetterQueue",
        "WeeklyScheduleDeadLetterQueue",
        "SweepFailedInvocationsQueue",
        "WeeklySchedulerFailedInvocationsQueue",
    ],
)
def test_every_dead_letter_queue_has_a_depth_alarm(template: Template, queue_id: str) -> None:
    assert queue_depth_alarm(template, queue_id)["AlarmActions"] == [TOPIC]


# --------------------------------------------------------------------------------------------------- dashboard


def dashboard_metrics(template: Template) -> tuple[set[tuple[str, str]], set[str]]:
    """(namespace, metric) pairs the dashboard draws, and the metric names of its SEARCH expressions."""
    body = template["Resources"]["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    # Fill the ${...} substitutions with a plain value: the body must then be valid JSON.
    document = json.loads(re.sub(r"\$\{[^}]+\}", "x", body))
    drawn, searched = set(), set()
    for widget in document["widgets"]:
        for row in widget["properties"]["metrics"]:
            if isinstance(row[0], dict):
                searched.update(re.findall(r'MetricName=\\?"(\w+)\\?"', row[0]["expression"]))
            else:
                drawn.add((row[0], row[1]))
    return drawn, searched


def test_dashboard_draws_only_metrics_the_code_or_aws_emits(template: Template) -> None:
    drawn, searched = dashboard_metrics(template)
    emitted = set(code_metrics())
    aws = {
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("AWS/SQS", "ApproximateAgeOfOldestMessage"),
        ("AWS/SNS", "NumberOfMessagesPublished"),
        ("AWS/SNS", "NumberOfNotificationsFailed"),
    }

    assert searched - emitted == set()
    assert {m for ns, m in drawn if ns == CODE_METRIC_NAMESPACE} - emitted == set()
    assert {(ns, m) for ns, m in drawn if ns != CODE_METRIC_NAMESPACE} <= aws


def test_dashboard_covers_intake_queues_reach_alerts_and_report_jobs(template: Template) -> None:
    drawn, searched = dashboard_metrics(template)
    names = searched | {m for _, m in drawn}

    assert {
        "NotificationAccepted",
        "NotificationDuplicate",
        "NotificationRejected",
        "ApproximateNumberOfMessagesVisible",
        "ApproximateAgeOfOldestMessage",
        "CaptionOrdered",
        "CaptionDecision",
        "NumberOfMessagesPublished",
        "WeeklyReportDone",
        "WeeklyReportFailed",
        "ReportJobPastDeadline",
    } <= names


def test_dashboard_shows_every_dead_letter_queue(template: Template) -> None:
    body = template["Resources"]["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    queues = {k for k, r in template["Resources"].items() if r["Type"] == "AWS::SQS::Queue"}

    assert {q for q in queues if f"${{{q}.QueueName}}" in body} == queues


# ------------------------------------------------------------------------------------------ access-log bucket


def test_reports_bucket_logs_access_to_the_stacks_log_bucket(template: Template) -> None:
    resources = template["Resources"]
    logging = resources["ReportsBucket"]["Properties"]["LoggingConfiguration"]
    logs = resources["AccessLogsBucket"]["Properties"]
    (delivery,) = [
        s
        for s in resources["AccessLogsBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Allow"
    ]

    assert logging == {"DestinationBucketName": {"Ref": "AccessLogsBucket"}, "LogFilePrefix": "reports/"}
    assert all(logs["PublicAccessBlockConfiguration"].values())
    # Server access logging can only deliver to SSE-S3 buckets.
    assert logs["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "AES256"
    }
    assert logs["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert any("ExpirationInDays" in rule for rule in logs["LifecycleConfiguration"]["Rules"])
    assert delivery["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert delivery["Action"] == "s3:PutObject"
    assert delivery["Resource"] == {"Fn::Sub": "${AccessLogsBucket.Arn}/reports/*"}
    assert delivery["Condition"]["ArnLike"] == {"aws:SourceArn": {"Fn::GetAtt": ["ReportsBucket", "Arn"]}}
    assert delivery["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}

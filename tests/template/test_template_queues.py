"""Queues, their consumers and the dead-letter alarm.

The rule every SQS consumer must meet (AWS Lambda developer guide, "Using Lambda with Amazon SQS"): the queue's
visibility timeout is at least six times the function's timeout plus its batching window, otherwise a message still
being processed becomes visible again and runs twice; and the event source reports partial batch failures, otherwise
one bad record makes the whole batch retry. The checker below covers every SQS event source in the template, resolves
timeouts after Globals and through parameters and mappings, for every value a parameter may take.
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Iterator
from typing import Any

import pytest
from samtranslator.plugins.globals.globals import Globals

LAMBDA_DEFAULT_TIMEOUT = 3
VISIBILITY_FACTOR = 6
DLQ_RETENTION_SECONDS = 14 * 24 * 3600

Template = dict[str, Any]


class Unresolvable(Exception):
    """A value the checker cannot pin to numbers, so it cannot prove the rule."""


def sqs_consumer_problems(template: Template) -> list[str]:
    """Every way the template's SQS consumers break the visibility or partial-batch rules; empty when none do."""
    problems: list[str] = []
    resources = template["Resources"]
    globals_ = Globals(template)
    for logical_id, resource in resources.items():
        if resource["Type"] == "AWS::Lambda::EventSourceMapping":
            # Raw mappings would bypass the checks below, which read the function's own SQS events.
            problems.append(f"{logical_id}: declare SQS consumers as SQS events on an AWS::Serverless::Function")
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        properties = globals_.merge(
            "AWS::Serverless::Function",
            copy.deepcopy(resource.get("Properties", {})),
            logical_id,
            resource.get("IgnoreGlobals"),
        )
        for event_id, event in properties.get("Events", {}).items():
            if event.get("Type") == "SQS":
                where = f"{logical_id}.Events.{event_id}"
                problems.extend(_event_problems(template, where, properties, event.get("Properties", {})))
    return problems


def _event_problems(template: Template, where: str, function: dict[str, Any], event: dict[str, Any]) -> list[str]:
    problems = []
    if "ReportBatchItemFailures" not in event.get("FunctionResponseTypes", []):
        problems.append(f"{where}: FunctionResponseTypes must include ReportBatchItemFailures")
    queue_ref = event.get("Queue")
    if not (isinstance(queue_ref, dict) and list(queue_ref) == ["Fn::GetAtt"] and queue_ref["Fn::GetAtt"][1] == "Arn"):
        return [*problems, f"{where}: Queue must be !GetAtt <queue in this template>.Arn, got {queue_ref!r}"]
    queue = template["Resources"].get(queue_ref["Fn::GetAtt"][0], {})
    if queue.get("Type") != "AWS::SQS::Queue":
        return [*problems, f"{where}: {queue_ref['Fn::GetAtt'][0]} is not an AWS::SQS::Queue in this template"]

    timeout = function.get("Timeout", LAMBDA_DEFAULT_TIMEOUT)
    visibility = queue.get("Properties", {}).get("VisibilityTimeout", 30)  # the SQS default
    window = event.get("MaximumBatchingWindowInSeconds", 0)
    try:
        for parameters in _parameter_scenarios(template, [timeout, visibility, window]):
            needed = VISIBILITY_FACTOR * _resolve(template, timeout, parameters)
            needed += _resolve(template, window, parameters)
            actual = _resolve(template, visibility, parameters)
            if actual < needed:
                problems.append(
                    f"{where}: queue VisibilityTimeout {actual} < {VISIBILITY_FACTOR} x timeout + batching window "
                    f"= {needed} (parameters {parameters})"
                )
    except Unresolvable as error:
        problems.append(f"{where}: cannot verify the visibility rule: {error}")
    return problems


def _parameter_scenarios(template: Template, values: list[Any]) -> Iterator[dict[str, str]]:
    """Every combination of the allowed values of the parameters these values reference."""
    names = sorted({name for value in values for name in _referenced_parameters(template, value)})
    choices = []
    for name in names:
        allowed = template["Parameters"][name].get("AllowedValues")
        if not allowed:
            raise Unresolvable(f"parameter {name} has no AllowedValues, so any value could break the rule")
        choices.append([str(choice) for choice in allowed])
    for combination in itertools.product(*choices):
        yield dict(zip(names, combination, strict=True))


def _referenced_parameters(template: Template, value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        if list(value) == ["Ref"] and value["Ref"] in template.get("Parameters", {}):
            yield value["Ref"]
        for item in value.values():
            yield from _referenced_parameters(template, item)
    elif isinstance(value, list):
        for item in value:
            yield from _referenced_parameters(template, item)


def _resolve(template: Template, value: Any, parameters: dict[str, str]) -> int:
    """A number from a literal, a parameter Ref or a Fn::FindInMap over those."""
    if isinstance(value, bool):
        raise Unresolvable(f"{value!r} is not a number")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if isinstance(value, dict) and list(value) == ["Ref"] and value["Ref"] in parameters:
        return int(parameters[value["Ref"]])
    if isinstance(value, dict) and list(value) == ["Fn::FindInMap"]:
        map_name, top_key, second_key = value["Fn::FindInMap"]
        keys = [str(_resolve_key(key, parameters)) for key in (top_key, second_key)]
        try:
            return _resolve(template, template["Mappings"][map_name][keys[0]][keys[1]], parameters)
        except KeyError as error:
            raise Unresolvable(f"mapping {map_name} has no entry {keys}") from error
    raise Unresolvable(f"{value!r} is not a literal, a parameter or a mapping lookup")


def _resolve_key(key: Any, parameters: dict[str, str]) -> Any:
    if isinstance(key, dict) and list(key) == ["Ref"] and key["Ref"] in parameters:
        return parameters[key["Ref"]]
    if isinstance(key, str | int):
        return key
    raise Unresolvable(f"mapping key {key!r} is not a literal or a parameter")


def add_consumer(template: Template, logical_id: str = "ProbeWorkerFunction", **overrides: Any) -> dict[str, Any]:
    """Add an SQS consumer of EventsQueue to an in-memory template copy; the overrides replace its properties."""
    properties: dict[str, Any] = {
        "CodeUri": "functions/probe/",
        "Handler": "app.lambda_handler",
        "Timeout": {"Ref": "WorkerTimeoutSeconds"},
        "Events": {
            "FromEventsQueue": {
                "Type": "SQS",
                "Properties": {
                    "Queue": {"Fn::GetAtt": ["EventsQueue", "Arn"]},
                    "BatchSize": 10,
                    "FunctionResponseTypes": ["ReportBatchItemFailures"],
                },
            }
        },
    }
    properties.update(overrides)
    template["Resources"][logical_id] = {"Type": "AWS::Serverless::Function", "Properties": properties}
    return properties


# ---------------------------------------------------------------- the rule on the real template


def test_template_sqs_consumers_meet_visibility_and_partial_batch_rules(template: Template) -> None:
    assert sqs_consumer_problems(template) == []


def test_worker_consumes_the_events_queue_in_batches_with_bounded_concurrency(
    template: Template, function_properties: dict[str, dict[str, Any]]
) -> None:
    worker = function_properties["WorkerFunction"]
    (source,) = [e["Properties"] for e in worker["Events"].values() if e["Type"] == "SQS"]
    concurrency = template["Parameters"]["WorkerMaxConcurrency"]

    assert source["Queue"] == {"Fn::GetAtt": ["EventsQueue", "Arn"]}
    assert source["BatchSize"] == 10
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert 1 <= source["MaximumBatchingWindowInSeconds"] <= 10
    # Caps the calls to Kaltura however deep the queue gets; Lambda accepts 2..1000.
    assert source["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "WorkerMaxConcurrency"}}
    assert (concurrency["MinValue"], concurrency["MaxValue"]) == (2, 1000)
    assert 2 <= concurrency["Default"] <= 20
    # Whatever timeout is chosen at deploy time, the worker and the claims it makes know it.
    assert worker["Timeout"] == {"Ref": "WorkerTimeoutSeconds"}
    assert worker["Environment"]["Variables"]["WORKER_TIMEOUT_SECONDS"] == {"Ref": "WorkerTimeoutSeconds"}


def test_events_queue_fits_any_consumer_using_the_worker_timeout_parameter(template: Template) -> None:
    add_consumer(template)

    assert sqs_consumer_problems(template) == []


def test_worker_timeout_parameter_has_a_queue_visibility_for_every_allowed_value(template: Template) -> None:
    allowed = {str(value) for value in template["Parameters"]["WorkerTimeoutSeconds"]["AllowedValues"]}

    assert set(template["Mappings"]["WorkerQueueVisibility"]) == allowed
    assert str(template["Parameters"]["WorkerTimeoutSeconds"]["Default"]) in allowed


# ---------------------------------------------------------------- the checker flags broken templates


def _queue_visibility_shortened(template: Template) -> None:
    add_consumer(template)
    template["Mappings"]["WorkerQueueVisibility"]["120"]["VisibilityTimeout"] = 700


def _consumer_timeout_above_the_queue_visibility(template: Template) -> None:
    add_consumer(template, Timeout=300)


def _consumer_timeout_inherited_from_globals(template: Template) -> None:
    properties = add_consumer(template)
    del properties["Timeout"]
    template["Globals"]["Function"]["Timeout"] = 900


def _batching_window_not_accounted_for(template: Template) -> None:
    properties = add_consumer(template)
    properties["Events"]["FromEventsQueue"]["Properties"]["MaximumBatchingWindowInSeconds"] = 60


def _consumer_without_partial_batch_response(template: Template) -> None:
    properties = add_consumer(template)
    del properties["Events"]["FromEventsQueue"]["Properties"]["FunctionResponseTypes"]


def _worker_timeout_parameter_unbounded(template: Template) -> None:
    add_consumer(template)
    del template["Parameters"]["WorkerTimeoutSeconds"]["AllowedValues"]


def _queue_outside_the_template(template: Template) -> None:
    properties = add_consumer(template)
    properties["Events"]["FromEventsQueue"]["Properties"]["Queue"] = "arn:aws:sqs:us-east-1:123456789012:elsewhere"


def _raw_event_source_mapping(template: Template) -> None:
    template["Resources"]["RawMapping"] = {
        "Type": "AWS::Lambda::EventSourceMapping",
        "Properties": {"EventSourceArn": {"Fn::GetAtt": ["EventsQueue", "Arn"]}, "FunctionName": "x"},
    }


TOO_SHORT = r"VisibilityTimeout {actual} < 6 x timeout \+ batching window = {needed} "
BROKEN_TEMPLATES = [
    (_queue_visibility_shortened, TOO_SHORT.format(actual=700, needed=720)),
    (_consumer_timeout_above_the_queue_visibility, TOO_SHORT.format(actual=r"\d+", needed=6 * 300)),
    (_consumer_timeout_inherited_from_globals, TOO_SHORT.format(actual=r"\d+", needed=6 * 900)),
    (_batching_window_not_accounted_for, TOO_SHORT.format(actual=r"\d+", needed=6 * 120 + 60)),
    (_consumer_without_partial_batch_response, "FunctionResponseTypes must include ReportBatchItemFailures"),
    (_worker_timeout_parameter_unbounded, "parameter WorkerTimeoutSeconds has no AllowedValues"),
    (_queue_outside_the_template, r"Queue must be !GetAtt <queue in this template>\.Arn"),
    (_raw_event_source_mapping, "RawMapping: declare SQS consumers as SQS events"),
]


@pytest.mark.parametrize(
    ("break_template", "expected_problem"),
    BROKEN_TEMPLATES,
    ids=[break_template.__name__.strip("_") for break_template, _ in BROKEN_TEMPLATES],
)
def test_checker_flags_a_broken_template(template: Template, break_template: Any, expected_problem: str) -> None:
    break_template(template)

    problems = sqs_consumer_problems(template)

    assert any(re.search(expected_problem, problem) for problem in problems), problems


# ---------------------------------------------------------------- queues and the dead-letter alarm


def test_events_queue_redrives_to_the_dead_letter_queue_after_a_few_attempts(resources: dict[str, Any]) -> None:
    redrive = resources["EventsQueue"]["Properties"]["RedrivePolicy"]

    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["EventsDeadLetterQueue", "Arn"]}
    # Explicit, and enough attempts to ride out a transient Kaltura or AWS failure before a message is parked.
    assert isinstance(redrive["maxReceiveCount"], int)
    assert 3 <= redrive["maxReceiveCount"] <= 10


def test_dead_letter_queue_keeps_messages_for_14_days_longer_than_the_source(resources: dict[str, Any]) -> None:
    dlq_retention = resources["EventsDeadLetterQueue"]["Properties"]["MessageRetentionPeriod"]
    source_retention = resources["EventsQueue"]["Properties"].get("MessageRetentionPeriod", 4 * 24 * 3600)

    assert dlq_retention == DLQ_RETENTION_SECONDS
    # Standard queues keep the original enqueue time on redrive: a shorter DLQ retention drops messages on arrival.
    assert source_retention < dlq_retention


@pytest.mark.parametrize("queue_id", ["EventsQueue", "EventsDeadLetterQueue", "SweepScheduleDeadLetterQueue"])
def test_queues_are_encrypted_at_rest(resources: dict[str, Any], queue_id: str) -> None:
    assert resources[queue_id]["Properties"]["SqsManagedSseEnabled"] is True


def test_dead_letter_queue_depth_alarm_notifies_the_alerts_topic(resources: dict[str, Any]) -> None:
    alarms = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
        and r["Properties"].get("Namespace") == "AWS/SQS"
        and r["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"
        and {"Name": "QueueName", "Value": {"Fn::GetAtt": ["EventsDeadLetterQueue", "QueueName"]}}
        in r["Properties"].get("Dimensions", [])
    ]

    assert len(alarms) == 1, "expected one depth alarm on EventsDeadLetterQueue"
    alarm = alarms[0]
    # Fires on the first parked message, and says so again when the queue is drained.
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
    assert alarm["AlarmActions"] == [{"Ref": "AlertsTopic"}]
    assert alarm["OKActions"] == [{"Ref": "AlertsTopic"}]
    assert alarm["TreatMissingData"] == "notBreaching"


def test_alert_email_subscription_exists_only_when_an_address_is_given(template: Template) -> None:
    subscriptions = [r for r in template["Resources"].values() if r["Type"] == "AWS::SNS::Subscription"]

    assert len(subscriptions) == 1
    subscription = subscriptions[0]
    assert subscription["Properties"]["TopicArn"] == {"Ref": "AlertsTopic"}
    assert subscription["Properties"]["Endpoint"] == {"Ref": "AlertEmail"}
    assert template["Conditions"][subscription["Condition"]] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AlertEmail"}, ""]}]
    }
    assert template["Parameters"]["AlertEmail"]["Default"] == ""


def test_sweep_runs_on_a_schedule_with_retries_and_a_dead_letter_queue(
    template: Template, function_properties: dict[str, dict[str, Any]]
) -> None:
    (schedule,) = [e["Properties"] for e in function_properties["SweepFunction"]["Events"].values()]
    (event_type,) = [e["Type"] for e in function_properties["SweepFunction"]["Events"].values()]
    parameter = template["Parameters"]["SweepSchedule"]

    assert event_type == "ScheduleV2"
    assert schedule["ScheduleExpression"] == {"Ref": "SweepSchedule"}
    assert parameter["Default"] == "rate(15 minutes)"
    assert re.fullmatch(parameter["AllowedPattern"], "cron(0/15 * * * ? *)")
    assert not re.fullmatch(parameter["AllowedPattern"], "every 15 minutes")
    assert 0 < schedule["RetryPolicy"]["MaximumRetryAttempts"] <= 5
    assert schedule["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["SweepScheduleDeadLetterQueue", "Arn"]}}
    assert schedule["Name"] == {"Fn::Sub": "${AWS::StackName}-sweep"}  # unique per stack


def test_sweep_dead_letter_queue_depth_alarm_notifies_the_alerts_topic(resources: dict[str, Any]) -> None:
    alarms = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
        and {"Name": "QueueName", "Value": {"Fn::GetAtt": ["SweepScheduleDeadLetterQueue", "QueueName"]}}
        in r["Properties"].get("Dimensions", [])
    ]

    assert len(alarms) == 1
    assert alarms[0]["AlarmActions"] == [{"Ref": "AlertsTopic"}]
    assert (alarms[0]["ComparisonOperator"], alarms[0]["Threshold"]) == ("GreaterThanThreshold", 0)

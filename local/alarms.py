"""CloudWatch's evaluation of the stack's alarms, locally (moto stores alarms but never evaluates them).

Queue-depth alarms (``AWS/SQS`` ``ApproximateNumberOfMessagesVisible`` of one queue: the dead-letter and
failed-invocation queues) read the queue's visible messages now, what SQS reports for the period, and compare them
with the threshold. Every other alarm's metric has no datapoints locally (the functions' EMF metrics and Lambda's own
metrics never reach moto), so it is evaluated as CloudWatch evaluates missing data, by its ``TreatMissingData``:
``notBreaching`` OK, ``breaching`` ALARM, ``ignore`` keeps the state, ``missing`` INSUFFICIENT_DATA.

On a state change the new state is recorded in moto and CloudWatch's notification (its JSON message and subject) is
published to the actions of the new state: AlarmActions for ALARM, OKActions for OK, InsufficientDataActions for
INSUFFICIENT_DATA. Like CloudWatch, a new alarm starts in INSUFFICIENT_DATA; the local stack evaluates every alarm
once right after creating the stack, as CloudWatch does within a minute of an alarm's creation.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kauto_local.stack import LocalAwsStack

QUEUE_DEPTH_METRIC = ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
REGION_NAMES = {"us-east-1": "US East (N. Virginia)"}
_COMPARISONS: dict[str, tuple[Callable[[float, float], bool], str]] = {
    "GreaterThanThreshold": (operator.gt, "greater than"),
    "GreaterThanOrEqualToThreshold": (operator.ge, "greater than or equal to"),
    "LessThanThreshold": (operator.lt, "less than"),
    "LessThanOrEqualToThreshold": (operator.le, "less than or equal to"),
}
_MISSING_DATA = {
    "notBreaching": ("OK", "NonBreaching"),
    "breaching": ("ALARM", "Breaching"),
    "missing": ("INSUFFICIENT_DATA", "Missing"),
}
_ACTIONS = {"ALARM": "AlarmActions", "OK": "OKActions", "INSUFFICIENT_DATA": "InsufficientDataActions"}


def evaluate_alarms(aws: LocalAwsStack) -> list[str]:
    """Evaluate every metric alarm once; returns the names of the alarms that changed state."""
    cloudwatch, sns = aws.client("cloudwatch"), aws.client("sns")
    changed = []
    for alarm in cloudwatch.describe_alarms(AlarmTypes=["MetricAlarm"])["MetricAlarms"]:
        evaluated = _evaluate(aws, alarm, datetime.now(UTC))
        if evaluated is None or evaluated[0] == alarm["StateValue"]:
            continue
        new_state, reason = evaluated
        now = datetime.now(UTC)
        cloudwatch.set_alarm_state(AlarmName=alarm["AlarmName"], StateValue=new_state, StateReason=reason)
        message = notification(alarm, new_state, reason, now)
        subject = f'{new_state}: "{alarm["AlarmName"]}" in {REGION_NAMES.get(_region(alarm), _region(alarm))}'
        if alarm.get("ActionsEnabled", True):
            for topic_arn in alarm.get(_ACTIONS[new_state], []):
                sns.publish(TopicArn=topic_arn, Subject=subject[:100], Message=json.dumps(message))
        changed.append(str(alarm["AlarmName"]))
    return changed


def _evaluate(aws: LocalAwsStack, alarm: Mapping[str, Any], now: datetime) -> tuple[str, str] | None:
    """The alarm's state for the current period and CloudWatch's reason; ``None``: the state stays as it is."""
    threshold = float(alarm["Threshold"])
    dimensions = {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])}
    if (alarm.get("Namespace"), alarm.get("MetricName")) == QUEUE_DEPTH_METRIC and set(dimensions) == {"QueueName"}:
        sqs = aws.client("sqs")
        queue_url = sqs.get_queue_url(QueueName=dimensions["QueueName"])["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])
        value = float(attributes["Attributes"]["ApproximateNumberOfMessages"])
        compare, words = _COMPARISONS[alarm["ComparisonOperator"]]
        breaching = compare(value, threshold)
        return (
            "ALARM" if breaching else "OK",
            f"Threshold Crossed: 1 datapoint [{value} ({now:%d/%m/%y %H:%M:%S})] was "
            f"{'' if breaching else 'not '}{words} the threshold ({threshold}).",
        )
    treatment = _MISSING_DATA.get(alarm.get("TreatMissingData", "missing"))
    if treatment is None:  # "ignore": the alarm keeps its state
        return None
    state, treated_as = treatment
    return (
        state,
        f"Threshold Crossed: no datapoints were received for 1 period and 1 missing datapoint was treated as "
        f"[{treated_as}].",
    )


def notification(alarm: Mapping[str, Any], new_state: str, reason: str, now: datetime) -> dict[str, Any]:
    """The message CloudWatch publishes to an alarm's SNS actions on a state change."""
    return {
        "AlarmName": alarm["AlarmName"],
        "AlarmDescription": alarm.get("AlarmDescription"),
        "AWSAccountId": alarm["AlarmArn"].split(":")[4],
        "AlarmConfigurationUpdatedTimestamp": _timestamp(alarm["AlarmConfigurationUpdatedTimestamp"]),
        "NewStateValue": new_state,
        "NewStateReason": reason,
        "StateChangeTime": _timestamp(now),
        "Region": REGION_NAMES.get(_region(alarm), _region(alarm)),
        "AlarmArn": alarm["AlarmArn"],
        "OldStateValue": alarm["StateValue"],
        "OKActions": list(alarm.get("OKActions", [])),
        "AlarmActions": list(alarm.get("AlarmActions", [])),
        "InsufficientDataActions": list(alarm.get("InsufficientDataActions", [])),
        "Trigger": {
            "MetricName": alarm["MetricName"],
            "Namespace": alarm["Namespace"],
            "StatisticType": "Statistic",
            "Statistic": str(alarm["Statistic"]).upper(),
            "Unit": alarm.get("Unit"),
            "Dimensions": [{"value": d["Value"], "name": d["Name"]} for d in alarm.get("Dimensions", [])],
            "Period": alarm["Period"],
            "EvaluationPeriods": alarm["EvaluationPeriods"],
            "DatapointsToAlarm": alarm.get("DatapointsToAlarm", alarm["EvaluationPeriods"]),
            "ComparisonOperator": alarm["ComparisonOperator"],
            "Threshold": float(alarm["Threshold"]),
            "TreatMissingData": alarm.get("TreatMissingData", "missing"),
            "EvaluateLowSampleCountPercentile": "",
        },
    }


def _region(alarm: Mapping[str, Any]) -> str:
    return str(alarm["AlarmArn"].split(":")[3])


def _timestamp(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"

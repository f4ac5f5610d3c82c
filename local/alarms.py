"""CloudWatch's evaluation of the stack's queue-depth alarms, locally (moto stores alarms but never evaluates them).

Covers the alarms on ``AWS/SQS`` ``ApproximateNumberOfMessagesVisible`` of one queue (the dead-letter and
failed-invocation queues). One evaluation reads the queue's visible messages now (what SQS reports for the period),
compares it with the alarm's threshold and, when the state changes, records the new state in moto and publishes
CloudWatch's notification (the JSON message and subject CloudWatch sends) to the actions of the new state: AlarmActions
for ALARM, OKActions for OK. Like CloudWatch, a new alarm starts in INSUFFICIENT_DATA, so its first evaluation to OK
notifies its OKActions too. Alarms on other metrics are left alone (they keep the state they have).
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from kauto_local.stack import LocalAwsStack

QUEUE_DEPTH_METRIC = ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
REGION_NAMES = {"us-east-1": "US East (N. Virginia)"}
_COMPARISONS: dict[str, tuple[Callable[[float, float], bool], str]] = {
    "GreaterThanThreshold": (operator.gt, "greater than"),
    "GreaterThanOrEqualToThreshold": (operator.ge, "greater than or equal to"),
    "LessThanThreshold": (operator.lt, "less than"),
    "LessThanOrEqualToThreshold": (operator.le, "less than or equal to"),
}


def evaluate_queue_alarms(aws: LocalAwsStack) -> list[str]:
    """Evaluate every queue-depth alarm once; returns the names of the alarms that changed state."""
    cloudwatch, sqs, sns = aws.client("cloudwatch"), aws.client("sqs"), aws.client("sns")
    changed = []
    for alarm in cloudwatch.describe_alarms(AlarmTypes=["MetricAlarm"])["MetricAlarms"]:
        dimensions = {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])}
        if (alarm.get("Namespace"), alarm.get("MetricName")) != QUEUE_DEPTH_METRIC or set(dimensions) != {"QueueName"}:
            continue
        queue_url = sqs.get_queue_url(QueueName=dimensions["QueueName"])["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])
        value = float(attributes["Attributes"]["ApproximateNumberOfMessages"])
        compare, words = _COMPARISONS[alarm["ComparisonOperator"]]
        new_state = "ALARM" if compare(value, float(alarm["Threshold"])) else "OK"
        if new_state == alarm["StateValue"]:
            continue
        now = datetime.now(UTC)
        reason = (
            f"Threshold Crossed: 1 datapoint [{value} ({now:%d/%m/%y %H:%M:%S})] was "
            f"{'' if new_state == 'ALARM' else 'not '}{words} the threshold ({float(alarm['Threshold'])})."
        )
        cloudwatch.set_alarm_state(AlarmName=alarm["AlarmName"], StateValue=new_state, StateReason=reason)
        message = notification(alarm, new_state, reason, now)
        subject = f'{new_state}: "{alarm["AlarmName"]}" in {REGION_NAMES.get(_region(alarm), _region(alarm))}'
        if alarm.get("ActionsEnabled", True):
            for topic_arn in alarm.get("AlarmActions" if new_state == "ALARM" else "OKActions", []):
                sns.publish(TopicArn=topic_arn, Subject=subject[:100], Message=json.dumps(message))
        changed.append(str(alarm["AlarmName"]))
    return changed


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

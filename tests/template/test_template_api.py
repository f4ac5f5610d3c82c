"""The webhook endpoint Kaltura posts to, its stage limits and logs, and the stack's parameters and outputs."""

from __future__ import annotations

import re
from typing import Any

import pytest

Template = dict[str, Any]

ROUTE = "/kaltura/notifications/{partnerId}"


def test_webhook_route_posts_to_the_webhook_function_with_payload_format_2(resources: dict[str, Any]) -> None:
    http_events = [
        event["Properties"]
        for event in resources["WebhookFunction"]["Properties"]["Events"].values()
        if event["Type"] == "HttpApi"
    ]

    assert http_events == [
        {"ApiId": {"Ref": "WebhookHttpApi"}, "Method": "POST", "Path": ROUTE, "PayloadFormatVersion": "2.0"}
    ]
    assert resources["WebhookHttpApi"]["Type"] == "AWS::Serverless::HttpApi"


def test_translated_api_has_exactly_the_webhook_route(translated: Template) -> None:
    body = translated["Resources"]["WebhookHttpApi"]["Properties"]["Body"]

    assert {path: sorted(methods) for path, methods in body["paths"].items()} == {ROUTE: ["post"]}
    integration = body["paths"][ROUTE]["post"]["x-amazon-apigateway-integration"]
    assert integration["payloadFormatVersion"] == "2.0"
    assert "${WebhookFunction.Arn}" in integration["uri"]["Fn::Sub"]


def test_stage_throttles_every_route_by_default(resources: dict[str, Any]) -> None:
    throttling = resources["WebhookHttpApi"]["Properties"]["DefaultRouteSettings"]

    assert throttling["ThrottlingRateLimit"] > 0
    assert throttling["ThrottlingBurstLimit"] >= throttling["ThrottlingRateLimit"]


def test_stage_writes_json_access_logs_without_headers_to_a_retained_log_group(resources: dict[str, Any]) -> None:
    access_logs = resources["WebhookHttpApi"]["Properties"]["AccessLogSettings"]
    destination = access_logs["DestinationArn"]["Fn::GetAtt"]
    fields = re.findall(r"\$context\.[A-Za-z.]+", access_logs["Format"])

    assert destination[1] == "Arn"
    assert resources[destination[0]]["Type"] == "AWS::Logs::LogGroup"
    assert "RetentionInDays" in resources[destination[0]]["Properties"]
    assert {"$context.requestId", "$context.status", "$context.integrationErrorMessage"} <= set(fields)
    # Kaltura's webhook signature travels in a header; headers never reach the logs.
    assert not [field for field in fields if "header" in field.lower()]


def test_partner_secrets_arn_parameter_accepts_only_a_full_secret_arn(template: Template) -> None:
    parameter = template["Parameters"]["PartnerSecretsArn"]
    pattern = re.compile(parameter["AllowedPattern"])

    assert "Default" not in parameter
    assert pattern.fullmatch("arn:aws:secretsmanager:us-east-1:123456789012:secret:kaltura/partners-AbCdEf")
    assert pattern.fullmatch("arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:k-AbCdEf")
    assert not pattern.fullmatch("arn:aws:secretsmanager:us-east-1:123456789012:secret:kaltura/partners")
    assert not pattern.fullmatch("arn:aws:ssm:us-east-1:123456789012:parameter/kaltura-AbCdEf")
    assert not pattern.fullmatch("kaltura/partners")


def test_template_creates_no_secret(resources: dict[str, Any]) -> None:
    assert [r for r in resources.values() if r["Type"].startswith("AWS::SecretsManager::")] == []


def test_every_parameter_is_described(template: Template) -> None:
    assert [name for name, p in template["Parameters"].items() if not p.get("Description")] == []


@pytest.mark.parametrize(
    ("output", "value"),
    [
        ("EventsQueueUrl", {"Ref": "EventsQueue"}),
        ("EventsDeadLetterQueueUrl", {"Ref": "EventsDeadLetterQueue"}),
        ("DedupeTableName", {"Ref": "DedupeTable"}),
        ("LedgerTableName", {"Ref": "LedgerTable"}),
        ("ReportsBucketName", {"Ref": "ReportsBucket"}),
        ("AlertsTopicArn", {"Ref": "AlertsTopic"}),
        ("AutomationConfigParameterName", {"Ref": "AutomationConfigParameter"}),
        ("SweepScheduleDeadLetterQueueUrl", {"Ref": "SweepScheduleDeadLetterQueue"}),
    ],
)
def test_outputs_name_the_stack_resources(template: Template, output: str, value: dict[str, str]) -> None:
    assert template["Outputs"][output]["Value"] == value
    assert template["Outputs"][output]["Description"]


def test_webhook_url_output_points_at_the_route(template: Template) -> None:
    url = template["Outputs"]["WebhookUrl"]["Value"]["Fn::Sub"]

    assert url == "https://${WebhookHttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}" + ROUTE
